"""What the generator needs from the platform's own rules, handed in by the composition root.

The generator simulates the gaming platform, which applies the back office's rules (a blacklisted
registration is refused; a blacklist value is stored in its normalised form). Those rules live in
`app.services`, which `pipelines` may not import (SPEC §1): `app/commands` passes an implementation.
"""

from __future__ import annotations

from typing import Any, Protocol


class PlatformRules(Protocol):
    """The platform rules the generator honours."""

    def normalize(self, category: str, value: str) -> str | None:
        """The blacklist's normalised form of `value` in `category`; None when it is not a valid value."""

    def registration_blocked(
        self,
        conn: Any,
        *,
        email: str,
        phone: str | None,
        ip: str | None,
        device_id: str | None,
        operator_id: int | None,
    ) -> bool:
        """True when an active blacklist entry in scope for `operator_id` matches the registration."""

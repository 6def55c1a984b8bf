"""What the generator needs from the platform's own rules, handed in by the composition root.

The generator simulates the gaming platform, which applies the back office's rules (a blacklisted
registration is refused; a blacklist value is stored in its normalised form; deposits and bets honour
responsible-gambling limits, time-outs and self-exclusion). Those rules live in
`app.services`, which `pipelines` may not import (SPEC §1): `app/commands` passes an implementation.
"""

from __future__ import annotations

from decimal import Decimal
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

    # responsible gambling (app.services.rg.enforcement): the caller holds the player's row lock, and a refusal
    # by a limit is recorded (an rg_limit_hits row) in the caller's transaction

    def play_blocked(self, conn: Any, *, player_id: int) -> str | None:
        """Why the player may neither play nor deposit now (a time-out or a self-exclusion); None when free."""

    def deposit_refused(self, conn: Any, *, player_id: int, amount: Decimal) -> str | None:
        """None when the player may deposit `amount` now; otherwise why not (a limit, a time-out, an exclusion)."""

    def bet_refused(self, conn: Any, *, player_id: int, stake: Decimal) -> str | None:
        """None when the player may stake `stake` now; otherwise why not (a limit, a time-out, an exclusion)."""

    def player_sets_limit(self, conn: Any, *, player_id: int, kind: str, period: str, value: Decimal | None) -> str:
        """The player changes a limit on the site (None: removes it); returns lower / raise / remove / same."""

    def player_takes_timeout(self, conn: Any, *, player_id: int, hours: int) -> bool:
        """The player takes a time-out; False when a running one already lasts longer."""

"""The platform rules the generator honours, implemented by the service layer (composition root)."""

from __future__ import annotations

from typing import Any

from app.services.blacklist.matching import check_registration
from app.services.blacklist.rules import try_normalize


class ServiceRules:
    """`pipelines.generator.platform.PlatformRules` backed by `app.services`."""

    def normalize(self, category: str, value: str) -> str | None:
        return try_normalize(category, value)

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
        hits = check_registration(conn, email=email, phone=phone, ip=ip, device_id=device_id, operator_id=operator_id)
        return bool(hits)


PLATFORM_RULES = ServiceRules()

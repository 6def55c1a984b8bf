"""The platform rules the generator honours, implemented by the service layer (composition root)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.services.blacklist.matching import check_registration
from app.services.blacklist.rules import try_normalize
from app.services.rg import enforcement


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

    def play_blocked(self, conn: Any, *, player_id: int) -> str | None:
        return enforcement.play_block(conn, player_id)

    def deposit_refused(self, conn: Any, *, player_id: int, amount: Decimal) -> str | None:
        return enforcement.deposit_refusal(conn, player_id, amount)

    def bet_refused(self, conn: Any, *, player_id: int, stake: Decimal) -> str | None:
        return enforcement.bet_refusal(conn, player_id, stake)

    def player_sets_limit(self, conn: Any, *, player_id: int, kind: str, period: str, value: Decimal | None) -> str:
        return enforcement.player_sets_limit(conn, player_id, kind, period, value)

    def player_takes_timeout(self, conn: Any, *, player_id: int, hours: int) -> bool:
        return enforcement.player_takes_timeout(conn, player_id, hours)


PLATFORM_RULES = ServiceRules()

"""Who is acting: a signed-in staff member (or a system process) as the services see them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """A staff member acting through a live session (`session_id`), or a named system process."""

    staff_id: int | None
    username: str
    roles: tuple[str, ...]
    brand_scope: frozenset[int] | None  # None: every brand
    session_id: str | None = None
    is_system: bool = False

    @property
    def primary_role(self) -> str:
        return self.roles[0] if self.roles else "none"

    def sees_brand(self, brand_id: int | None) -> bool:
        """True when `brand_id` is within this actor's brand scope (None = an all-brand object)."""
        if self.brand_scope is None:
            return True
        return brand_id is not None and brand_id in self.brand_scope


def system_actor(name: str) -> Actor:
    """An actor for background processes (generator, postback worker, ingest), all brands, no session."""
    return Actor(staff_id=None, username=f"system:{name}", roles=("system",), brand_scope=None, is_system=True)

"""Audit rows of refused views: a deep link to something outside the viewer's brand scope (SPEC §5, §6).

A read that refuses a target the viewer may not see answers "not found" (so that ids of other brands
cannot be probed) and records the attempt here: one `denied` audit row with the target, in its own
transaction. Never raises: the refusal stands even when the row cannot be written.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from app.services.audit.chain import write_audit
from app.services.core import UnitOfWork
from auth.identity import Actor

log = logging.getLogger(__name__)

SCOPE_ERROR = "outside the viewer's brand scope"


def record_denied_view(
    engine: Engine,
    actor: Actor,
    *,
    action: str,
    target_type: str,
    target_id: str | int,
    brand_id: int | None,
    error: str = SCOPE_ERROR,
) -> None:
    """Append a `denied` audit row for `actor` trying to view `target_type` `target_id` of brand `brand_id`."""
    try:
        with UnitOfWork(engine, actor) as uow:
            write_audit(
                uow.conn,
                actor=actor,
                action=action,
                outcome="denied",
                target_type=target_type,
                target_id=str(target_id),
                operator_id=brand_id,
                detail={"error": error},
            )
            uow.commit()
    except Exception:
        log.exception("could not audit the denied %s of %s %s by %s", action, target_type, target_id, actor.username)

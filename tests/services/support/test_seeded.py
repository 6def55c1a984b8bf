"""The generator's tickets fit the support cases: due times from the SLA table, a first response on every ticket
no longer open and none on open ones, and an overdue queue to show in the demo."""

from __future__ import annotations

import sqlalchemy as sa

from app.db import create_engine
from app.models import TICKET_FIRST_RESPONSE_HOURS
from app.services.support import reads
from auth.identity import Actor


def test_seeded_tickets_have_sla_due_times_and_first_responses(tiny_db: str) -> None:
    engine = create_engine(tiny_db, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT priority, status, created_at, first_response_due, first_response_at, resolved_at,"
                    " assignee_id, version FROM support_tickets"
                )
            ).all()
        assert rows
        for r in rows:
            assert (r.first_response_due - r.created_at).total_seconds() == TICKET_FIRST_RESPONSE_HOURS[
                r.priority
            ] * 3600
            assert (r.first_response_at is None) == (r.status == "open")
            if r.first_response_at is not None:
                assert r.first_response_at >= r.created_at
                assert r.resolved_at is None or r.first_response_at <= r.resolved_at
            assert r.assignee_id is None and r.version == 1  # the demo's cases wait in the unassigned queue
        admin = Actor(staff_id=None, username="t", roles=("admin",), brand_scope=None)
        counts = reads.queue_counts(engine, admin)
        assert counts["open"] > 0 and counts["unassigned"] == counts["open"] and counts["mine"] == 0
    finally:
        engine.dispose()

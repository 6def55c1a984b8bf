"""The Postbacks list (newest first, a limit) reads the newest rows through ix_postbacks_created (migration
0016) instead of sorting every postback."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event

from app.services.tracking import reads
from tests.services.conftest import World


def test_postbacks_list_reads_newest_first_through_the_index(world: World) -> None:
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, params, context, executemany):
        if "FROM postbacks p" in statement:
            sent.append((statement, params))

    event.listen(world.engine, "before_cursor_execute", capture)
    try:
        reads.list_postbacks(world.engine, world.actors["admin"])
    finally:
        event.remove(world.engine, "before_cursor_execute", capture)
    assert len(sent) == 1
    with world.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sent[0][0], sent[0][1]))
        conn.execute(sa.text("RESET enable_seqscan"))
    assert "ix_postbacks_created" in plan, plan

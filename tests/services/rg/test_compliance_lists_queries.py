"""The compliance page's pending list reads the limits in force of all its players in one query (it ran one
query a pending row: 500 at scale), and shows the same limit in force as a player's own slot does."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import event

from app.services.rg import reads, rules, state, writes

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
H = dt.timedelta(hours=1)
_ids = itertools.count()
LIMITS = (("deposit", "day", "10", "99"), ("deposit", "week", "50", "500"), ("loss", "month", "100", "900"))


def _limit(world, pid: int, value: str, kind: str, period: str) -> None:
    version = world.scalar("SELECT coalesce((SELECT version FROM rg_profiles WHERE player_id = :p), 1)", p=pid)
    writes.set_limit(
        world.engine, world.actors["compliance"], player_id=pid, kind=kind, period=period, value=value,
        reason="player asked on the phone", expected_version=int(version), request_id=f"rgq-{next(_ids):06d}",
        at_player_request=False, now=NOW,
    )  # fmt: skip


def test_pending_list_reads_limits_in_one_query_with_the_same_values(world):
    for pid in world.players:
        for kind, period, low, high in LIMITS:
            _limit(world, pid, low, kind, period)
            _limit(world, pid, high, kind, period)  # a pending raise
    statements: list[str] = []

    def count(conn, cursor, statement, params, context, executemany):
        if "FROM rg_limits" in statement:
            statements.append(statement)

    event.listen(world.engine, "before_cursor_execute", count)
    try:
        pending = reads.compliance_lists(world.engine, world.actors["compliance"], now=NOW + H)["pending"]
    finally:
        event.remove(world.engine, "before_cursor_execute", count)
    assert len(pending) == 3 * len(world.players)
    assert len(statements) == 2  # the pending changes, then every pending player's limits at once
    described = {rules.describe(kind, period): (kind, period) for kind, period, _, _ in LIMITS}
    with world.engine.connect() as conn:
        for row in pending:
            kind, period = described[row["limit"]]
            slot = state.slot(conn, row["player_id"], kind, period, NOW + H)
            assert slot.value is not None
            assert row["in_force"] == rules.shown(kind, slot.value, row["currency"])

"""Live mode leaves withdrawals to staff: every withdrawal it makes, and every one already queued, waits for a
decision in the withdrawal queue (the generator decides deposits only)."""

from __future__ import annotations

from app.commands.platform import PLATFORM_RULES
from pipelines.generator.invariants import check_invariants
from pipelines.generator.live import live
from pipelines.generator.load import connect


def _rows(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with connect(url) as conn:
        return conn.execute(query, params).fetchall()


def test_live_withdrawals_wait_for_a_decision(tiny_db_fresh: str) -> None:
    top = _rows(tiny_db_fresh, "SELECT coalesce(max(id), 0) FROM payments")[0][0]
    queued = {
        r[0] for r in _rows(tiny_db_fresh, "SELECT id FROM payments WHERE kind = 'withdrawal' AND status = 'pending'")
    }
    counts = live(tiny_db_fresh, rate=150, seconds=4, seed=11, rules=PLATFORM_RULES)
    assert counts.get("withdrawal", 0) >= 1 and counts.get("payment_status", 0) >= 1, counts
    made = _rows(tiny_db_fresh, "SELECT kind, status FROM payments WHERE id > %s", (top,))
    assert {s for k, s in made if k == "withdrawal"} == {"pending"}
    still = {
        r[0] for r in _rows(tiny_db_fresh, "SELECT id FROM payments WHERE kind = 'withdrawal' AND status = 'pending'")
    }
    assert queued <= still
    # the deposits it left pending were decided by their provider, as before
    assert _rows(tiny_db_fresh, "SELECT count(*) FROM ledger WHERE kind = 'withdrawal_reversal' AND ref_id > %s",
                 (top,))[0][0] == 0  # fmt: skip
    assert check_invariants(tiny_db_fresh) == []

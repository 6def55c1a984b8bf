"""With the generator's data: seed → ingest → reconcile; live activity DURING ingest runs → reconcile again,
and the incrementally maintained warehouse equals a fresh full build of the same source."""

from __future__ import annotations

import threading
from pathlib import Path

from app.commands.platform import PLATFORM_RULES
from pipelines.generator.live import live
from pipelines.ingest import run_ingest
from pipelines.ingest.reconcile import reconcile
from tests.pipelines.ingest.conftest import fingerprint


def test_seed_ingest_reconcile_then_live_during_ingest(tiny_db_fresh: str, tmp_path: Path) -> None:
    wh = tmp_path / "warehouse.duckdb"
    first = run_ingest(tiny_db_fresh, wh).raise_for_status()
    assert first.full and sum(t.rows_read for t in first.tables) > 10_000
    report = reconcile(tiny_db_fresh, wh)
    assert report.ok, report.mismatches()
    assert report.daily.height > 100  # real day × brand cells were compared

    counts: dict = {}
    writer = threading.Thread(
        target=lambda: counts.update(live(tiny_db_fresh, rate=60, seconds=4, seed=5, rules=PLATFORM_RULES))
    )
    writer.start()
    runs = 0
    while writer.is_alive() or runs < 2:
        run_ingest(tiny_db_fresh, wh, build_marts=runs % 2 == 0).raise_for_status()  # concurrent with writes
        runs += 1
    writer.join()
    assert sum(counts.values()) > 10  # rows were written while ingest ran
    last = run_ingest(tiny_db_fresh, wh).raise_for_status()
    assert not last.full
    report = reconcile(tiny_db_fresh, wh)
    assert report.ok, report.mismatches()

    rebuilt = tmp_path / "rebuilt.duckdb"
    run_ingest(tiny_db_fresh, rebuilt, full=True, build_marts=False).raise_for_status()
    assert fingerprint(wh) == fingerprint(rebuilt)

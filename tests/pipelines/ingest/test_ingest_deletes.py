"""Deletes and late rows without whole-table reads, on a real PostgreSQL and real DuckDB files: tombstones
(triggers of migration 0004), TRUNCATE, the periodic key reconciliation as safety net, the count-check
fallback, pruning, the app role's lack of access, and append-table gaps kept open by in-flight writers."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from pipelines.ingest import run_ingest
from pipelines.ingest.loaders import holes
from pipelines.ingest.reconcile import reconcile
from pipelines.ingest.run import RunResult
from pipelines.ingest.specs import SPECS
from pipelines.ingest.watermarks import MARGIN, cap_ranges, clip_ranges
from tests.pipelines.ingest.conftest import fingerprint, q

HOUR = dt.timedelta(hours=1)
ADD_LEDGER = (
    "INSERT INTO ledger (player_id, operator_id, kind, cash_amount, ref_type) VALUES (%s, 1, 'adjustment', %s, %s)"
)


def add_ledger(c: sa.Connection, player: int, amount: int, ref: str) -> None:
    c.exec_driver_sql(ADD_LEDGER, (player, amount, ref))


def by_table(res: RunResult) -> dict:
    return {t.table: t for t in res.tables}


def same_as_full_build(url: str, warehouse: Path, tmp: Path) -> bool:
    rebuilt = tmp / "rebuilt.duckdb"
    run_ingest(url, rebuilt, full=True, build_marts=False).raise_for_status()
    return fingerprint(warehouse) == fingerprint(rebuilt)


def test_deletes_are_caught_through_tombstones_without_counts_or_key_scans(
    source_db: str, engine: sa.Engine, warehouse: Path, tmp_path: Path
) -> None:
    time.sleep(MARGIN.total_seconds() + 0.1)  # the seeded rows fall outside the next run's overlap margin
    run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    with engine.begin() as c:
        x = c.exec_driver_sql
        x("UPDATE bets SET session_id = NULL WHERE session_id = 3")
        x("DELETE FROM sessions WHERE id = 3")
        x("DELETE FROM ledger WHERE ref_type = 'bet' AND ref_id IN (7, 8)")
        x("DELETE FROM bets WHERE id IN (7, 8)")
        # a key deleted and inserted again (new content): the warehouse must keep the new row
        x("DELETE FROM bets WHERE id = 9")
        x(
            "INSERT INTO bets (id, player_id, operator_id, game_id, real_stake, status, placed_at)"
            " VALUES (9, 2, 1, 1, 42, 'open', now())"
        )
        ledger_id = x("SELECT min(id) FROM ledger WHERE kind = 'deposit'").scalar_one()
        x("DELETE FROM ledger WHERE id = %s", (ledger_id,))
        x(
            "INSERT INTO ledger (id, player_id, operator_id, kind, cash_amount, ref_type)"
            " VALUES (%s, 1, 1, 'adjustment', 123.45, 'reinserted')",
            (ledger_id,),
        )
    res = run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    by = by_table(res)
    # the per-run count check and key scans are off: only the tombstones can have caught these deletes
    assert {by[t].deletes for t in ("bets", "sessions", "ledger", "players")} == {"tombstones"}
    assert by["sessions"].rows_deleted == 1 and by["bets"].rows_deleted == 2
    assert by["ledger"].mode == "append" and by["ledger"].rows_deleted >= 2
    assert q(warehouse, "SELECT count(*) FROM raw.bets WHERE id IN (7, 8)") == [(0,)]
    assert q(warehouse, "SELECT real_stake, status FROM raw.bets WHERE id = 9") == [(42, "open")]
    assert q(warehouse, "SELECT ref_type FROM raw.ledger WHERE id = ?", [ledger_id]) == [("reinserted",)]
    assert sum(t.rows_read for t in res.tables) < 50  # the delta and the tombstoned keys, nothing whole
    assert reconcile(source_db, warehouse).ok
    assert same_as_full_build(source_db, warehouse, tmp_path)


def test_a_truncate_reloads_that_table_whole_and_resets_its_id_history(
    source_db: str, engine: sa.Engine, warehouse: Path, tmp_path: Path
) -> None:
    run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    old_max = q(warehouse, "SELECT max(id) FROM raw.ledger")[0][0]
    with engine.begin() as c:
        c.exec_driver_sql("TRUNCATE support_tickets CASCADE")  # and the case notes and links pointing at it
        c.exec_driver_sql("TRUNCATE ledger RESTART IDENTITY CASCADE")  # ids start again at 1
        add_ledger(c, 1, 5, "x")
    res = run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    by = by_table(res)
    assert by["ledger"].mode == "full" and by["support_tickets"].mode == "full"
    assert by["bets"].mode == "incremental"  # only the truncated tables are reloaded
    assert q(warehouse, "SELECT count(*), max(id) FROM raw.ledger") == [(1, 1)]
    history = json.loads(q(warehouse, "SELECT history FROM meta.watermarks WHERE table_name = 'ledger'")[0][0])
    assert history == [] and old_max > 1  # ids allocated before the truncate say nothing any more
    with engine.begin() as c:
        add_ledger(c, 1, 6, "y")
    # the next run starts from the standby, the file from before the truncate: it handles the marker too
    res = run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    assert res.built_from == "standby" and by_table(res)["ledger"].mode == "full"
    res = run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    assert by_table(res)["ledger"].mode == "append"  # the marker may still be in the window: handled once per file
    assert by_table(res)["support_tickets"].mode == "incremental"
    assert q(warehouse, "SELECT count(*) FROM raw.ledger") == [(2,)]
    assert same_as_full_build(source_db, warehouse, tmp_path)


def test_periodic_reconciliation_catches_a_delete_that_bypassed_the_triggers(
    source_db: str, engine: sa.Engine, warehouse: Path
) -> None:
    run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    with engine.begin() as c:
        c.exec_driver_sql("SET LOCAL session_replication_role = replica")  # no trigger fires: no tombstone
        c.exec_driver_sql("DELETE FROM bets WHERE id = 11")
    quiet = run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    assert by_table(quiet)["bets"].deletes == "tombstones"  # not due yet: no per-run scan sees it
    assert q(warehouse, "SELECT count(*) FROM raw.bets WHERE id = 11") == [(1,)]
    due = run_ingest(source_db, warehouse, build_marts=False, reconcile_every=dt.timedelta(0)).raise_for_status()
    bets = by_table(due)["bets"]
    assert bets.deletes == "tombstones + keys reconciled" and bets.rows_deleted == 1
    assert q(warehouse, "SELECT count(*) FROM raw.bets WHERE id = 11") == [(0,)]
    assert reconcile(source_db, warehouse).ok
    # reconciled just now: the next run is not due again
    after = run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    assert by_table(after)["bets"].deletes == "tombstones"


def test_reconcile_interval_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.ingest.run import RECONCILE_ENV, RECONCILE_EVERY, reconcile_every_default

    monkeypatch.delenv(RECONCILE_ENV, raising=False)
    assert reconcile_every_default() == RECONCILE_EVERY == HOUR
    monkeypatch.setenv(RECONCILE_ENV, "90")
    assert reconcile_every_default() == dt.timedelta(seconds=90)


def test_tombstones_older_than_the_horizon_fall_back_to_the_count_check(
    source_db: str, engine: sa.Engine, warehouse: Path
) -> None:
    run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    with engine.begin() as c:
        # as if the triggers were created (or tombstones pruned) after this warehouse's last run
        c.exec_driver_sql("UPDATE ingest_tombstone_horizon SET complete_since = now() + interval '1 minute'")
        c.exec_driver_sql("SET LOCAL session_replication_role = replica")
        c.exec_driver_sql("DELETE FROM bets WHERE id = 12")
    res = run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    bets = by_table(res)["bets"]
    assert bets.deletes == "count check" and bets.rows_deleted == 1
    assert q(warehouse, "SELECT count(*) FROM raw.bets WHERE id = 12") == [(0,)]


def test_old_tombstones_are_pruned_after_a_reconciling_run(source_db: str, engine: sa.Engine, warehouse: Path) -> None:
    with engine.begin() as c:  # as if the triggers had been recording for a month
        c.exec_driver_sql("UPDATE ingest_tombstone_horizon SET complete_since = now() - interval '30 days'")
        c.exec_driver_sql(
            "INSERT INTO ingest_tombstones (table_name, row_id, deleted_at)"
            " VALUES ('bets', -1, now() - interval '8 days')"
        )
        c.exec_driver_sql("DELETE FROM bets WHERE id = 13")
    run_ingest(source_db, warehouse, build_marts=False).raise_for_status()  # full: nothing reconciled yet
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM ingest_tombstones").scalar_one() == 2
    run_ingest(source_db, warehouse, build_marts=False, reconcile_every=dt.timedelta(0)).raise_for_status()
    with engine.connect() as c:
        rows = c.exec_driver_sql("SELECT table_name, row_id FROM ingest_tombstones").all()
        horizon = c.exec_driver_sql("SELECT complete_since FROM ingest_tombstone_horizon").scalar_one()
        now = c.exec_driver_sql("SELECT now()").scalar_one()
    assert rows == [("bets", 13)]  # the 8-day-old one is gone, the recent one kept
    assert now - dt.timedelta(days=7, minutes=1) < horizon < now - dt.timedelta(days=6)  # moved up to the cut
    res = run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    assert by_table(res)["bets"].deletes == "tombstones"  # this warehouse's window is well inside the horizon


def test_in_flight_writer_across_a_full_load_keeps_a_gap_open_instead_of_forcing_a_reload(
    source_db: str, engine: sa.Engine, warehouse: Path, tmp_path: Path
) -> None:
    late = engine.connect()
    tx = late.begin()
    add_ledger(late, 2, 5, "x")
    late_id = late.exec_driver_sql("SELECT max(id) FROM ledger").scalar_one()
    with engine.begin() as c:  # committed after the late id was taken: a higher id, visible to the full load
        add_ledger(c, 4, 1, "x")
    first = run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    assert first.full
    high, gaps = q(warehouse, "SELECT next_from_id, gaps FROM meta.watermarks WHERE table_name = 'ledger'")[0]
    assert high > late_id and [late_id, late_id] in json.loads(gaps)  # the late id stays open
    mid = run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    ledger = by_table(mid)["ledger"]
    assert ledger.mode == "append" and ledger.rows_read == 0  # no reload although the writer is still open
    tx.commit()
    late.close()
    last = run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    ledger = by_table(last)["ledger"]
    assert ledger.mode == "append" and ledger.rows_read == 1 and ledger.rows_merged == 1
    assert q(warehouse, "SELECT count(*) FROM raw.ledger WHERE id = ?", [late_id]) == [(1,)]
    assert reconcile(source_db, warehouse).ok
    # no writer in flight any more: the gap is provably closed and dropped
    run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    assert q(warehouse, "SELECT gaps FROM meta.watermarks WHERE table_name = 'ledger'") == [("[]",)]
    assert same_as_full_build(source_db, warehouse, tmp_path)


def test_a_rolled_back_id_is_dropped_once_no_older_writer_is_in_flight(
    source_db: str, engine: sa.Engine, warehouse: Path
) -> None:
    run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    with engine.connect() as c:
        tx = c.begin()
        add_ledger(c, 2, 5, "x")
        tx.rollback()  # its id is never used
    with engine.begin() as c:
        add_ledger(c, 4, 1, "x")
    run_ingest(source_db, warehouse, build_marts=False).raise_for_status()
    assert q(warehouse, "SELECT gaps FROM meta.watermarks WHERE table_name = 'ledger'") == [("[]",)]


def test_the_app_role_cannot_touch_tombstones_but_its_deletes_leave_them(source_db: str, engine: sa.Engine) -> None:
    with engine.connect() as c:
        triggers = set(
            c.exec_driver_sql(
                "SELECT tgrelid::regclass::text || ':' || tgname FROM pg_trigger WHERE tgname LIKE '%%_tombstone%%'"
            ).scalars()
        )
    for spec in SPECS:
        if spec.mode != "full":
            assert {f"{spec.name}:{spec.name}_tombstone", f"{spec.name}:{spec.name}_tombstone_truncate"} <= triggers
    refused = [
        "SELECT * FROM ingest_tombstones",
        "INSERT INTO ingest_tombstones (table_name, row_id) VALUES ('bets', 1)",
        "UPDATE ingest_tombstones SET row_id = 1",
        "DELETE FROM ingest_tombstones",
        "UPDATE ingest_tombstone_horizon SET complete_since = now()",
        "SELECT pitboss_prune_tombstones(interval '1 hour')",
    ]
    for sql in refused:
        with engine.connect() as c, pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            c.exec_driver_sql("SET ROLE pitboss_app")
            c.exec_driver_sql(sql)
    with engine.begin() as c:
        c.exec_driver_sql("SET LOCAL ROLE pitboss_app")
        c.exec_driver_sql("DELETE FROM support_tickets")  # empty: a statement trigger with no rows
        c.exec_driver_sql("UPDATE bets SET session_id = NULL WHERE session_id = 5")
        c.exec_driver_sql("DELETE FROM sessions WHERE id = 5")
        started = c.exec_driver_sql("SELECT now()").scalar_one()
    with engine.connect() as c:
        rows = c.exec_driver_sql("SELECT table_name, row_id, deleted_at FROM ingest_tombstones").all()
    assert rows == [("sessions", 5, started)]  # stamped with the deleting transaction's start


def test_id_ranges() -> None:
    assert clip_ranges([(1, 3), (5, 9), (12, 12)], 6) == [(7, 9), (12, 12)]
    assert clip_ranges([(1, 3)], None) == [(1, 3)]
    assert cap_ranges([(1, 1), (3, 3), (10, 10), (12, 12)], 2) == [(1, 3), (10, 12)]
    assert cap_ranges([(1, 1), (3, 3)], 5) == [(1, 1), (3, 3)]
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (2), (3), (7), (20)) v(id)")
    assert holes(con, "t", "id", [(1, 10), (15, 20)]) == [(1, 1), (4, 6), (8, 10), (15, 19)]
    assert holes(con, "t", "id", [(2, 3)]) == []

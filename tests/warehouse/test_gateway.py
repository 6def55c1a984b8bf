"""The query gateway: brand scope enforced on every mart, parameters, limits, and snapshot reopening."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
import time

import duckdb
import polars as pl
import pytest

from warehouse import api
from warehouse.gateway import TABLES, Gateway, GatewayError, QueryTimeout, RowLimitExceeded, WarehouseUnavailable

FULL = api.Filters(dt.date(2026, 1, 1), dt.date(2026, 1, 4))


@pytest.mark.parametrize("table", sorted(t for t, col in TABLES.items() if col))
def test_every_branded_mart_is_filtered_by_scope(gw, table):
    everything = gw.query(f"SELECT DISTINCT brand_id FROM {{{table}}}", brands=None)
    assert set(everything["brand_id"]) == {1, 2}, table
    scoped = gw.query(f"SELECT DISTINCT brand_id FROM {{{table}}}", brands=frozenset({2}))
    assert set(scoped["brand_id"]) == {2}, table
    # Even a query that tries to reach around the scope only sees the scoped rows.
    sneaky = gw.query(f"SELECT count(*) AS n FROM {{{table}}} WHERE brand_id = 1 OR true", brands=frozenset({2}))
    alone = gw.query(f"SELECT count(*) AS n FROM {{{table}}}", brands=frozenset({2}))
    assert sneaky["n"][0] == alone["n"][0]


def test_scope_is_required_and_typed(gw):
    with pytest.raises(TypeError):
        gw.query("SELECT 1 AS x")  # type: ignore[call-arg]
    with pytest.raises(GatewayError, match="frozenset"):
        gw.query("SELECT 1 AS x", brands={1})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        api.kpis(gw, FULL)  # type: ignore[call-arg]


def test_direct_schema_references_are_refused(gw):
    for sql in (
        "SELECT * FROM mart.player_day",
        "SELECT * FROM raw.players",
        "SELECT * FROM meta.snapshot",
        "SELECT * FROM {player_day} p JOIN Raw . players r ON r.id = p.player_id",
        "SELECT * FROM read_csv('/etc/passwd')",
        "ATTACH '/tmp/x.duckdb' AS x",
        "SELECT * FROM {nonexistent}",
    ):
        with pytest.raises(GatewayError):
            gw.query(sql, brands=None)


def test_deal_terms_are_readable_only_as_their_fixed_columns(gw):
    deals = gw.query("SELECT * FROM {affiliate_deals}", brands=frozenset({2}))
    assert deals.columns == ["affiliate_id", "name", "deal_type", "cpa_amount", "cpa_min_deposit", "revshare_rate"]
    assert gw.query("SELECT * FROM {campaigns}", brands=None).columns == ["campaign_id", "affiliate_id", "name"]
    with pytest.raises(GatewayError):
        gw.query("SELECT postback_url FROM {affiliate_deals}", brands=None)


def test_values_are_parameters(gw):
    hostile = "1); DROP TABLE mart.players; --"
    df = gw.query("SELECT count(*) AS n FROM {players} WHERE username = $name", {"name": hostile}, brands=None)
    assert df["n"][0] == 0
    assert gw.query("SELECT count(*) AS n FROM {players}", brands=None)["n"][0] == 6
    with pytest.raises(GatewayError, match="reserved"):
        gw.query("SELECT 1 AS x", {"__scope": [1, 2]}, brands=frozenset({1}))


def test_row_limit(gw):
    assert gw.query("SELECT * FROM {player_day}", brands=None, limit=100).height == 16
    with pytest.raises(RowLimitExceeded, match="more than 3 rows"):
        gw.query("SELECT * FROM {player_day}", brands=None, limit=3)
    small = Gateway(gw.path, max_rows=5)
    with pytest.raises(RowLimitExceeded):
        small.query("SELECT * FROM range(10)", brands=None)


def test_time_limit_interrupts_the_query(gw):
    t0 = time.perf_counter()
    with pytest.raises(QueryTimeout):
        gw.query("SELECT sum(a.range * b.range) AS s FROM range(100000) a, range(100000) b", brands=None, timeout_s=0.2)
    assert time.perf_counter() - t0 < 5
    # the connection is still usable afterwards
    assert gw.query("SELECT 1 AS one", brands=None)["one"][0] == 1


def test_missing_file(tmp_path):
    gw = Gateway(tmp_path / "nothing.duckdb")
    with pytest.raises(WarehouseUnavailable, match="ingest"):
        gw.query("SELECT 1 AS x", brands=None)


def test_snapshot_and_reopen_on_replace(warehouse_factory):
    served = warehouse_factory(name="served.duckdb")
    gw = Gateway(served)
    snap = gw.snapshot()
    assert (snap.snapshot_id, snap.source_as_of) == ("snap-1", dt.datetime(2026, 1, 4, 23, 59))
    key1 = gw.snapshot_key()
    before = api.kpis(gw, FULL, scope=None)
    assert before.filter(before["metric"] == "deposits")["value"][0] == 461.00

    # Ingestion builds a new file (here: one more approved deposit, a new snapshot row) and renames it over.
    extra = """
        INSERT INTO raw.payments VALUES (99, 1, 1, 'deposit', 9.00, 'EUR', 'card', 'c', 0, 'approved',
                                         '2026-01-04 12:00', '2026-01-04 12:00', NULL, 0);
        UPDATE meta.snapshot SET snapshot_id = 'snap-2', built_at = '2026-01-06';
    """
    fresh = warehouse_factory(extra, name="next.duckdb")
    # a reader mid-query on the old file is not disturbed by the rename
    old_reader = duckdb.connect(str(served), read_only=True)
    os.replace(fresh, served)
    assert old_reader.execute("SELECT count(*) FROM raw.payments").fetchone()[0] == 13
    old_reader.close()

    assert gw.snapshot_key() != key1
    assert gw.snapshot().snapshot_id == "snap-2"
    after = api.kpis(gw, FULL, scope=None)
    assert after.filter(after["metric"] == "deposits")["value"][0] == 470.00


def test_concurrent_readers_while_files_are_replaced(warehouse_factory):
    served = warehouse_factory(name="served.duckdb")
    gw = Gateway(served)
    spares = []
    for i in range(3):  # copies are new files (new inodes) with the same content
        spares.append(served.with_name(f"spare{i}.duckdb"))
        shutil.copyfile(served, spares[-1])
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                df = api.kpis(gw, FULL, scope=None)
                assert df.filter(df["metric"] == "ggr")["value"][0] == 39.20
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for spare in spares:
        time.sleep(0.1)
        os.replace(spare, served)
    time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []


def test_a_replaced_file_stays_open_for_running_reads(warehouse_factory, monkeypatch):
    from warehouse import gateway as gateway_module

    served = warehouse_factory(name="served.duckdb")
    gw = Gateway(served)
    with gw.cursor() as old:
        assert old.execute("SELECT count(*) FROM raw.payments").fetchone()[0] == 13
        fresh = warehouse_factory(
            "INSERT INTO raw.payments VALUES (99, 1, 1, 'deposit', 9.00, 'EUR', 'card', 'c', 0, 'approved', "
            "'2026-01-04 12:00', '2026-01-04 12:00', NULL, 0)",
            name="next.duckdb",
        )
        os.replace(fresh, served)
        monkeypatch.setattr(gateway_module, "RETIRE_GRACE_S", 0.0)
        # new reads see the new file; the read in progress keeps its snapshot
        assert gw.query("SELECT count(*) AS n FROM {players}", brands=None)["n"][0] == 6
        assert api.kpis(gw, FULL, scope=None).filter(pl.col("metric") == "deposits")["value"][0] == 470.00
        assert old.execute("SELECT count(*) FROM raw.payments").fetchone()[0] == 13
        assert len(gw._retired) == 1
    gw.query("SELECT 1 AS x", brands=None)
    assert gw._retired == []  # closed once nothing used it any more


def test_the_sweeper_thread_ends_at_exit_before_the_interpreter_finalizes(gw):
    """A daemon sweeper caught closing a DuckDB connection during interpreter finalization aborts the process
    (it cannot take the GIL back): `stop` (registered with atexit) ends it first, without waiting a whole
    sweep interval."""
    from warehouse.gateway import SWEEP_EVERY_S, _Sweeper

    sweeper = _Sweeper()
    sweeper.watch(gw)
    (thread,) = [t for t in threading.enumerate() if t.name == "warehouse-sweeper" and t is sweeper._thread]
    t0 = time.monotonic()
    sweeper.stop()
    assert not thread.is_alive() and time.monotonic() - t0 < SWEEP_EVERY_S

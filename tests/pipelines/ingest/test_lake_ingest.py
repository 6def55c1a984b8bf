"""DuckLake mode, the ingest side, with real parts: the test PostgreSQL holds the source and the lake's catalog,
data files go to a temp directory or to a local S3 endpoint (moto's server on 127.0.0.1), app replicas are
subprocesses reading through the read API, and a kill is a real SIGKILL.

What must hold: one snapshot per run; the lake holds exactly what the run built (reconcile agrees); readers
never see half a run; a kill -9 mid-commit leaves the previous or the next snapshot; a missing bucket,
refused credentials or an unreachable catalog stop the run with one clear message without credentials, and
the previous snapshot stays served.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from app.db import create_engine
from app.services.health.reads import warehouse_status
from pipelines.ingest import lake_publish, run_ingest
from pipelines.ingest.lake_publish import KEEP_ENV, resolve
from pipelines.ingest.reconcile import reconcile
from tests.conftest import PROJECT_ROOT, drop_database, local_lake
from tests.pipelines.ingest.conftest import T0, add_activity, fingerprint, source_counts
from tests.pipelines.ingest.lake_children import PAIR_SQL, manifest_check
from tests.ports import free_port
from warehouse.gateway import WarehouseUnreachable
from warehouse.lake import LakeConfig, parse_setting
from warehouse.lake_gateway import LakeGateway

BETS_PER_PLAYER = 5  # populate() and add_activity() give every player this many settled bets
KEY_ID, SECRET = "AKIDPITBOSSLAKE", "wJalr'XUtnFEMI/K7MDENG+bPxRfiCY"  # a quote: the SECRET's SQL must hold it


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[tuple[str, object]]:
    """A local S3 endpoint (moto's server, in this process, on a free port): (endpoint URL, boto3 client)."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY_ID, aws_secret_access_key="x",
                          region_name="us-east-1")  # fmt: skip
    try:
        yield endpoint, client
    finally:
        server.stop()


def s3_lake(dsn: str, endpoint: str, path: str, key_id: str = KEY_ID, secret: str = SECRET) -> LakeConfig:
    env = {"PITBOSS_LAKE_DATA_PATH": path, "PITBOSS_S3_ENDPOINT": endpoint, "PITBOSS_S3_ACCESS_KEY_ID": key_id,
           "PITBOSS_S3_SECRET_ACCESS_KEY": secret}  # fmt: skip
    return parse_setting(f"ducklake:postgres:{dsn}", env, Path("/nonexistent"))


def add_players(url: str, n: int, seed: int) -> None:
    """`n` players with their bets, payments and ledger rows, in ONE source transaction."""
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as c:
        add_activity(c, random.Random(seed), n, BETS_PER_PLAYER, T0 + dt.timedelta(days=seed))
    engine.dispose()


def lake_fingerprint(gw: LakeGateway) -> dict[str, tuple[int, int]]:
    """`conftest.fingerprint` of the lake's served snapshot (per raw table: rows, order-free hash)."""
    with gw.cursor() as cur:
        tables = [r[0] for r in cur.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'raw'"
        ).fetchall()]  # fmt: skip
        sql = " UNION ALL ".join(
            f"SELECT '{t}', count(*), coalesce(sum(hash(r)::HUGEINT), 0) FROM raw.\"{t}\" r" for t in tables
        )
        return {t: (int(n), int(h)) for t, n, h in cur.execute(sql).fetchall()}


def app_cli(args: list[str], source_db: str, data_dir: Path, warehouse: str, **env: str) -> subprocess.CompletedProcess:
    """`python -m app <args>` as an operator runs it, in DuckLake mode (`warehouse`: the PITBOSS_WAREHOUSE value)."""
    environ = {**os.environ, "PITBOSS_DATABASE_URL": source_db, "PITBOSS_DATA_DIR": str(data_dir),
               "PITBOSS_WAREHOUSE": warehouse, "PITBOSS_ENV": "demo", "COLUMNS": "200", **env}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=PROJECT_ROOT, env=environ, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def assert_one_clear_message(error: str | None, *must: str, secrets: tuple[str, ...]) -> None:
    assert error, "the run should have failed"
    assert "\n" not in error and "Traceback" not in error, error
    for word in must:
        assert word in error, error
    for secret in secrets:
        assert secret not in error, error


# --------------------------------------------------------------------------- a local lake


def test_each_run_is_one_snapshot_the_lake_matches_the_source_and_an_unreachable_catalog_stops_cleanly(
    source_db, pg_server_url, tmp_path
):
    name = f"lake_{uuid.uuid4().hex[:12]}"  # ducklake:<name>: a database on the source's server, created by ingest
    lake = parse_setting(f"ducklake:{name}", {"PITBOSS_LAKE_DATA_PATH": str(tmp_path / "lake")}, tmp_path)
    working = tmp_path / "wh" / "lake-ingest.duckdb"
    gw = None
    try:
        r1 = run_ingest(source_db, working, lake=lake).raise_for_status()
        resolved = resolve(lake, source_db)
        gw = LakeGateway(resolved)
        assert gw.snapshot().run_id == r1.run_id
        first = int(gw.snapshot_key().split(":")[1])
        assert "lake_publish" in r1.phases and "lake_check" in r1.phases

        add_players(source_db, 3, seed=1)
        r2 = run_ingest(source_db, working, lake=lake).raise_for_status()
        assert gw.snapshot().run_id == r2.run_id
        assert int(gw.snapshot_key().split(":")[1]) == first + 1  # ONE snapshot for the whole run
        assert lake_fingerprint(gw) == fingerprint(working)  # the lake holds exactly what the run built
        assert reconcile(source_db, working, lake=lake).ok  # `python -m app reconcile` against the lake
        status = warehouse_status(resolved)  # System health against the lake
        assert status["reachable"] and status["run_id"] == r2.run_id and status["size_bytes"] > 0
        pair = gw.query(PAIR_SQL, brands=None)
        assert pair["rounds"][0] == BETS_PER_PLAYER * pair["players"][0] == BETS_PER_PLAYER * 43

        # An unreachable catalog: one clear message, no password; the working file and the lake unchanged.
        served = fingerprint(working)
        add_players(source_db, 2, seed=2)
        password = "Hunter2-lake 'pw"
        escaped = password.replace("'", "\\'")
        away = parse_setting(
            f"ducklake:postgres:host=127.0.0.1 port={free_port()} dbname={name} user=lake password='{escaped}' "
            "connect_timeout=3",
            {"PITBOSS_LAKE_DATA_PATH": str(tmp_path / "lake")},
            tmp_path,
        )
        r3 = run_ingest(source_db, working, lake=away)
        assert r3.status == "failed"
        assert_one_clear_message(r3.error, "catalog", "cannot be reached", secrets=(password, "Hunter2"))
        assert fingerprint(working) == served and gw.snapshot().run_id == r2.run_id
        assert not list(working.parent.glob("*.tmp-*"))
    finally:
        if gw is not None:
            gw.close()
        drop_database(pg_server_url, name)


def test_a_first_run_refused_for_its_data_path_leaves_the_new_catalog_free_to_take_the_corrected_one(
    source_db, catalog, tmp_path
):
    dsn = catalog()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    working = tmp_path / "wh" / "lake-ingest.duckdb"
    r1 = run_ingest(source_db, working, lake=local_lake(dsn, blocker / "lake"))
    assert r1.status == "failed"
    assert_one_clear_message(r1.error, "is not writable", secrets=())

    # the operator corrects PITBOSS_LAKE_DATA_PATH: the catalog did not keep the unusable path
    lake = local_lake(dsn, tmp_path / "lake")
    r2 = run_ingest(source_db, working, lake=lake).raise_for_status()
    gw = LakeGateway(lake)
    try:
        assert gw.snapshot().run_id == r2.run_id
    finally:
        gw.close()


def test_reconcile_on_an_unusable_lake_says_why_in_one_line(source_db, catalog, tmp_path):
    password = "Hunter2-lake 'pw"
    escaped = password.replace("'", "\\'")
    away = f"ducklake:postgres:host=127.0.0.1 port={free_port()} dbname=x user=lake password='{escaped}'"
    lake_dir = {"PITBOSS_LAKE_DATA_PATH": str(tmp_path / "lake")}
    never = f"ducklake:postgres:{catalog()}"  # a catalog database no run has written
    empty = catalog()  # a lake a run has created but not published into
    lake_publish.open_writer(local_lake(empty, tmp_path / "lake"), source_db).close()
    cases = (
        (away, "cannot be reached"),
        (never, "holds no lake yet"),
        (f"ducklake:postgres:{empty}", "holds no warehouse yet"),
    )
    for setting, must in cases:
        for args in (["reconcile"], ["reconcile", "--json"]):
            out = app_cli(args, source_db, tmp_path, setting, **lake_dir)
            assert out.returncode == 2, out.stdout + out.stderr
            assert out.stderr.count("\n") == 1 and out.stderr.startswith("reconcile failed: "), out.stderr
            assert_one_clear_message(out.stderr.strip(), must, secrets=(password, "Hunter2"))
            if "--json" in args:
                assert_one_clear_message(json.loads(out.stdout)["error"], must, secrets=(password, "Hunter2"))


# --------------------------------------------------------------------------- S3-compatible storage


def test_an_s3_lake_serves_runs_and_refuses_a_missing_bucket_and_wrong_credentials(source_db, catalog, s3, tmp_path):
    from moto.core.authorization import enable_iam_authentication

    endpoint, client = s3
    client.create_bucket(Bucket="pitboss-lake")
    lake = s3_lake(catalog(), endpoint, "s3://pitboss-lake/prod/warehouse")
    working = tmp_path / "wh" / "lake-ingest.duckdb"
    r1 = run_ingest(source_db, working, lake=lake).raise_for_status()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="pitboss-lake")["Contents"]]
    assert keys and all(k.startswith("prod/warehouse/") and k.endswith(".parquet") for k in keys)
    gw = LakeGateway(lake)
    try:
        assert gw.snapshot().run_id == r1.run_id
        players = gw.query("SELECT count(*) AS n FROM {players}", brands=None)["n"][0]
        assert players == source_counts(source_db, ["players"])["players"]

        # Wrong credentials (the store checks them now): the run stops, the lake stays at run 1.
        add_players(source_db, 2, seed=3)
        wrong = s3_lake(lake.catalog_dsn or "", endpoint, lake.data_path, "AKIDWRONGWRONG", "not-the-secret-at-all")
        with enable_iam_authentication():
            r2 = run_ingest(source_db, working, lake=wrong)
        assert r2.status == "failed"
        assert_one_clear_message(r2.error, "refused the lake's credentials", secrets=("not-the-secret-at-all", SECRET))
        assert gw.snapshot().run_id == r1.run_id
        assert gw.query("SELECT count(*) AS n FROM {players}", brands=None)["n"][0] == players

        # A bucket that does not exist: the same.
        missing = s3_lake(catalog(), endpoint, "s3://no-such-bucket/lake")
        r3 = run_ingest(source_db, working, lake=missing)
        assert r3.status == "failed"
        assert_one_clear_message(r3.error, "no-such-bucket", "does not exist", secrets=(SECRET,))
        assert gw.snapshot().run_id == r1.run_id

        # The right credentials again: the next run is served.
        r4 = run_ingest(source_db, working, lake=lake).raise_for_status()
        assert gw.snapshot().run_id == r4.run_id
        assert gw.query("SELECT count(*) AS n FROM {players}", brands=None)["n"][0] == players + 2
    finally:
        gw.close()


def test_reconcile_and_the_gateway_say_when_the_store_refuses_the_credentials(source_db, catalog, s3, tmp_path):
    from moto.core.authorization import enable_iam_authentication

    endpoint, client = s3
    client.create_bucket(Bucket="pitboss-lake")
    dsn = catalog()
    lake = s3_lake(dsn, endpoint, "s3://pitboss-lake/wh")
    run_ingest(source_db, tmp_path / "wh" / "lake-ingest.duckdb", lake=lake).raise_for_status()
    env = {"PITBOSS_LAKE_DATA_PATH": lake.data_path, "PITBOSS_S3_ENDPOINT": endpoint,
           "PITBOSS_S3_ACCESS_KEY_ID": KEY_ID, "PITBOSS_S3_SECRET_ACCESS_KEY": SECRET}  # fmt: skip
    gw = LakeGateway(lake)
    try:
        with enable_iam_authentication():  # the store now refuses these credentials
            out = app_cli(["reconcile"], source_db, tmp_path, f"ducklake:postgres:{dsn}", **env)
            with pytest.raises(WarehouseUnreachable) as refused:  # System health and the pages: a clear refusal
                gw.snapshot()
        assert out.returncode == 2, out.stdout + out.stderr
        assert out.stderr.count("\n") == 1, out.stderr
        assert_one_clear_message(out.stderr.strip(), "refused the lake's credentials", secrets=(SECRET,))
        assert_one_clear_message(str(refused.value), "refused the lake's credentials", secrets=(SECRET,))
    finally:
        gw.close()


# --------------------------------------------------------------------------- replicas and kills


def _child(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.pipelines.ingest.lake_children", *args],
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc


def test_two_replicas_reading_while_ingest_commits_never_see_half_a_run(source_db, catalog, tmp_path):
    data = tmp_path / "lake"
    dsn = catalog()
    lake = local_lake(dsn, data)
    working = tmp_path / "wh" / "lake-ingest.duckdb"
    runs = [run_ingest(source_db, working, lake=lake).raise_for_status().run_id]
    stop = tmp_path / "stop"
    readers = [_child("read", f"ducklake:postgres:{dsn}", str(data), str(stop)) for _ in range(2)]
    try:
        for seed in (4, 5, 6):  # seeds whose random players keep a non-negative balance
            add_players(source_db, 4, seed=seed)  # players and their bets land together in the source
            runs.append(run_ingest(source_db, working, lake=lake).raise_for_status().run_id)
            time.sleep(0.3)
    finally:
        stop.touch()
        outputs = [json.loads(r.communicate(timeout=60)[0].strip().splitlines()[-1]) for r in readers]
    seen: set[str] = set()
    for out in outputs:
        assert out["errors"] == []
        assert len(out["answers"]) >= 5
        for run, manifest_ok, players, rounds, kpi_rows in out["answers"]:
            assert run in runs and manifest_ok, (run, manifest_ok)
            assert rounds == BETS_PER_PLAYER * players, (run, players, rounds)  # never half a run
            assert kpi_rows > 0
            seen.add(run)
    assert len(seen) >= 2, "the replicas should have read while runs were committed"


def test_a_kill_9_mid_commit_leaves_the_previous_or_the_next_snapshot(source_db, catalog, tmp_path, monkeypatch):
    data = tmp_path / "lake"
    dsn = catalog()
    lake = local_lake(dsn, data)
    working = tmp_path / "wh" / "lake-ingest.duckdb"
    previous = run_ingest(source_db, working, lake=lake).raise_for_status().run_id
    add_players(source_db, 5, seed=21)
    child = _child("ingest", source_db, str(working), f"ducklake:postgres:{dsn}", str(data))
    killed, seeds, lines = None, iter(range(22, 99)), []
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            said = child.stdout.readline()
            lines.append(said.strip())
            line = said.split()
            if line[:1] == ["ok"]:
                previous = line[1]
                add_players(source_db, 1, seed=next(seeds))
            elif line[:1] == ["commit"] and random.random() < 0.7:  # mid-commit: somewhere in its transaction
                killed = line[1]
                time.sleep(random.uniform(0.0, 0.6))
                break
            assert line, child.stderr.read() if child.stderr else "the ingest child died"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        # the child may be ahead of what this test has read (it runs on while the test adds players): what it
        # printed before it died says which run was last published and which one it was in
        for said in child.stdout.read().splitlines():
            line = said.split()
            if line[:1] == ["ok"]:
                previous = line[1]
            elif line[:1] == ["commit"]:
                killed = line[1]
    finally:
        if child.poll() is None:
            child.kill()
    assert killed is not None, ("the child never reached a commit", lines[-5:])
    assert child.returncode == -signal.SIGKILL

    gw = LakeGateway(lake)
    try:
        run, manifest_ok = manifest_check(gw)
        assert run in (previous, killed) and manifest_ok, (run, previous, killed)
        pair = gw.query(PAIR_SQL, brands=None)
        assert pair["rounds"][0] == BETS_PER_PLAYER * pair["players"][0]
        before = int(gw.snapshot_key().split(":")[1])
        # the next run recovers (stale temp file, orphan Parquet files) and publishes the source as it is;
        # with nothing kept, every older snapshot is expired and every file but the served ones deleted
        monkeypatch.setenv(KEEP_ENV, "0")
        after = run_ingest(source_db, working, lake=lake).raise_for_status()
        assert gw.snapshot().run_id == after.run_id and int(gw.snapshot_key().split(":")[1]) == before + 1
        assert reconcile(source_db, working, lake=lake).ok
        with psycopg.connect(dsn) as c:  # the catalog itself
            live = c.execute("SELECT count(*) FROM ducklake_data_file WHERE end_snapshot IS NULL").fetchone()[0]
            snapshots = c.execute("SELECT count(*) FROM ducklake_snapshot").fetchone()[0]
        assert snapshots == 1 and live == len(list(data.rglob("*.parquet")))
    finally:
        gw.close()


def test_ingest_runs_on_two_machines_take_turns_on_the_lake(source_db, catalog, tmp_path):
    """Each machine's file lock orders only its own runs: the lake's advisory lock orders every run that
    publishes into it (here another machine's run is simulated by a session holding that lock)."""
    lake = local_lake(catalog(), tmp_path / "lake")
    other_machine = psycopg.connect(lake.catalog_dsn, autocommit=True)
    try:
        assert other_machine.execute("SELECT pg_try_advisory_lock(%s)", [lake_publish.lock_key(lake)]).fetchone()[0]
        refused = run_ingest(source_db, tmp_path / "working.duckdb", lake=lake, lock_timeout=0.5)
        assert refused.status == "failed" and "another ingest run holds the lake's lock" in refused.error
        assert not (tmp_path / "working.duckdb").exists()  # nothing was read or built
    finally:
        other_machine.close()  # that run ends: its session's lock goes with it
    run_ingest(source_db, tmp_path / "working.duckdb", lake=lake, lock_timeout=5).raise_for_status()
    held = psycopg.connect(lake.catalog_dsn, autocommit=True)
    try:  # and the run released the lock when it ended
        assert held.execute("SELECT pg_try_advisory_lock(%s)", [lake_publish.lock_key(lake)]).fetchone()[0]
    finally:
        held.close()

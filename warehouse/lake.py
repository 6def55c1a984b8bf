"""DuckLake mode: `PITBOSS_WAREHOUSE=ducklake:<catalog>` — the warehouse as a lake several app replicas read.

The catalog lives in PostgreSQL, the data in Parquet files on a local path or S3-compatible storage:

- `ducklake:` or `ducklake:<name>`: a database `<name>` (default `pitboss_lake`) on the operational server
  (the embedded one, or `PITBOSS_DATABASE_URL`'s), same login; ingest creates it if missing;
- `ducklake:postgres:<libpq dsn>` or `ducklake:postgresql://user:password@host:port/database`: that database.

Data files: `PITBOSS_LAKE_DATA_PATH` (default `$PITBOSS_DATA_DIR/lake/`), a directory or `s3://bucket/prefix`;
for S3: `PITBOSS_S3_ENDPOINT` (`http://host:port` for a local store; none: AWS), `PITBOSS_S3_ACCESS_KEY_ID`,
`PITBOSS_S3_SECRET_ACCESS_KEY` (or `s3_secret_access_key` in the secrets file), `PITBOSS_S3_REGION`
(`us-east-1`), `PITBOSS_S3_URL_STYLE` (`path` with an endpoint, else `vhost`) — handed to DuckDB as a SECRET.

Ingest publishes each run as ONE DuckLake snapshot (`pipelines/ingest/lake_publish.py`). Readers go through
`LakeGateway` (`warehouse/lake_gateway.py`), the same `Gateway` (parameters only, time and row limits, brand
scope) over the lake: one in-memory DuckDB per process with the extensions loaded once (from the pinned wheels:
nothing is downloaded), the lake attached read-only *pinned* to the current snapshot (`SNAPSHOT_VERSION`), a
new pin when ingest commits a newer one — so a query, a stream's count and its rows come from one snapshot.
Errors never carry the catalog password or the storage secret.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
from psycopg.conninfo import conninfo_to_dict, make_conninfo

PREFIX = "ducklake:"
DEFAULT_CATALOG_DATABASE = "pitboss_lake"
# (wheel package, extension) loaded from the pinned duckdb-extension-* wheels, never INSTALLed
EXTENSIONS = {
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "ducklake": "duckdb_extension_ducklake",
    "httpfs": "duckdb_extension_httpfs",
}
S3_SECRET_NAME = "pitboss_lake_s3"
CREATE_HINT = "(run `python -m app ingest` to create it)"  # ends `explain`'s sentence when an ingest would help
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_KV_PASSWORD = re.compile(r"""(?i)\b(password|secret|key_id)(\s*=?\s*)('(?:[^'\\]|\\.)*'?|[^\s'",;)]+)""")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/@\s:]*):([^@\s/]*)@")


class LakeSettingError(ValueError):
    """`PITBOSS_WAREHOUSE=ducklake:…` or the lake's other settings cannot be used; the message says why."""


class LakeUnavailable(RuntimeError):
    """The lake's catalog or storage cannot be used; the message says which and why (no credentials)."""


class LakeMissing(LakeUnavailable):
    """No lake yet where the setting points (its catalog database, or a lake in it): an ingest creates it."""


@dataclass(frozen=True)
class S3Storage:
    endpoint: str | None = None  # host:port (no scheme); None: AWS
    key_id: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    region: str = "us-east-1"
    url_style: str = "vhost"
    use_ssl: bool = True


@dataclass(frozen=True)
class LakeConfig:
    """A DuckLake: its catalog (a libpq DSN, or a database on the operational server still to be resolved) and
    where its data files live. Hashable; `key` and `describe()` carry no credentials."""

    catalog_database: str | None  # the catalog's database on the operational server (None: catalog_dsn given)
    data_path: str  # absolute directory ending in '/', or s3://bucket/prefix/
    s3: S3Storage | None = None
    catalog_dsn: str | None = field(default=None, repr=False)  # libpq key/value string (None: not resolved yet)
    setting: str = field(default="", repr=False, compare=False)  # the PITBOSS_WAREHOUSE value, as given

    @property
    def resolved(self) -> bool:
        return self.catalog_dsn is not None

    def on_server(self, server_dsn: str) -> LakeConfig:
        """This lake with its catalog database on the server of `server_dsn` (libpq), same login."""
        if self.catalog_dsn is not None:
            return self
        return replace(self, catalog_dsn=make_conninfo(server_dsn, dbname=self.catalog_database))

    def catalog_parts(self) -> dict[str, str]:
        if self.catalog_dsn is None:
            raise LakeUnavailable("the lake's catalog is not resolved to a server yet")
        return {k: str(v) for k, v in conninfo_to_dict(self.catalog_dsn).items()}

    def secrets(self) -> tuple[str, ...]:
        out = []
        if self.catalog_dsn is not None:
            out.append(self.catalog_parts().get("password") or "")
        if self.s3 is not None:
            out += [self.s3.secret or "", self.s3.key_id or ""]
        return tuple(s for s in out if len(s) >= 4)

    def scrub(self, text: object) -> str:
        """`text` without this lake's credentials (catalog password, storage key and secret)."""
        out = "" if text is None else str(text)
        for value in sorted(self.secrets(), key=len, reverse=True):
            for form in (value.replace("\\", "\\\\").replace("'", "\\'"), value.replace("'", "''"), value):
                out = out.replace(form, "•••")
        out = _KV_PASSWORD.sub(lambda m: f"{m.group(1)}{m.group(2)}•••", out)
        return _URL_USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:•••@", out)

    def describe_catalog(self) -> str:
        if self.catalog_dsn is None:
            return f"database {self.catalog_database} on the operational server"
        p = self.catalog_parts()
        where = p.get("host", "localhost") + (f":{p['port']}" if p.get("port") else "")
        return f"database {p.get('dbname', '?')} at {where}"

    def describe(self) -> str:
        return f"DuckLake (catalog: {self.describe_catalog()}; data: {self.data_path})"

    @property
    def key(self) -> str:
        """A credential-free identity of this lake (cache keys, the gateway registry)."""
        if self.catalog_dsn is None:
            catalog = f"server/{self.catalog_database}"
        else:
            p = self.catalog_parts()
            catalog = f"{p.get('user', '')}@{p.get('host', '')}:{p.get('port', '')}/{p.get('dbname', '')}"
        return f"{PREFIX}{catalog}|{self.data_path}"

    @property
    def bucket(self) -> str | None:
        return self.data_path[len("s3://") :].split("/", 1)[0] if self.data_path.startswith("s3://") else None


def is_lake_setting(value: str | None) -> bool:
    return bool(value) and value.strip().lower().startswith(PREFIX)


def _catalog(rest: str) -> tuple[str | None, str | None]:
    """(catalog database on the operational server, catalog libpq DSN) from the text after `ducklake:`."""
    rest = rest.strip()
    if not rest:
        return DEFAULT_CATALOG_DATABASE, None
    if _NAME.fullmatch(rest):
        return rest, None
    lowered = rest.lower()
    if lowered.startswith(("postgresql://", "postgres://", "postgresql+")):
        url = "postgresql://" + rest.split("://", 1)[1]
        try:
            return None, make_conninfo(**conninfo_to_dict(url))
        except Exception:
            raise LakeSettingError("PITBOSS_WAREHOUSE=ducklake:<url>: the PostgreSQL URL cannot be parsed") from None
    if lowered.startswith("postgres:"):
        try:
            return None, make_conninfo(**conninfo_to_dict(rest[len("postgres:") :]))
        except Exception:
            raise LakeSettingError("PITBOSS_WAREHOUSE=ducklake:postgres:<dsn>: the DSN cannot be parsed") from None
    raise LakeSettingError(
        "PITBOSS_WAREHOUSE=ducklake:<catalog> takes a database name on the operational server (e.g. "
        f"ducklake:{DEFAULT_CATALOG_DATABASE}), ducklake:postgres:<libpq dsn> or ducklake:postgresql://…; "
        "the catalog must be PostgreSQL"
    )


def _s3(env: Mapping[str, str], s3_secret: str | None) -> S3Storage:
    endpoint = (env.get("PITBOSS_S3_ENDPOINT") or "").strip()
    use_ssl = True
    if endpoint:
        scheme, sep, rest = endpoint.partition("://")
        if sep:
            if scheme.lower() not in ("http", "https"):
                raise LakeSettingError("PITBOSS_S3_ENDPOINT must be host:port, http://host:port or https://host:port")
            use_ssl, endpoint = scheme.lower() == "https", rest
        endpoint = endpoint.rstrip("/")
    style = (env.get("PITBOSS_S3_URL_STYLE") or ("path" if endpoint else "vhost")).strip().lower()
    if style not in ("path", "vhost"):
        raise LakeSettingError(f"PITBOSS_S3_URL_STYLE must be 'path' or 'vhost', not {style!r}")
    return S3Storage(
        endpoint=endpoint or None,
        key_id=(env.get("PITBOSS_S3_ACCESS_KEY_ID") or "").strip() or None,
        secret=env.get("PITBOSS_S3_SECRET_ACCESS_KEY") or s3_secret or None,
        region=(env.get("PITBOSS_S3_REGION") or "us-east-1").strip(),
        url_style=style,
        use_ssl=use_ssl,
    )


def parse_setting(
    value: str, env: Mapping[str, str], data_dir: Path | str, *, s3_secret: str | None = None
) -> LakeConfig:
    """The lake `PITBOSS_WAREHOUSE=ducklake:…` names, with its data path and storage from `env`."""
    value = value.strip()
    if not is_lake_setting(value):
        raise LakeSettingError("not a DuckLake setting (it starts with ducklake:)")
    database, dsn = _catalog(value[len(PREFIX) :])
    raw_path = (env.get("PITBOSS_LAKE_DATA_PATH") or "").strip() or str(Path(data_dir) / "lake")
    s3 = None
    if raw_path.lower().startswith("s3://"):
        bucket = raw_path[len("s3://") :].split("/", 1)[0]
        if not bucket:
            raise LakeSettingError("PITBOSS_LAKE_DATA_PATH=s3://bucket/prefix needs a bucket")
        data_path = "s3://" + raw_path[len("s3://") :].strip("/") + "/"
        s3 = _s3(env, s3_secret)
    elif "://" in raw_path:
        raise LakeSettingError("PITBOSS_LAKE_DATA_PATH takes a local directory or s3://bucket/prefix")
    else:
        data_path = str(Path(raw_path).expanduser().resolve()) + "/"
    return LakeConfig(catalog_database=database, catalog_dsn=dsn, data_path=data_path, s3=s3, setting=value)


# --------------------------------------------------------------------------- DuckDB: extensions, secret, attach


def sql_literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def extension_path(name: str) -> Path:
    """The extension file shipped in its pinned duckdb-extension-* wheel (for the running DuckDB version)."""
    import importlib

    pkg = importlib.import_module(EXTENSIONS[name])
    base = Path(pkg.__file__).resolve().parent / "extensions"
    exact = base / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if exact.exists():
        return exact
    found = sorted(base.glob(f"*/{name}.duckdb_extension"))
    if not found:
        raise LakeUnavailable(f"the {name} extension is not installed (pip install {EXTENSIONS[name]})")
    return found[-1]


_verified: dict[str, tuple[int, int, int, int]] = {}  # extension files DuckDB checked the signature of
_verified_lock = threading.Lock()


def _identity(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _names(lake: LakeConfig | None) -> tuple[str, ...]:
    return ("postgres_scanner", "ducklake") + (("httpfs",) if lake is None or lake.s3 is not None else ())


def connect(lake: LakeConfig | None = None, *, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake's extensions loaded from the wheels (and its S3 secret, if any).

    As in `pipelines/ingest/duck.py`, an extension file whose signature this process has checked once (same
    device, inode, size, mtime) is loaded again without re-hashing it."""
    names = _names(lake)
    paths = {n: extension_path(n) for n in names}
    with _verified_lock:
        trusted = all(_verified.get(n) == _identity(p) for n, p in paths.items())
    config: dict[str, Any] = {"allow_unsigned_extensions": True} if trusted else {}
    if threads:
        config["threads"] = threads
    con = duckdb.connect(":memory:", config=config)
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        for path in paths.values():
            con.execute(f"LOAD {sql_literal(str(path))}")
        if not trusted:
            with _verified_lock:
                _verified.update({n: _identity(p) for n, p in paths.items()})
        if lake is not None and lake.s3 is not None:
            add_s3_secret(con, lake)
    except BaseException:
        con.close()
        raise
    return con


def add_s3_secret(con: duckdb.DuckDBPyConnection, lake: LakeConfig) -> None:
    """The S3 credentials as a temporary DuckDB SECRET scoped to the lake's bucket."""
    s3 = lake.s3
    assert s3 is not None
    parts = ["TYPE s3", f"REGION {sql_literal(s3.region)}", f"URL_STYLE {sql_literal(s3.url_style)}"]
    parts.append(f"USE_SSL {'true' if s3.use_ssl else 'false'}")
    if s3.key_id:
        parts.append(f"KEY_ID {sql_literal(s3.key_id)}")
    if s3.secret:
        parts.append(f"SECRET {sql_literal(s3.secret)}")
    if s3.endpoint:
        parts.append(f"ENDPOINT {sql_literal(s3.endpoint)}")
    parts.append(f"SCOPE {sql_literal('s3://' + (lake.bucket or ''))}")
    try:
        con.execute(f"CREATE OR REPLACE TEMPORARY SECRET {S3_SECRET_NAME} ({', '.join(parts)})")
    except duckdb.Error as exc:
        raise LakeUnavailable(f"the S3 settings of the lake are not usable: {lake.scrub(_first_line(exc))}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def explain(lake: LakeConfig, exc: BaseException, doing: str) -> str:
    """One clear, credential-free sentence for a failure of the lake's catalog or storage."""
    text = str(exc)
    low = text.lower()
    where = lake.describe_catalog()
    if "unable to connect to postgres" in low or "could not connect" in low or "connection refused" in low:
        detail = ""
        m = re.search(r"failed: ([^\n]*)", text)
        if m:
            detail = ": " + m.group(1).strip()
        if "does not exist" in low and "database" in low:
            return f"{doing}: the lake's catalog {where} does not exist {CREATE_HINT}"
        if "password authentication failed" in low or "authentication" in low:
            return f"{doing}: the lake's catalog {where} refused the login"
        return lake.scrub(f"{doing}: the lake's catalog {where} cannot be reached{detail}")
    if "creating a new ducklake is explicitly disabled" in low:  # a read-only ATTACH of a catalog never written
        return f"{doing}: the lake's catalog {where} holds no lake yet {CREATE_HINT}"
    if lake.s3 is not None and ("http" in low or "s3://" in low):
        bucket = lake.bucket
        if "nosuchbucket" in low or "404" in low:
            return f"{doing}: the bucket {bucket!r} of the lake's data path {lake.data_path} does not exist"
        if any(s in low for s in ("403", "invalidaccesskeyid", "signaturedoesnotmatch", "accessdenied", "forbidden")):
            return (
                f"{doing}: the object storage refused the lake's credentials for {lake.data_path} "
                "(check PITBOSS_S3_ACCESS_KEY_ID / PITBOSS_S3_SECRET_ACCESS_KEY)"
            )
        if "could not" in low or "connect" in low or "timeout" in low or "resolve" in low:
            endpoint = lake.s3.endpoint or "AWS S3"
            return f"{doing}: the object storage at {endpoint} cannot be reached"
    return lake.scrub(f"{doing}: {type(exc).__name__}: {_first_line(exc)}")


def attach(
    con: duckdb.DuckDBPyConnection,
    lake: LakeConfig,
    alias: str,
    *,
    read_only: bool = True,
    snapshot: int | None = None,
) -> None:
    """ATTACH the lake as `alias` (read-only, optionally pinned to a snapshot; or for writing: DATA_PATH set,
    the catalog initialised if new, no data inlined into the catalog). Raises LakeUnavailable."""
    if not _NAME.fullmatch(alias):
        raise ValueError(f"bad alias {alias!r}")
    target = sql_literal("ducklake:postgres:" + (lake.catalog_dsn or ""))
    if not lake.resolved:
        raise LakeUnavailable("the lake's catalog is not resolved to a server yet")
    options = []
    if read_only:
        options.append("READ_ONLY")
        if snapshot is not None:
            options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    else:
        options += [f"DATA_PATH {sql_literal(lake.data_path)}", "DATA_INLINING_ROW_LIMIT 0"]
    try:
        con.execute(f"ATTACH {target} AS {alias} ({', '.join(options)})")
    except duckdb.Error as exc:
        message = explain(lake, exc, "cannot open the lake")
        raise (LakeMissing if message.endswith(CREATE_HINT) else LakeUnavailable)(message) from None


def current_snapshot(con: duckdb.DuckDBPyConnection, alias: str) -> int:
    return int(con.execute(f"SELECT id FROM {alias}.current_snapshot()").fetchone()[0])


__all__ = [
    "DEFAULT_CATALOG_DATABASE",
    "LakeConfig",
    "LakeMissing",
    "LakeSettingError",
    "LakeUnavailable",
    "S3Storage",
    "attach",
    "connect",
    "current_snapshot",
    "explain",
    "is_lake_setting",
    "parse_setting",
]

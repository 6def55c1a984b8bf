"""One typed settings object, read from the environment (and `.streamlit/secrets.toml` for secrets).

`PITBOSS_ENV=demo` (default) allows demo users and a generated cookie key; `production` refuses
weak or missing secrets and demo accounts.

The audit key (`PITBOSS_AUDIT_KEY` or `audit_key` in the secrets file) keys the audit log's hash chain
(HMAC-SHA256); it must live outside the database. In demo without one, a public demo key is used (so
demo chains are not protected against the database owner); `make demo` writes a random one first.

The second-factor key (`PITBOSS_SECOND_FACTOR_KEY` or `second_factor_key` in the secrets file) encrypts the
staff TOTP secrets at rest; without one they are encrypted under a key derived from the audit key (also held
outside the database and never changed). Changing it later makes the enrolled factors unreadable (reset them).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from warehouse.lake import LakeConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRETS_FILE = PROJECT_ROOT / ".streamlit" / "secrets.toml"
REPORTING_CURRENCY = "EUR"

# Keys that appear in docs/examples of streamlit-authenticator and elsewhere: never acceptable.
WELL_KNOWN_COOKIE_KEYS = frozenset(
    {"some_signature_key", "random_signature_key", "abcdef", "secret", "changeme", "pitboss"}
)
MIN_COOKIE_KEY_BYTES = 32
MIN_AUDIT_KEY_BYTES = 32
MIN_WEBHOOK_SECRET_BYTES = 32
SMTP_TLS_MODES = ("starttls", "ssl", "none")
SMTP_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
# Used only in demo when no audit key is configured: public, so it protects nothing; production refuses it.
DEMO_AUDIT_KEY = "pitboss-demo-audit-key: public, demo only, never in production"

Environment = Literal["demo", "production"]


class SettingsError(RuntimeError):
    """The configuration is unusable; the message says what to fix."""


@dataclass(frozen=True)
class Settings:
    env: Environment
    data_dir: Path
    database_url: str | None  # None: use the embedded server under data_dir
    warehouse_path: Path
    cookie_key: str | None
    audit_key: str | None = None
    second_factor_key: str | None = None  # encrypts TOTP secrets at rest (default: derived from the audit key)
    cookie_name: str = "pitboss_auth"
    cookie_expiry_hours: float = 9.0
    reporting_currency: str = REPORTING_CURRENCY
    session_idle_minutes: int = 30  # a staff session unused this long ends (PITBOSS_SESSION_IDLE_MINUTES)
    # TEST ONLY (PITBOSS_POSTBACK_ALLOW_HOSTS): non-public addresses/networks postbacks may reach (a local test
    # receiver on 127.0.0.1); refused in production. Postbacks otherwise go to public addresses only.
    postback_allow_hosts: tuple[str, ...] = ()
    postback_ca_bundle: Path | None = None  # PITBOSS_POSTBACK_CA_BUNDLE: PEM of CAs trusted for postback HTTPS
    # Critical alerts by e-mail (PITBOSS_SMTP_*; the password also as smtp_password in the secrets file) and by
    # webhook (PITBOSS_ALERT_WEBHOOK_URL, signed with PITBOSS_ALERT_WEBHOOK_SECRET / alert_webhook_secret).
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "pitboss-alerts@localhost"
    smtp_tls: str = "starttls"  # starttls | ssl | none
    smtp_ca_bundle: Path | None = None  # PITBOSS_SMTP_CA_BUNDLE: PEM of CAs trusted for the SMTP server's TLS
    alert_webhook_url: str | None = None
    alert_webhook_secret: str | None = None
    # DuckLake mode (PITBOSS_WAREHOUSE=ducklake:…, warehouse/lake.py): the lake the app reads and ingest publishes
    # to; `warehouse_path` is then the ingest machine's working file ($PITBOSS_DATA_DIR/lake-ingest.duckdb).
    lake: LakeConfig | None = None

    @property
    def is_demo(self) -> bool:
        return self.env == "demo"

    def warehouse_target(self) -> Path | LakeConfig:
        """What the app reads (`warehouse.gateway.open_gateway`): the DuckDB file, or the lake with its catalog
        resolved (a `ducklake:<name>` catalog lives on the operational server: started if embedded)."""
        if self.lake is None or self.lake.resolved:
            return self.lake or self.warehouse_path
        from sqlalchemy.engine import make_url

        from app.db import database_url, libpq_dsn

        return self.lake.on_server(libpq_dsn(make_url(database_url(self)).render_as_string(hide_password=False)))

    @property
    def embedded_pg_dir(self) -> Path:
        return self.data_dir / "pg"

    def cookie_key_problem(self) -> str | None:
        """Why the cookie key is unacceptable, or None when it is fine."""
        key = self.cookie_key
        if not key:
            return "PITBOSS_COOKIE_KEY is not set (nor cookie_key in .streamlit/secrets.toml)"
        if key.strip().lower() in WELL_KNOWN_COOKIE_KEYS:
            return "the cookie key is a well-known example value"
        if len(key.encode()) < MIN_COOKIE_KEY_BYTES:
            return f"the cookie key is shorter than {MIN_COOKIE_KEY_BYTES} bytes"
        if len(set(key)) < 8:
            return "the cookie key has too little variety to be random"
        return None

    def audit_key_problem(self) -> str | None:
        """Why the audit key is unacceptable, or None when it is fine."""
        key = self.audit_key
        if not key:
            return "PITBOSS_AUDIT_KEY is not set (nor audit_key in .streamlit/secrets.toml)"
        if key == DEMO_AUDIT_KEY or key.strip().lower() in WELL_KNOWN_COOKIE_KEYS:
            return "the audit key is a well-known value"
        if len(key.encode()) < MIN_AUDIT_KEY_BYTES:
            return f"the audit key is shorter than {MIN_AUDIT_KEY_BYTES} bytes"
        if len(set(key)) < 8:
            return "the audit key has too little variety to be random"
        return None

    def alert_delivery_problem(self) -> str | None:
        """Why the alert e-mail or webhook settings are unacceptable in production, or None when they are fine."""
        if bool(self.smtp_user) != bool(self.smtp_password):
            return "PITBOSS_SMTP_USER and PITBOSS_SMTP_PASSWORD are set together or not at all"
        if self.smtp_password and self.smtp_tls == "none":
            return "PITBOSS_SMTP_TLS=none would send the SMTP password in clear; use starttls or ssl"
        if self.alert_webhook_url:
            if not self.alert_webhook_url.lower().startswith("https://"):
                return "PITBOSS_ALERT_WEBHOOK_URL must be an https:// URL"
            secret = self.alert_webhook_secret or ""
            if not secret:
                return "PITBOSS_ALERT_WEBHOOK_URL is set without PITBOSS_ALERT_WEBHOOK_SECRET (the body signing key)"
            if len(secret.encode()) < MIN_WEBHOOK_SECRET_BYTES or len(set(secret)) < 8:
                return f"the alert webhook secret must be at least {MIN_WEBHOOK_SECRET_BYTES} random bytes"
            if secret.strip().lower() in WELL_KNOWN_COOKIE_KEYS:
                return "the alert webhook secret is a well-known value"
        return None

    def effective_audit_key(self) -> bytes:
        """The key of the audit chain: the configured one; in demo without one, the public demo key.

        Raises SettingsError in production when the key is missing or weak.
        """
        if self.env == "production":
            problem = self.audit_key_problem()
            if problem:
                raise SettingsError(f"PITBOSS_ENV=production refuses to write or verify the audit log: {problem}")
        return (self.audit_key or DEMO_AUDIT_KEY).encode()

    def effective_second_factor_key(self) -> bytes:
        """The key the TOTP secrets are encrypted under (auth.totp.SecretBox derives the cipher key from it):
        the configured second-factor key, else the audit key (domain-separated there by HKDF)."""
        if self.second_factor_key:
            return b"second-factor-key:" + self.second_factor_key.encode()
        return b"audit-key:" + self.effective_audit_key()

    def check_production(self) -> None:
        """Refuse to run in production with weak secrets."""
        if self.env != "production":
            return
        if self.postback_allow_hosts:
            raise SettingsError(
                "PITBOSS_ENV=production refuses to start: PITBOSS_POSTBACK_ALLOW_HOSTS is set (a test-only setting "
                "that lets postbacks reach non-public addresses); unset it."
            )
        problem = self.cookie_key_problem()
        if problem:
            raise SettingsError(
                f"PITBOSS_ENV=production refuses to start: {problem}. "
                "Set PITBOSS_COOKIE_KEY to at least 32 random bytes, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        key = self.second_factor_key
        if key is not None and (len(key.encode()) < MIN_AUDIT_KEY_BYTES or len(set(key)) < 8):
            raise SettingsError(
                "PITBOSS_ENV=production refuses to start: PITBOSS_SECOND_FACTOR_KEY is set but weak; use at least "
                "32 random bytes or leave it unset (the audit key is then used)."
            )
        problem = self.audit_key_problem()
        if problem:
            raise SettingsError(
                f"PITBOSS_ENV=production refuses to start: {problem}. Set PITBOSS_AUDIT_KEY (kept outside the "
                "database, never changed once the audit log is written) to at least 32 random bytes, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        problem = self.alert_delivery_problem()
        if problem:
            raise SettingsError(f"PITBOSS_ENV=production refuses to start: {problem}.")


def _smtp_settings(env_vars: Mapping[str, str], secrets_toml: dict) -> dict:
    """The PITBOSS_SMTP_* settings, checked (a clear SettingsError naming the variable)."""
    tls = env_vars.get("PITBOSS_SMTP_TLS", "starttls").strip().lower() or "starttls"
    if tls not in SMTP_TLS_MODES:
        raise SettingsError(f"PITBOSS_SMTP_TLS must be one of {', '.join(SMTP_TLS_MODES)}, not {tls!r}")
    port = env_vars.get("PITBOSS_SMTP_PORT", "").strip() or str(SMTP_DEFAULT_PORTS[tls])
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SettingsError(f"PITBOSS_SMTP_PORT must be a port number (1–65535), not {port!r}")
    sender = env_vars.get("PITBOSS_SMTP_FROM", "").strip() or "pitboss-alerts@localhost"
    if any(c in sender for c in "\r\n") or "@" not in sender:
        raise SettingsError("PITBOSS_SMTP_FROM must be one e-mail address")
    ca = env_vars.get("PITBOSS_SMTP_CA_BUNDLE", "").strip()
    return {
        "smtp_host": env_vars.get("PITBOSS_SMTP_HOST", "").strip() or None,
        "smtp_port": int(port),
        "smtp_user": env_vars.get("PITBOSS_SMTP_USER", "").strip() or None,
        "smtp_password": env_vars.get("PITBOSS_SMTP_PASSWORD") or secrets_toml.get("smtp_password") or None,
        "smtp_from": sender,
        "smtp_tls": tls,
        "smtp_ca_bundle": Path(ca).resolve() if ca else None,
        "alert_webhook_url": env_vars.get("PITBOSS_ALERT_WEBHOOK_URL", "").strip() or None,
        "alert_webhook_secret": env_vars.get("PITBOSS_ALERT_WEBHOOK_SECRET")
        or secrets_toml.get("alert_webhook_secret")
        or None,
    }


def _warehouse_path(value: str) -> Path:
    """The DuckDB file `PITBOSS_WAREHOUSE` names; a value that starts like a URL scheme (`duklake:…`,
    `postgresql://…`) is refused, as a mistyped `ducklake:` would otherwise become a file in the current
    directory. Only the scheme is quoted back (what follows may hold a password)."""
    scheme = re.match(r"\s*([A-Za-z][A-Za-z0-9+.\-]+):", value)
    if scheme:
        raise SettingsError(
            f"PITBOSS_WAREHOUSE takes a DuckDB file path or ducklake:<catalog>, not a {scheme.group(1)}: "
            "value (is ducklake: mistyped?)"
        )
    return Path(value).resolve()


def _read_secrets(path: Path | None) -> dict:
    if path is not None and path.exists():
        with path.open("rb") as fh:
            return tomllib.load(fh)
    return {}


_DEFAULT_SECRETS = object()


def load_settings(
    environ: dict[str, str] | None = None, secrets_file: Path | None | object = _DEFAULT_SECRETS
) -> Settings:
    """Build settings from `environ` (default: the process environment) and `secrets_file`
    (default: `.streamlit/secrets.toml`; None: no secrets file)."""
    env_vars = os.environ if environ is None else environ
    env = env_vars.get("PITBOSS_ENV", "demo").strip().lower() or "demo"
    if env not in ("demo", "production"):
        raise SettingsError(f"PITBOSS_ENV must be 'demo' or 'production', not {env!r}")
    data_dir = Path(env_vars.get("PITBOSS_DATA_DIR") or PROJECT_ROOT / ".pitboss").resolve()
    warehouse = env_vars.get("PITBOSS_WAREHOUSE")
    secrets_toml = _read_secrets(SECRETS_FILE if secrets_file is _DEFAULT_SECRETS else secrets_file)
    lake = None
    if warehouse and warehouse.strip().lower().startswith("ducklake:"):  # DuckLake mode (warehouse/lake.py)
        from warehouse.lake import LakeSettingError, parse_setting

        try:
            lake = parse_setting(warehouse, env_vars, data_dir, s3_secret=secrets_toml.get("s3_secret_access_key"))
        except LakeSettingError as exc:
            raise SettingsError(str(exc)) from None
        warehouse_path = data_dir / "lake-ingest.duckdb"
    else:
        warehouse_path = _warehouse_path(warehouse) if warehouse else data_dir / "warehouse.duckdb"
    cookie_key = env_vars.get("PITBOSS_COOKIE_KEY") or secrets_toml.get("cookie_key")
    audit_key = env_vars.get("PITBOSS_AUDIT_KEY") or secrets_toml.get("audit_key")
    second_factor_key = env_vars.get("PITBOSS_SECOND_FACTOR_KEY") or secrets_toml.get("second_factor_key")
    expiry = env_vars.get("PITBOSS_COOKIE_EXPIRY_HOURS", "9")
    try:
        expiry_hours = float(expiry)
    except ValueError as exc:
        raise SettingsError(f"PITBOSS_COOKIE_EXPIRY_HOURS must be a number, not {expiry!r}") from exc
    if not 0 < expiry_hours <= 24 * 7:
        raise SettingsError("PITBOSS_COOKIE_EXPIRY_HOURS must be between 0 and 168")
    idle = env_vars.get("PITBOSS_SESSION_IDLE_MINUTES", "30").strip()
    if not idle.isdigit() or not 1 <= int(idle) <= 24 * 60:
        raise SettingsError(f"PITBOSS_SESSION_IDLE_MINUTES must be a whole number from 1 to 1440, not {idle!r}")
    allow_hosts = tuple(h.strip() for h in env_vars.get("PITBOSS_POSTBACK_ALLOW_HOSTS", "").split(",") if h.strip())
    for host in allow_hosts:
        try:
            ipaddress.ip_network(host, strict=False)
        except ValueError as exc:
            raise SettingsError(
                f"PITBOSS_POSTBACK_ALLOW_HOSTS takes IP addresses or networks (e.g. 127.0.0.1), not {host!r}"
            ) from exc
    ca_bundle = env_vars.get("PITBOSS_POSTBACK_CA_BUNDLE", "").strip()
    return Settings(
        env=env,  # type: ignore[arg-type]
        data_dir=data_dir,
        database_url=env_vars.get("PITBOSS_DATABASE_URL") or None,
        warehouse_path=warehouse_path,
        cookie_key=cookie_key,
        audit_key=audit_key,
        second_factor_key=second_factor_key or None,
        cookie_expiry_hours=expiry_hours,
        session_idle_minutes=int(idle),
        postback_allow_hosts=allow_hosts,
        postback_ca_bundle=Path(ca_bundle).resolve() if ca_bundle else None,
        lake=lake,
        **_smtp_settings(env_vars, secrets_toml),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()

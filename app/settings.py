"""One typed settings object, read from the environment (and `.streamlit/secrets.toml` for secrets).

`PITBOSS_ENV=demo` (default) allows demo users and a generated cookie key; `production` refuses
weak or missing secrets and demo accounts.

The audit key (`PITBOSS_AUDIT_KEY` or `audit_key` in the secrets file) keys the audit log's hash chain
(HMAC-SHA256); it must live outside the database. In demo without one, a public demo key is used (so
demo chains are not protected against the database owner); `make demo` writes a random one first.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRETS_FILE = PROJECT_ROOT / ".streamlit" / "secrets.toml"
REPORTING_CURRENCY = "EUR"

# Keys that appear in docs/examples of streamlit-authenticator and elsewhere: never acceptable.
WELL_KNOWN_COOKIE_KEYS = frozenset(
    {"some_signature_key", "random_signature_key", "abcdef", "secret", "changeme", "pitboss"}
)
MIN_COOKIE_KEY_BYTES = 32
MIN_AUDIT_KEY_BYTES = 32
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
    cookie_name: str = "pitboss_auth"
    cookie_expiry_hours: float = 9.0
    reporting_currency: str = REPORTING_CURRENCY
    session_idle_minutes: int = 30  # a staff session unused this long ends (PITBOSS_SESSION_IDLE_MINUTES)
    # TEST ONLY (PITBOSS_POSTBACK_ALLOW_HOSTS): non-public addresses/networks postbacks may reach (a local test
    # receiver on 127.0.0.1); refused in production. Postbacks otherwise go to public addresses only.
    postback_allow_hosts: tuple[str, ...] = ()
    postback_ca_bundle: Path | None = None  # PITBOSS_POSTBACK_CA_BUNDLE: PEM of CAs trusted for postback HTTPS

    @property
    def is_demo(self) -> bool:
        return self.env == "demo"

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

    def effective_audit_key(self) -> bytes:
        """The key of the audit chain: the configured one; in demo without one, the public demo key.

        Raises SettingsError in production when the key is missing or weak.
        """
        if self.env == "production":
            problem = self.audit_key_problem()
            if problem:
                raise SettingsError(f"PITBOSS_ENV=production refuses to write or verify the audit log: {problem}")
        return (self.audit_key or DEMO_AUDIT_KEY).encode()

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
        problem = self.audit_key_problem()
        if problem:
            raise SettingsError(
                f"PITBOSS_ENV=production refuses to start: {problem}. Set PITBOSS_AUDIT_KEY (kept outside the "
                "database, never changed once the audit log is written) to at least 32 random bytes, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )


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
    warehouse_path = Path(warehouse).resolve() if warehouse else data_dir / "warehouse.duckdb"
    secrets_toml = _read_secrets(SECRETS_FILE if secrets_file is _DEFAULT_SECRETS else secrets_file)
    cookie_key = env_vars.get("PITBOSS_COOKIE_KEY") or secrets_toml.get("cookie_key")
    audit_key = env_vars.get("PITBOSS_AUDIT_KEY") or secrets_toml.get("audit_key")
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
        cookie_expiry_hours=expiry_hours,
        session_idle_minutes=int(idle),
        postback_allow_hosts=allow_hosts,
        postback_ca_bundle=Path(ca_bundle).resolve() if ca_bundle else None,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()

"""One typed settings object, read from the environment (and `.streamlit/secrets.toml` for secrets).

`PITBOSS_ENV=demo` (default) allows demo users and a generated cookie key; `production` refuses
weak or missing secrets and demo accounts.
"""

from __future__ import annotations

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
    cookie_name: str = "pitboss_auth"
    cookie_expiry_hours: float = 9.0
    reporting_currency: str = REPORTING_CURRENCY

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

    def check_production(self) -> None:
        """Refuse to run in production with weak secrets."""
        if self.env != "production":
            return
        problem = self.cookie_key_problem()
        if problem:
            raise SettingsError(
                f"PITBOSS_ENV=production refuses to start: {problem}. "
                "Set PITBOSS_COOKIE_KEY to at least 32 random bytes, e.g. "
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
    cookie_key = env_vars.get("PITBOSS_COOKIE_KEY") or _read_secrets(
        SECRETS_FILE if secrets_file is _DEFAULT_SECRETS else secrets_file
    ).get("cookie_key")
    expiry = env_vars.get("PITBOSS_COOKIE_EXPIRY_HOURS", "9")
    try:
        expiry_hours = float(expiry)
    except ValueError as exc:
        raise SettingsError(f"PITBOSS_COOKIE_EXPIRY_HOURS must be a number, not {expiry!r}") from exc
    if not 0 < expiry_hours <= 24 * 7:
        raise SettingsError("PITBOSS_COOKIE_EXPIRY_HOURS must be between 0 and 168")
    return Settings(
        env=env,  # type: ignore[arg-type]
        data_dir=data_dir,
        database_url=env_vars.get("PITBOSS_DATABASE_URL") or None,
        warehouse_path=warehouse_path,
        cookie_key=cookie_key,
        cookie_expiry_hours=expiry_hours,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()

"""`python -m app demo`: fresh machine → running app (what `make demo` calls).

Steps: check settings → make a cookie key (demo only) → start the embedded PostgreSQL → make an audit key
(demo only, while the audit log is empty) → migrate → seed the
`demo` scale if the database is empty → demo staff → ingest into the warehouse → start a background ingest
loop (fresh within a minute), the alert delivery worker and live activity → run Streamlit at
http://localhost:8501 in the foreground.
A second `make demo` reuses the data instead of regenerating it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys

from app import db, migrate
from app.commands import serve
from app.commands.platform import PLATFORM_RULES
from app.settings import PROJECT_ROOT, SECRETS_FILE, SettingsError, get_settings


class DemoError(RuntimeError):
    """A setup step failed; the message says which."""


def ensure_demo_cookie_key() -> None:
    """Write a random cookie key into the git-ignored secrets file unless one is configured."""
    settings = get_settings()
    settings.check_production()  # production never gets a generated key: it must be configured
    if settings.cookie_key and settings.cookie_key_problem() is None:
        return
    SECRETS_FILE.parent.mkdir(parents=True, exist_ok=True)
    existing = SECRETS_FILE.read_text() if SECRETS_FILE.exists() else ""
    lines = [ln for ln in existing.splitlines() if not ln.strip().startswith("cookie_key")]
    lines.append(f'cookie_key = "{secrets.token_urlsafe(48)}"')
    SECRETS_FILE.write_text("\n".join(lines) + "\n")
    SECRETS_FILE.chmod(0o600)
    get_settings.cache_clear()
    print(f"generated a random cookie key into {SECRETS_FILE.relative_to(PROJECT_ROOT)}")


def ensure_demo_audit_key(url: str) -> None:
    """Write a random audit key into the secrets file unless one is configured or the audit log is written.

    An audit log already written (under the public demo key) keeps that key, so it still verifies;
    `make clean` starts over with a random key.
    """
    settings = get_settings()
    if settings.audit_key:
        return
    engine = db.create_engine(url)
    try:
        with engine.connect() as conn:
            # a fresh database has no audit table yet (this runs before the migrations): nothing written
            exists = conn.exec_driver_sql("SELECT to_regclass('audit_chain_head') IS NOT NULL").scalar()
            written = exists and conn.exec_driver_sql("SELECT coalesce(max(seq), 0) FROM audit_chain_head").scalar()
    finally:
        engine.dispose()
    if written:
        print("the audit log was written under the public demo audit key: keeping it (make clean to start over)")
        return
    SECRETS_FILE.parent.mkdir(parents=True, exist_ok=True)
    existing = SECRETS_FILE.read_text() if SECRETS_FILE.exists() else ""
    lines = [ln for ln in existing.splitlines() if not ln.strip().startswith("audit_key")]
    lines.append(f'audit_key = "{secrets.token_urlsafe(48)}"')
    SECRETS_FILE.write_text("\n".join(lines) + "\n")
    SECRETS_FILE.chmod(0o600)
    get_settings.cache_clear()
    print(f"generated a random audit key into {SECRETS_FILE.relative_to(PROJECT_ROOT)}")


def prepare(scale: str, seed_value: int) -> str:
    """Everything before the app starts; returns the database URL."""
    from app.services.staff.demo import ensure_demo_staff
    from pipelines.generator import is_seeded, seed

    if not get_settings().is_demo:
        raise DemoError("make demo sets up demo data and demo accounts: it runs only with PITBOSS_ENV=demo")
    ensure_demo_cookie_key()
    settings = get_settings()
    url = db.database_url(settings)
    print(f"PostgreSQL: {url}")
    ensure_demo_audit_key(url)
    migrate.upgrade(url)
    if is_seeded(url):
        print("demo data present: reusing it (make clean to start over)")
    else:
        print(f"seeding scale {scale} (seed {seed_value}) …")
        seed(url, scale, seed=seed_value, progress=True, rules=PLATFORM_RULES)
    created = ensure_demo_staff(db.get_engine(settings), settings)
    if created:
        print(f"demo staff created: {', '.join(created)} (passwords in the README and on the login page)")
    print(f"ingesting into {settings.warehouse_path} …")
    if subprocess.call([sys.executable, "-m", "app", "ingest"], cwd=PROJECT_ROOT) != 0:
        raise DemoError("the first ingest failed; see the run summary above")
    return url


def _demo(args: argparse.Namespace) -> int:
    """Set up, start the background processes, serve; Ctrl+C or `kill` (app.cli) stops them all."""
    try:
        prepare(args.scale, args.seed)
    except (SettingsError, DemoError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    background: list[subprocess.Popen] = []
    try:
        background.append(_start(["ingest", "--every", str(args.ingest_every)], env))
        # critical alerts by e-mail / webhook (when PITBOSS_SMTP_HOST / PITBOSS_ALERT_WEBHOOK_URL are set)
        background.append(_start(["alerts", "deliver", "--every", "30"], env))
        if args.live_rate > 0:  # something moving on the dashboards and in the incremental pipeline
            background.append(_start(["live", "--rate", str(args.live_rate)], env))
        print(f"Pitboss at http://localhost:{args.port}  (Ctrl+C stops the app, the ingest loop and live activity)")
        return serve.serve(args.replicas, args.port, environ=env)  # one Streamlit process, or N behind a proxy
    except (SettingsError, serve.ServeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        serve.stop_processes(background)


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "app", *command], env=env)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="set everything up with demo data and run the app (make demo)")
    p.add_argument("--scale", default="demo", choices=["tiny", "small", "demo", "large"])
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--replicas", type=int, default=1, help="app processes behind one address (docs/REPLICAS.md)")
    p.add_argument("--ingest-every", type=int, default=60, help="seconds between background ingest runs")
    p.add_argument("--live-rate", type=float, default=2.0, help="background activity, events/s (0: none)")
    p.set_defaults(func=_demo)

"""`db start|stop|status|url` and `migrate`."""

from __future__ import annotations

import argparse
import json
import sys

from alembic.util import CommandError
from sqlalchemy.engine import make_url

from app import db, migrate
from app.settings import get_settings


def _db(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.action == "start":
        print(f"running: {_shown(db.database_url(settings))}")
    elif args.action == "stop":
        if settings.database_url:
            print("PITBOSS_DATABASE_URL is set: the external server is not managed by Pitboss")
            return 1
        print("stopped" if db.stop_embedded(settings) else "not running")
    elif args.action == "status":
        status = db.server_status(settings)
        print(json.dumps(status, indent=2))
        return 0 if status.get("running", True) else 3
    elif args.action == "url":
        print(_shown(db.database_url(settings)))
    return 0


def _shown(url: str) -> str:
    """The URL as printed: its password (of PITBOSS_DATABASE_URL) never, `***` in its place."""
    return make_url(url).render_as_string(hide_password=True)


def _migrate(args: argparse.Namespace) -> int:
    url = db.database_url()
    try:
        if args.revision == "base" or args.downgrade:
            migrate.downgrade(url, args.revision if args.revision != "head" else "base")
        else:
            migrate.upgrade(url, args.revision)
    except CommandError as exc:  # an unknown revision: Alembic's one sentence
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"database at revision {migrate.current(url) or 'base'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("db", help="the embedded PostgreSQL under PITBOSS_DATA_DIR")
    p.add_argument("action", choices=["start", "stop", "status", "url"])
    p.set_defaults(func=_db)

    p = sub.add_parser("migrate", help="bring the operational schema to the latest migration")
    p.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    p.add_argument("--downgrade", action="store_true", help="downgrade to REVISION (default base)")
    p.set_defaults(func=_migrate)

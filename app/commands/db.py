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


DOWNGRADE_LOSES_DATA = (
    "a downgrade drops the tables and columns the later migrations added, with their data (to base: every table, "
    "the audit log included)"
)


def _downgrade_confirmed(url: str, revision: str, yes: bool) -> bool:
    """A downgrade goes ahead with --yes, or when the operator types the database's name at the prompt."""
    if yes:
        return True
    name = make_url(url).database or ""
    if not sys.stdin.isatty():
        print(f"error: {DOWNGRADE_LOSES_DATA}; add --yes to downgrade {name} to {revision}", file=sys.stderr)
        return False
    answer = input(f"{DOWNGRADE_LOSES_DATA}.\nType the database name ({name}) to downgrade it to {revision}: ")
    if answer.strip() != name:
        print("not downgraded", file=sys.stderr)
        return False
    return True


def _migrate(args: argparse.Namespace) -> int:
    url = db.database_url()
    downgrade = args.revision == "base" or args.downgrade
    if downgrade and args.revision == "head":
        print("error: --downgrade needs the REVISION to go down to (`base`: an empty database)", file=sys.stderr)
        return 2
    if downgrade and not _downgrade_confirmed(url, args.revision, args.yes):
        return 2
    try:
        if downgrade:
            migrate.downgrade(url, args.revision)
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
    p.add_argument("--downgrade", action="store_true", help="downgrade to REVISION (`base`: drop every table)")
    p.add_argument("--yes", action="store_true", help="confirm a downgrade without the prompt (it loses data)")
    p.set_defaults(func=_migrate)

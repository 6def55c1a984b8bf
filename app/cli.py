"""The Pitboss command line: one sub-command per module in `COMMAND_MODULES`.

Each module exposes `register(subparsers)`, which adds its parser(s) and sets `func`, a callable
taking the parsed arguments and returning the exit code.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys
import traceback

import psycopg
import sqlalchemy.exc

from app.commands import interrupts
from app.db import APP_ROLE, scrub_secrets
from app.settings import SettingsError

# Keep the names stable: scripts and operators rely on them (SPEC §7).
COMMAND_MODULES = (
    "app.commands.db",  # db start|stop|status|url, migrate
    "app.commands.audit",  # audit verify
    "app.commands.postbacks",  # postbacks [--every S] [--once]
    "app.commands.alerts",  # alerts deliver [--every S] [--once]
    "app.commands.ingest",  # ingest [--full] [--every S] [--json], reconcile
    "app.commands.demo",  # demo (make demo)
    "app.commands.serve",  # serve [--replicas N] [--port P]
    "app.commands.bench",  # bench [--scale S] (make bench)
    "app.commands.seed",  # seed, live  (generator)
    "app.commands.staff",  # staff add|list|disable|enable|reset-password
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="Pitboss back office")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        with interrupts.stopped_like_ctrl_c():  # `kill` and a closed terminal stop a command like Ctrl+C
            return int(args.func(args) or 0)
    except SettingsError as exc:  # a setting that cannot be used: its one sentence, never a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        problem = database_problem(exc)
        if problem is None:  # a bug: its traceback, but never a credential in it
            print(scrub_secrets("".join(traceback.format_exception(exc))), file=sys.stderr, end="")
            return 1
        print(f"error: {problem}", file=sys.stderr)
        return 2
    finally:
        # DuckDB objects left in reference cycles (an exception's traceback holds its frames) are freed here,
        # on the main thread: freed by a daemon thread's garbage collection during interpreter exit, DuckDB's
        # destructor cannot take the GIL back and the process aborts ("terminate called ...", exit -6).
        gc.collect()


_CONNECTION_STATES = ("08", "28", "3D")  # connection exception, invalid authorization, no such database


def database_problem(exc: BaseException) -> str | None:
    """One scrubbed sentence for a database the command cannot use (unreachable, refused, not migrated), or
    None for any other error."""
    orig = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) else exc
    if not isinstance(orig, psycopg.Error):
        return None
    state = orig.sqlstate or ""
    text = str(orig).strip()
    detail = scrub_secrets(text.splitlines()[0] if text else type(orig).__name__)
    if isinstance(orig, psycopg.OperationalError) and (not state or state.startswith(_CONNECTION_STATES)):
        return f"cannot connect to the database: {detail}"
    if state == "42P01" or f'role "{APP_ROLE}" does not exist' in text:
        return f"the database has no Pitboss schema ({detail}): run `python -m app migrate` first"
    return None

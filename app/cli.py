"""The Pitboss command line: one sub-command per module in `COMMAND_MODULES`.

Each module exposes `register(subparsers)`, which adds its parser(s) and sets `func`, a callable
taking the parsed arguments and returning the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

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
        return int(args.func(args) or 0)
    except SettingsError as exc:  # a setting that cannot be used: its one sentence, never a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

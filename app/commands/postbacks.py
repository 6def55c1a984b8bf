"""`python -m app postbacks [--every S] [--once]`: the postback delivery worker."""

from __future__ import annotations

import argparse
import sys

from app import db
from app.commands.argtypes import positive_int, positive_number
from app.commands.rounds import run_rounds
from app.services.tracking import worker as postback_worker
from app.services.tracking.outbound import OutboundPolicy
from app.settings import SettingsError, get_settings


def _run(args: argparse.Namespace) -> int:
    try:
        policy = OutboundPolicy.from_settings(get_settings())
    except SettingsError as exc:
        print(f"postbacks: {exc}", file=sys.stderr)
        return 2
    engine = db.create_engine(db.database_url())
    try:
        return run_rounds(
            "postbacks",
            args,
            lambda: postback_worker.run_until_idle(engine, limit=args.batch, timeout=args.timeout, policy=policy),
        )
    finally:
        engine.dispose()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("postbacks", help="deliver pending postbacks (retries with backoff, suppression)")
    p.add_argument(
        "--every", type=positive_number, default=0, metavar="S", help="keep running, polling every S seconds"
    )
    p.add_argument("--once", action="store_true", help="deliver what is due now and exit (the default)")
    p.add_argument(
        "--timeout",
        type=positive_number,
        default=postback_worker.DEFAULT_TIMEOUT,
        help="total seconds per HTTP request",
    )
    p.add_argument("--batch", type=positive_int, default=50, help="postbacks claimed per round")
    p.add_argument("--rounds", type=int, default=0, help=argparse.SUPPRESS)  # with --every: stop after N rounds
    p.set_defaults(func=_run)

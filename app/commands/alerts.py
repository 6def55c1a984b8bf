"""`python -m app alerts deliver [--every S] [--once]`: send queued critical-alert e-mails and webhooks."""

from __future__ import annotations

import argparse
import sys

from app import db
from app.commands.argtypes import positive_int, positive_number
from app.commands.rounds import run_rounds
from app.services.alerts import delivery
from app.services.tracking.outbound import OutboundPolicy
from app.settings import SettingsError, get_settings


def _deliver(args: argparse.Namespace) -> int:
    try:
        settings = get_settings()
        settings.check_production()
        policy = OutboundPolicy.from_settings(settings)
    except SettingsError as exc:
        print(f"alerts deliver: {exc}", file=sys.stderr)
        return 2
    engine = db.create_engine(db.database_url())
    try:
        return run_rounds(
            "alerts deliver",
            args,
            lambda: delivery.run_until_idle(
                engine, settings=settings, policy=policy, limit=args.batch, timeout=args.timeout
            ),
        )
    finally:
        engine.dispose()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alerts", help="critical-alert delivery (e-mail and webhook)")
    inner = p.add_subparsers(dest="alerts_command", metavar="<alerts command>", required=True)
    d = inner.add_parser(
        "deliver", help="send queued alert e-mails and webhooks (retries with backoff 1 min → 1 h, then failed)"
    )
    d.add_argument(
        "--every", type=positive_number, default=0, metavar="S", help="keep running, polling every S seconds"
    )
    d.add_argument("--once", action="store_true", help="send what is due now and exit (the default)")
    d.add_argument(
        "--timeout", type=positive_number, default=delivery.DEFAULT_TIMEOUT, help="seconds per network operation"
    )
    d.add_argument("--batch", type=positive_int, default=20, help="deliveries claimed per round")
    d.add_argument("--rounds", type=int, default=0, help=argparse.SUPPRESS)  # with --every: stop after N rounds
    d.set_defaults(func=_deliver)

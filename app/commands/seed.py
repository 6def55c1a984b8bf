"""`seed --scale S [--seed N] [--as-of DATE] [--force]` and `live --rate R [--seconds T] [--seed N]`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time

from app import db, migrate
from app.commands.argtypes import positive_number
from app.commands.platform import PLATFORM_RULES


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _seed(args: argparse.Namespace) -> int:
    from pipelines.generator import AlreadySeeded, seed

    url = db.database_url()
    migrate.upgrade(url)
    started = time.perf_counter()
    try:
        counts = seed(
            url,
            args.scale,
            args.seed,
            progress=not args.quiet,
            as_of=args.as_of,
            force=args.force,
            rules=PLATFORM_RULES,
        )
    except AlreadySeeded as exc:
        print(f"refusing to seed: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    print(json.dumps({"scale": args.scale, "seed": args.seed, "seconds": round(elapsed, 1), "rows": counts}, indent=2))
    return 0


def _live(args: argparse.Namespace) -> int:
    from pipelines.generator.live import live
    from pipelines.generator.seed import is_seeded

    url = db.database_url()
    migrate.upgrade(url)
    if not is_seeded(url):
        print("the database has no players: run `python -m app seed --scale tiny` first", file=sys.stderr)
        return 1
    if args.seconds is None:
        print(f"producing {args.rate:g} events/s until Ctrl-C …", file=sys.stderr)
    counts = live(url, args.rate, args.seconds, seed=args.seed, rules=PLATFORM_RULES)
    print(json.dumps(counts, indent=2, sort_keys=True))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from pipelines.generator.scales import SCALES

    p = sub.add_parser("seed", help="generate synthetic data (starts the embedded server if needed)")
    p.add_argument("--scale", required=True, choices=list(SCALES), help="how much data")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42): same seed, same rows")
    p.add_argument("--as-of", type=_date, default=None, help="end of the 12-month history (default: today, UTC)")
    p.add_argument("--force", action="store_true", help="replace existing data (empties the generated tables)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_seed)

    p = sub.add_parser("live", help="keep producing activity (bets, payments, registrations, …)")
    p.add_argument("--rate", type=positive_number, required=True, help="events per second")
    p.add_argument(
        "--seconds", type=positive_number, default=None, help="stop after this many seconds (default: never)"
    )
    p.add_argument("--seed", type=int, default=None, help="random seed for the event stream")
    p.set_defaults(func=_live)

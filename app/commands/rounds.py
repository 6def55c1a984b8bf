"""The `--every S` loop of the delivery workers (postbacks, alert deliveries): one round, a report, again."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from app import db


def run_rounds(name: str, args: argparse.Namespace, one_round: Callable[[], Any]) -> int:
    """Run `one_round()` once, or every `args.every` seconds (at most `args.rounds` times when set).

    Each round's report (an object with `as_dict()`) is printed as one JSON line. A failing round (e.g. the
    database is down) is said on stderr, scrubbed of credentials, and the loop goes on; without `--every`
    the error is raised.
    """
    rounds = 0
    while True:
        rounds += 1
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            report = one_round()
        except Exception as exc:
            if args.once or not args.every:
                raise
            print(f"{name}: round failed ({db.error_line(exc)}); trying again in {args.every:g}s", file=sys.stderr)
        else:
            print(json.dumps({"at": stamp, **report.as_dict()}), flush=True)
        if args.once or not args.every or (getattr(args, "rounds", 0) and rounds >= args.rounds):
            return 0
        time.sleep(args.every)

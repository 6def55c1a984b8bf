"""`python -m app postbacks [--every S] [--once]`: the postback delivery worker."""

from __future__ import annotations

import argparse
import json
import time

from app import db
from app.services.tracking import worker as postback_worker


def _run(args: argparse.Namespace) -> int:
    engine = db.create_engine(db.database_url())
    try:
        while True:
            report = postback_worker.run_until_idle(engine, limit=args.batch, timeout=args.timeout)
            print(json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **report.as_dict()}))
            if args.once or not args.every:
                return 0
            time.sleep(args.every)
    finally:
        engine.dispose()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("postbacks", help="deliver pending postbacks (retries with backoff, suppression)")
    p.add_argument("--every", type=float, default=0, metavar="S", help="keep running, polling every S seconds")
    p.add_argument("--once", action="store_true", help="deliver what is due now and exit (the default)")
    p.add_argument("--timeout", type=float, default=postback_worker.DEFAULT_TIMEOUT, help="HTTP timeout in seconds")
    p.add_argument("--batch", type=int, default=50, help="postbacks claimed per round")
    p.set_defaults(func=_run)

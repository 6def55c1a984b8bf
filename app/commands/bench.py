"""`python -m app bench [--scale S]`: every benchmark in one run on the same data (what `make bench` calls).

The benchmarks and their harness live in the top-level `bench` package; this command only parses the
arguments and calls `bench.run.main`.
"""

from __future__ import annotations

import argparse

SCALES = ("tiny", "small", "demo", "large")


def _bench(args: argparse.Namespace) -> int:
    from bench.run import main

    return main(
        args.scale, args.seed, with_dlt=not args.no_dlt, with_pages=not args.no_pages, live_seconds=args.live_seconds
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run the benchmarks; results into docs/BENCHMARKS.md (make bench)")
    p.add_argument("--scale", default="demo", choices=SCALES)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-dlt", action="store_true", help="skip the dlt baseline (needs requirements-bench.txt)")
    p.add_argument("--no-pages", action="store_true", help="skip the page timings")
    p.add_argument(
        "--live-seconds", type=float, default=60.0, help="live activity before each measured incremental run (60)"
    )
    p.set_defaults(func=_bench)

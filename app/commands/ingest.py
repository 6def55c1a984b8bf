"""`ingest [--full] [--every S] [--json]` and `reconcile [--json]` (PostgreSQL → DuckDB warehouse)."""

from __future__ import annotations

import argparse

from app.settings import get_settings


def _ingest(args: argparse.Namespace) -> int:
    from pipelines.ingest.cli import ingest_command

    return ingest_command(args, get_settings())


def _reconcile(args: argparse.Namespace) -> int:
    from pipelines.ingest.cli import reconcile_command

    return reconcile_command(args, get_settings())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="copy PostgreSQL into the DuckDB warehouse (incremental by default)")
    p.add_argument("--full", action="store_true", help="rebuild every table from scratch")
    p.add_argument("--every", type=float, metavar="SECONDS", help="keep running, one run every SECONDS")
    p.add_argument("--runs", type=int, metavar="N", help=argparse.SUPPRESS)  # with --every: stop after N runs
    p.add_argument("--json", action="store_true", help="print one JSON object per run (per-table stats)")
    p.set_defaults(func=_ingest)

    p = sub.add_parser("reconcile", help="compare source and warehouse; exit 1 on any mismatch")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_reconcile)

"""`ingest [--full] [--every S] [--json]` and `reconcile [--json]` (PostgreSQL → DuckDB warehouse)."""

from __future__ import annotations

import argparse
import json
import sys

from app import db
from app.commands import interrupts
from app.commands.argtypes import positive_number
from app.settings import SettingsError, get_settings


def _evaluate_alerts(_result) -> None:
    """After every ingest run (ok or failed): evaluate the alert rules on the new state."""
    from app.db import get_engine
    from app.services.alerts.evaluate import evaluate_alerts
    from warehouse.runlog import recent_runs

    settings = get_settings()
    try:
        opened = evaluate_alerts(get_engine(settings), settings.warehouse_path, runs=recent_runs(settings))
    except Exception as exc:  # alerting must never stop ingestion; say so loudly
        print(f"alert evaluation failed: {db.error_line(exc)}", file=sys.stderr)
        return
    if opened:
        print(f"{len(opened)} new alert(s): " + "; ".join(a.title for a in opened[:5]), file=sys.stderr)


def _restatements() -> dict:
    """Compare the closed months with the served warehouse, record what moved (app.services.finance)."""
    from app.db import get_engine
    from app.services.finance.writes import detect_restatements
    from warehouse.gateway import open_gateway

    settings = get_settings()
    served = settings.warehouse_target() if settings.lake is not None else settings.warehouse_path  # file or lake
    return detect_restatements(get_engine(settings), open_gateway(served)).to_dict()


def _after_ingest(result) -> None:
    """After every run: the alert rules; after a good one, the restatements of closed months (never raising)."""
    _evaluate_alerts(result)
    if not getattr(result, "ok", False):
        return
    try:
        found = _restatements()
    except Exception as exc:
        print(f"restatement check failed: {db.error_line(exc)}", file=sys.stderr)
        return
    if found["new"]:
        print(f"{len(found['new'])} restatement line(s) of closed months recorded", file=sys.stderr)


def _ingest(args: argparse.Namespace) -> int:
    from pipelines.ingest.cli import ingest_command

    settings = get_settings()
    db.database_url(settings)  # an unusable PITBOSS_DATABASE_URL is one line (app.cli), not a traceback
    after = None if args.no_alerts else _after_ingest
    with interrupts.only_recorded():  # the run stops at its own points, never inside DuckDB (stopping.py)
        return ingest_command(args, settings, after_run=after, signalled=interrupts.received)


def _reconcile(args: argparse.Namespace) -> int:
    from pipelines.ingest.cli import reconcile_command

    try:
        settings = get_settings()
        db.database_url(settings)
    except SettingsError as exc:  # said on stderr by app.cli; a script reading --json learns it there too
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc), "mismatches": []}), flush=True)
        raise
    with interrupts.only_recorded():  # as in _ingest
        return reconcile_command(args, settings, restatements=_restatements, signalled=interrupts.received)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="copy PostgreSQL into the DuckDB warehouse (incremental by default)")
    p.add_argument("--full", action="store_true", help="rebuild every table from scratch")
    p.add_argument("--every", type=positive_number, metavar="SECONDS", help="keep running, one run every SECONDS")
    p.add_argument("--runs", type=int, metavar="N", help=argparse.SUPPRESS)  # with --every: stop after N runs
    p.add_argument("--json", action="store_true", help="print one JSON object per run (per-table stats)")
    p.add_argument("--no-alerts", action="store_true", help="do not evaluate the alert rules after the run")
    p.set_defaults(func=_ingest)

    p = sub.add_parser(
        "reconcile",
        help="compare source and warehouse (exit 1 on any mismatch); report the restatements of closed months",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_reconcile)

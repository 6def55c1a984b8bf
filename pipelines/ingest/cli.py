"""Console glue for `python -m app ingest` and `python -m app reconcile`: rich progress, tables, JSON."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

import duckdb
import psycopg
import sqlalchemy.exc
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.db import scrub_secrets
from pipelines.ingest import stopping
from pipelines.ingest.reconcile import ReconcileReport, reconcile
from pipelines.ingest.run import RunResult, run_forever, run_ingest
from warehouse.lake import LakeUnavailable


def _summary(result: RunResult) -> Table:
    title = (
        f"ingest {result.run_id}: {result.status.upper()} ({'full' if result.full else 'incremental'}, "
        f"{result.seconds:.2f} s, data as of {result.source_as_of:%Y-%m-%d %H:%M:%S} UTC)"
        if result.source_as_of
        else f"ingest {result.run_id}: {result.status.upper()}"
    )
    table = Table(title=title)
    for col in ("table", "mode", "read", "merged", "deleted", "watermark", "s", "status"):
        # Only the watermark folds (or gives way) in a narrow terminal or a log: the counts stay whole.
        table.add_column(col, justify="right" if col in ("read", "merged", "deleted", "s") else "left",
                         no_wrap=col != "watermark", overflow="fold" if col == "watermark" else "ellipsis")  # fmt: skip
    for t in result.tables:
        table.add_row(
            t.table,
            t.mode,
            str(t.rows_read),
            str(t.rows_merged),
            str(t.rows_deleted),
            t.watermark or "",
            f"{t.seconds:.2f}",
            t.status,
        )
    return table


def _run_once(args: Any, source: Any, console: Console) -> RunResult:
    if args.json or not console.is_terminal:
        return run_ingest(source, full=args.full)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("ingest", total=None)

        def progress(event: str, info: dict[str, Any]) -> None:
            if event == "start":
                bar.update(task, total=len(info["tables"]), description="full load" if info["full"] else "incremental")
            elif event == "table":
                bar.update(task, advance=1, description=f"{info['table']} ({info['rows_read']} rows)")
            elif event == "marts":
                bar.update(task, description="building marts")

        return run_ingest(source, full=args.full, progress=progress)


def _report(result: RunResult, args: Any, console: Console) -> None:
    if args.json:
        print(json.dumps(result.to_dict(), default=str), flush=True)
        return
    console.print(_summary(result))
    if not result.ok:
        console.print(f"[red]ingest failed:[/red] {escape(scrub_secrets(result.error))}")


def ingest_command(
    args: Any,
    settings: Any,
    after_run: Callable[[RunResult], None] | None = None,
    signalled: Callable[[], bool] | None = None,
) -> int:
    """`ingest`: one run, or one every `--every` seconds; `after_run` is called after each run (ok or not);
    `signalled()`: whether a stop signal came (see `stopping.on_worker`)."""
    try:
        return _ingest_command(args, settings, after_run, signalled)
    except Exception as exc:  # never a raw traceback: it could print the DSN
        return _fail("ingest", exc, args)


def _ingest_command(
    args: Any, settings: Any, after_run: Callable[[RunResult], None] | None, signalled: Callable[[], bool] | None
) -> int:
    console = Console(stderr=False)
    if args.every is None:

        def once() -> RunResult:
            result = _run_once(args, settings, console)
            _report(result, args, console)
            if after_run:
                after_run(result)
            return result

        return 0 if stopping.on_worker(once, signalled).ok else 1  # Ctrl+C or SIGTERM stop it cleanly (stopping.py)
    if args.every <= 0:
        print("--every must be a positive number of seconds", file=sys.stderr)
        return 2

    def on_result(result: RunResult) -> None:
        _report(result, args, console)
        if after_run:
            after_run(result)

    failures = run_forever(
        settings, None, args.every, on_result=on_result, max_runs=args.runs, signalled=signalled, full=args.full
    )
    return 0 if failures == 0 else 1


# one line is enough (LakeUnavailable: the lake's catalog or storage, explained without credentials)
EXPECTED_FAILURES = (OSError, duckdb.Error, psycopg.Error, sqlalchemy.exc.DBAPIError, LakeUnavailable)


def _fail(what: str, exc: BaseException, args: Any) -> int:
    """Report a command that could not run: one scrubbed line (no DSN password), as JSON too with --json; an
    unexpected error (a bug) also gets its traceback, every line of it scrubbed."""
    reason = exc_text(exc)
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "error": reason, "mismatches": []}), flush=True)
    if not isinstance(exc, EXPECTED_FAILURES):
        print(scrub_secrets("".join(traceback.format_exception(exc))), file=sys.stderr, end="")
    print(f"{what} failed: {reason}", file=sys.stderr)
    return 2


def exc_text(exc: BaseException) -> str:
    """`Type: message` of an exception with every credential scrubbed (the DuckDB ATTACH error carries the DSN)."""
    if isinstance(exc, FileNotFoundError):
        return scrub_secrets(str(exc))
    return scrub_secrets(f"{type(exc).__name__}: {str(exc).strip()}")


def reconcile_command(
    args: Any,
    settings: Any,
    restatements: Callable[[], dict] | None = None,
    signalled: Callable[[], bool] | None = None,
) -> int:
    """`reconcile`: source vs warehouse (exit 1 on a mismatch), plus the restatements of closed months when the
    composition root hands in `restatements` (a section of the output; it does not change the exit status)."""
    console = Console()
    try:  # on a worker thread, which Ctrl+C or SIGTERM stop cleanly (stopping.py)
        report: ReconcileReport = stopping.on_worker(lambda: reconcile(settings), signalled)
    except Exception as exc:  # never a traceback: it would print the DSN
        return _fail("reconcile", exc, args)
    if restatements is not None:
        try:
            report.restatements = stopping.on_worker(restatements, signalled)
        except Exception as exc:  # the comparison of source and warehouse stands; say why this part is missing
            report.restatements = {"error": exc_text(exc)}
    if args.json:
        print(json.dumps(report.to_dict(), default=str))
        return 0 if report.ok else 1
    table = Table(
        title=f"reconcile: source as of {report.source_as_of:%Y-%m-%d %H:%M:%S} UTC, "
        f"warehouse as of {report.snapshot_as_of or '?'}"
    )
    for col in ("table", "source rows", "warehouse rows", "diff"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for r in report.counts.iter_rows(named=True):
        style = "red" if r["diff"] else None
        table.add_row(r["table"], str(r["source_rows"]), str(r["warehouse_rows"]), str(r["diff"]), style=style)
    console.print(table)
    n_days = report.daily.select("day", "operator_id").unique().height
    for line in report.restatement_lines():
        console.print(line, markup=False)
    if report.ok:
        console.print(
            f"[green]OK[/green]: row counts match; {n_days} day × brand cells of stakes, wins, deposits, "
            "withdrawals and bonus costs match"
        )
        return 0
    console.print("[red]MISMATCH[/red]:")
    for line in report.mismatches():
        console.print(f"  {line}", markup=False)
    return 1

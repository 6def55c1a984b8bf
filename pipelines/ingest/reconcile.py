"""Source ↔ warehouse reconciliation: per-table row counts and per day × brand money totals.

Compares the operational PostgreSQL (one REPEATABLE READ snapshot) with the `raw` tables of the served
warehouse. Daily totals (UTC days, brand currency): settled real stakes and real wins (by settled_at),
approved deposits and withdrawals (by created_at), bonus costs = converted amounts (by converted_at).
With live activity running, rows written after the snapshot's `source_as_of` show up as differences:
reconcile right after an ingest, or with writers paused.

`restatements` is filled by the composition root (`app/commands/ingest.py`) with the restatements of closed months
(`app.services.finance`): a section of the report that does not change `ok` (a restatement is a late business
event, a chargeback or a backdated correction, recorded against its closed month, not a copying fault).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipelines.ingest import stopping
from pipelines.ingest.duck import attach_source, pg_query, sql_literal
from pipelines.ingest.schema import quote_ident
from pipelines.ingest.specs import SPECS, TableSpec

# (metric, table, day column, amount expression, filter)
DAILY_METRICS = (
    ("stakes", "bets", "settled_at", "real_stake", "status = 'settled'"),
    ("wins", "bets", "settled_at", "real_win", "status = 'settled'"),
    ("deposits", "payments", "created_at", "amount", "kind = 'deposit' AND status = 'approved'"),
    ("withdrawals", "payments", "created_at", "amount", "kind = 'withdrawal' AND status = 'approved'"),
    ("bonus_costs", "bonuses", "converted_at", "converted_amount", "status = 'converted'"),
)


@dataclass
class ReconcileReport:
    counts: pl.DataFrame  # table, source_rows, warehouse_rows, diff
    daily: pl.DataFrame  # day, operator_id, brand, metric, source, warehouse, diff
    source_as_of: dt.datetime | None
    snapshot_as_of: dt.datetime | None
    restatements: dict[str, Any] | None = None  # checked, new, outstanding (or error): see the module docstring

    @property
    def count_mismatches(self) -> pl.DataFrame:
        return self.counts.filter(pl.col("diff") != 0)

    @property
    def daily_mismatches(self) -> pl.DataFrame:
        return self.daily.filter(pl.col("diff") != 0)

    @property
    def ok(self) -> bool:
        return self.count_mismatches.is_empty() and self.daily_mismatches.is_empty()

    def mismatches(self) -> list[str]:
        """One human line per mismatch, naming the table, or the day, brand and metric."""
        lines = [
            f"table {r['table']}: source {r['source_rows']} rows, warehouse {r['warehouse_rows']}"
            for r in self.count_mismatches.iter_rows(named=True)
        ]
        lines += [
            f"{r['day']} brand {r['brand']} {r['metric']}: source {r['source']}, warehouse {r['warehouse']} "
            f"(diff {r['diff']})"
            for r in self.daily_mismatches.iter_rows(named=True)
        ]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source_as_of": self.source_as_of.isoformat() if self.source_as_of else None,
            "snapshot_as_of": self.snapshot_as_of.isoformat() if self.snapshot_as_of else None,
            "counts": self.counts.to_dicts(),
            "mismatches": self.mismatches(),
            "restatements": self.restatements,
        }

    def restatement_lines(self) -> list[str]:
        """The restatements section in words: one line per closed figure that differs now from its closed value."""
        r = self.restatements
        if r is None:
            return []
        if r.get("error"):
            return [f"restatements of closed months could not be checked: {r['error']}"]
        head = (
            f"restatements of closed months: {len(r['outstanding'])} figure(s) differ from their closed value "
            f"({r['checked']} closed month(s) checked, {len(r['new'])} new line(s) recorded now)"
        )
        return [head] + [
            f"  {x['brand']} {x['month']} {x['metric']}{' ' + x['currency'] if x['currency'] else ''}: "
            f"{x['difference']} since the close — {x['reason']}"
            for x in r["outstanding"]
        ]


def _daily_sql(day_expr: str, schema_prefix: str) -> str:
    parts = []
    for metric, table, day_col, amount, where in DAILY_METRICS:
        parts.append(
            f"SELECT {day_expr.format(col=day_col)} AS day, operator_id, '{metric}' AS metric, "
            f"sum({amount}) AS amount FROM {schema_prefix}{table} WHERE {where} AND {day_col} IS NOT NULL "
            "GROUP BY 1, 2"
        )
    return " UNION ALL ".join(parts)


def reconcile(
    source: Any, warehouse_path: Path | str | None = None, *, specs: tuple[TableSpec, ...] = SPECS, lake: Any = None
) -> ReconcileReport:
    """Compare the source database with the served warehouse (URL + path, or Settings; in DuckLake mode —
    `lake`, default Settings.lake — with the lake's current snapshot)."""
    from pipelines.ingest.run import _resolve

    url, warehouse = _resolve(source, warehouse_path)
    lake = lake if lake is not None else getattr(source, "lake", None)
    if lake is None and not warehouse.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse}: run `python -m app ingest` first")
    con = stopping.watch(duckdb.connect(":memory:"))  # Ctrl+C or SIGTERM interrupt its queries (stopping.py)
    read_lake = None  # DuckLake mode, once attached: its read errors are explained (warehouse.lake.explain)
    try:
        attach_source(con, url)
        if lake is None:
            con.execute(f"ATTACH {sql_literal(str(warehouse))} AS wh (READ_ONLY)")
        else:
            from pipelines.ingest.lake_publish import attach_for_reading

            read_lake = attach_for_reading(con, lake, url, "wh")
            _require_lake_warehouse(con, read_lake)
        con.execute("BEGIN")
        source_as_of = con.execute(f"SELECT * FROM {pg_query('SELECT now()')}").fetchone()[0]
        snap = con.execute("SELECT max(source_as_of) FROM wh.meta.snapshot").fetchone()[0]
        rows = []
        for spec in specs:
            t = quote_ident(spec.name)
            src = con.execute(f"SELECT * FROM {pg_query(f'SELECT count(*) FROM public.{t}')}").fetchone()[0]
            wh = con.execute(f"SELECT count(*) FROM wh.raw.{t}").fetchone()[0]
            rows.append((spec.name, int(src), int(wh), int(wh) - int(src)))
        counts = pl.DataFrame(rows, schema=["table", "source_rows", "warehouse_rows", "diff"], orient="row")
        con.execute(
            "CREATE TEMP TABLE src AS SELECT day::DATE AS day, operator_id::INTEGER AS operator_id, metric, "
            "amount::DECIMAL(38,2) AS amount FROM "
            + pg_query(_daily_sql("({col} AT TIME ZONE 'UTC')::date", "public."))
        )
        con.execute(
            "CREATE TEMP TABLE whs AS SELECT day, operator_id::INTEGER AS operator_id, metric, "
            "amount::DECIMAL(38,2) AS amount FROM (" + _daily_sql("CAST({col} AS DATE)", "wh.raw.") + ")"
        )
        daily = con.execute(
            """SELECT coalesce(s.day, w.day) AS day, coalesce(s.operator_id, w.operator_id) AS operator_id,
                      coalesce(o.code, CAST(coalesce(s.operator_id, w.operator_id) AS VARCHAR)) AS brand,
                      coalesce(s.metric, w.metric) AS metric,
                      coalesce(s.amount, 0) AS source, coalesce(w.amount, 0) AS warehouse,
                      coalesce(w.amount, 0) - coalesce(s.amount, 0) AS diff
               FROM src s FULL OUTER JOIN whs w
                 ON s.day = w.day AND s.operator_id = w.operator_id AND s.metric = w.metric
               LEFT JOIN wh.raw.operators o ON o.id = coalesce(s.operator_id, w.operator_id)
               ORDER BY 1, 2, 4"""
        ).pl()
        con.execute("COMMIT")
    except duckdb.Error as exc:
        if read_lake is None:
            raise
        from warehouse.lake import LakeUnavailable, explain

        raise LakeUnavailable(explain(read_lake, exc, "cannot read the lake")) from None
    finally:
        stopping.close(con)
    return ReconcileReport(counts, daily, source_as_of.astimezone(dt.UTC).replace(tzinfo=None), snap)


def _require_lake_warehouse(con: duckdb.DuckDBPyConnection, lake: Any) -> None:
    """Raise FileNotFoundError (as for a missing file) when the lake attached as `wh` holds no warehouse yet."""
    try:
        con.execute("SELECT count(*) FROM wh.meta.snapshot").fetchone()
    except duckdb.CatalogException:
        raise FileNotFoundError(
            f"the lake ({lake.describe()}) holds no warehouse yet: run `python -m app ingest` first"
        ) from None

"""Payments: the withdrawal queue page's data, the risk flags of 500 queued withdrawals, payment search answers.

Measured on the benchmark database (`bench.run`), through the services the pages call, as a finance person of
every brand (a read: no session, nothing written):

- `queue`: the Withdrawal queue page's data — `queue.queue_summary` and `queue.withdrawal_queue` (its 500 oldest
  queued withdrawals, each with its live risk flags). Target ≤ 1 s.
- `flags_500`: `queue.bench_queue_flags(engine, 500)`, the flags of the 500 oldest queued withdrawals alone
  (five set-based queries). Target ≤ 300 ms.
- `search`: `search.search_payments` as the Payments page asks it (newest 500 first): the page's default (the
  last 30 days of the data), one player by id, one player by username, and withdrawals by status and amount
  range over 90 days. Target ≤ 500 ms each (p95).

A seeded history leaves few withdrawals pending (they wait for staff), so when fewer than QUEUED are queued the
benchmark adds pending withdrawals of existing players (spread over brands, methods, amounts and the last three
days) and deletes exactly those rows afterwards.

`python -m bench.payments --scale tiny` measures only this, on the scale's benchmark database (seeded if needed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.services.payments import queue, search
from auth.identity import Actor

QUEUED = 500
QUEUE_TARGET_MS = 1000
FLAGS_TARGET_MS = 300
SEARCH_TARGET_MS = 500
FINANCE = Actor(staff_id=None, username="bench:finance", roles=("finance",), brand_scope=None)


def _timed(fn: Callable[[], Any], repeat: int) -> dict[str, Any]:
    """p50 / p95 / max of `repeat` calls of `fn` after one warm-up call (milliseconds)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, max(0, round(0.95 * len(times)) - 1))]
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(p95, 1), "max_ms": round(times[-1], 1),
            "runs": repeat}  # fmt: skip


def top_up_queue(engine: Engine, n: int = QUEUED) -> list[int]:
    """Add pending withdrawals until `n` are queued; returns the ids added (delete them with `remove`)."""
    with engine.begin() as conn:
        queued = conn.scalar(sa.text("SELECT count(*) FROM payments WHERE kind = 'withdrawal' AND status = 'pending'"))
        missing = max(0, n - int(queued))
        if not missing:
            return []
        rows = conn.execute(
            sa.text(
                """
                WITH picked AS (
                    SELECT p.id, p.operator_id, o.currency FROM players p JOIN operators o ON o.id = p.operator_id
                     WHERE NOT p.is_test ORDER BY md5(p.id::text) LIMIT :n
                ), numbered AS (
                    SELECT *, row_number() OVER (ORDER BY id) - 1 AS k, count(*) OVER () AS m FROM picked
                )
                INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, status, created_at)
                SELECT x.id, x.operator_id, 'withdrawal', 20 + (g.i * 37) % 4000, x.currency,
                       (ARRAY['bank_transfer', 'card', 'ewallet'])[1 + g.i % 3], 'pending',
                       now() - make_interval(mins => CAST((g.i * 53) % 4320 AS integer))
                  FROM generate_series(0, :n - 1) AS g(i) JOIN numbered x ON x.k = g.i % x.m
                RETURNING id
                """
            ),
            {"n": missing},
        )
        return [r[0] for r in rows]


def remove(engine: Engine, ids: list[int]) -> None:
    if ids:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM payments WHERE id = ANY(:ids)"), {"ids": ids})


def _searches(engine: Engine) -> dict[str, search.PaymentFilters]:
    """The searches measured, anchored on the data's last payment day and a player with many payments."""
    with engine.connect() as conn:
        latest = conn.scalar(sa.text("SELECT max(created_at) FROM payments")) or dt.datetime.now(dt.UTC)
        busy = conn.execute(
            sa.text(
                "SELECT x.player_id, p.username FROM payments x JOIN players p ON p.id = x.player_id"
                " GROUP BY x.player_id, p.username ORDER BY count(*) DESC, x.player_id LIMIT 1"
            )
        ).one_or_none()
    end = latest.astimezone(dt.UTC).date()
    out = {
        "page default (last 30 days)": search.PaymentFilters(date_from=end - dt.timedelta(days=30), date_to=end),
        "approved withdrawals 100–1,000, 90 days": search.PaymentFilters(
            kind="withdrawal",
            status="approved",
            min_amount="100",
            max_amount="1000",
            date_from=end - dt.timedelta(days=90),
            date_to=end,
        ),  # fmt: skip
    }
    if busy is not None:
        out["one player by id"] = search.PaymentFilters(player=str(busy.player_id))
        out["one player by username"] = search.PaymentFilters(player=busy.username)
    return out


def measure(url: str, *, repeat: int = 10, actor: Actor = FINANCE) -> dict[str, Any]:
    """The payments benchmark on the database at `url` (see the module docstring)."""
    from app.db import create_engine

    engine = create_engine(url, poolclass=sa.pool.NullPool)
    added = top_up_queue(engine)
    try:
        rows: list[dict] = []

        def page() -> None:
            queue.queue_summary(engine, actor)
            rows[:] = queue.withdrawal_queue(engine, actor, limit=QUEUED)

        result: dict[str, Any] = {"queue": _timed(page, repeat)}
        result["queue"]["rows"] = len(rows)
        result["queue"]["flagged"] = sum(1 for r in rows if r["flags"])
        flagged: list[int] = []
        result["flags_500"] = _timed(lambda: flagged.append(queue.bench_queue_flags(engine, QUEUED)), repeat)
        result["flags_500"]["rows"] = flagged[-1]
        result["search"] = {}
        for name, filters in _searches(engine).items():
            found: list[int] = []

            def answer(f: search.PaymentFilters = filters, out: list[int] = found) -> None:
                out.append(search.search_payments(engine, actor, f).height)

            result["search"][name] = {**_timed(answer, repeat), "rows": found[-1]}
        result["synthetic_queued"] = len(added)
        return result
    finally:
        remove(engine, added)
        engine.dispose()


def markdown_rows(p: dict[str, Any], row: Callable[[str, str, str, bool | None], str]) -> list[str]:
    """The benchmark's rows of the report table (`row(name, value, target, met)`, as `bench.run._row`)."""
    q, f = p["queue"], p["flags_500"]
    lines = [
        row(
            f"Withdrawal queue page data ({q['rows']} queued withdrawals with their risk flags, and the summary)",
            f"p50 {q['p50_ms']} ms, p95 {q['p95_ms']} ms",
            f"≤ {QUEUE_TARGET_MS / 1000:g} s",
            q["p95_ms"] <= QUEUE_TARGET_MS,
        ),
        row(
            f"risk flags of {f['rows']} queued withdrawals",
            f"p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms",
            f"≤ {FLAGS_TARGET_MS} ms",
            f["p95_ms"] <= FLAGS_TARGET_MS,
        ),
    ]
    for name, s in p["search"].items():
        lines.append(
            row(
                f"payment search: {name} ({s['rows']} rows)",
                f"p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms",
                f"p95 ≤ {SEARCH_TARGET_MS} ms",
                s["p95_ms"] <= SEARCH_TARGET_MS,
            )
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Only this benchmark, on the scale's benchmark database (seeded first if needed); prints its rows."""
    from app import migrate
    from app.commands.platform import PLATFORM_RULES
    from bench.run import _row, bench_database
    from pipelines.generator import is_seeded, seed

    parser = argparse.ArgumentParser(prog="python -m bench.payments", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="tiny", choices=("tiny", "small", "demo", "large"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    url, _ = bench_database(args.scale)
    migrate.upgrade(url)
    if not is_seeded(url):
        seed(url, args.scale, seed=args.seed, progress=True, rules=PLATFORM_RULES)
    result = measure(url, repeat=args.repeat)
    print("| measure | value | target | |\n|---|---|---|---|")
    print("\n".join(markdown_rows(result, _row)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The benchmark harness: every benchmark in one run on the same data (`python -m app bench [--scale S]`,
which is what `make bench` calls, parses its arguments in app/commands/bench.py and calls `main`).

Uses its own database (embedded server under `PITBOSS_DATA_DIR/bench-<scale>/`, or database
`pitboss_bench_<scale>` on `PITBOSS_DATABASE_URL`'s server) because the ingest benchmark changes ~1 % of
the source rows. Writes `docs/bench/<scale>.json` and the scale's section of `docs/BENCHMARKS.md`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from app import db, migrate
from app.commands.platform import PLATFORM_RULES
from app.settings import PROJECT_ROOT, get_settings

DOCS = PROJECT_ROOT / "docs"
BENCH_MD = DOCS / "BENCHMARKS.md"
EXPORT_GROWTH_TARGET_MIB = 128  # a 1 M-row export's peak RSS growth (flat: one chunk, not the set)


def machine() -> dict[str, Any]:
    """The machine and the versions the numbers were measured with."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    except (OSError, AttributeError):
        mem_kb = 0
    versions = {name: metadata.version(name) for name in ("duckdb", "polars", "streamlit", "SQLAlchemy", "psycopg")}
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        **versions,
    }


def bench_database(scale: str) -> tuple[str, Path]:
    """(database URL, work directory) of the benchmark data set for `scale`."""
    settings = get_settings()
    workdir = settings.data_dir / f"bench-{scale}"
    workdir.mkdir(parents=True, exist_ok=True)
    if settings.database_url:
        server = db.normalise_url(settings.database_url)
        name = f"pitboss_bench_{scale}"
        db.ensure_database(server, name)
        from sqlalchemy.engine import make_url

        return make_url(server).set(database=name).render_as_string(hide_password=False), workdir
    return db.embedded_url(workdir / "pg"), workdir


def _pg_version(url: str) -> str:
    import sqlalchemy as sa

    engine = db.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        version = conn.scalar(sa.text("SHOW server_version"))
    engine.dispose()
    return version


def run(scale: str, seed_value: int, *, with_dlt: bool, with_pages: bool) -> dict[str, Any]:
    """Seed the scale's benchmark database if needed, then measure ingest, dlt, warehouse reads, exports, payments
    (withdrawal queue, risk flags, search) and pages."""
    from bench import exports as export_bench
    from bench import ingest as ingest_bench
    from bench import payments as payments_bench
    from bench import warehouse_queries as wh_bench
    from pipelines.generator import is_seeded, seed
    from pipelines.ingest import run_ingest
    from pipelines.ingest.specs import SPECS

    url, workdir = bench_database(scale)
    migrate.upgrade(url)
    result: dict[str, Any] = {
        "scale": scale,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {**machine(), "postgresql": _pg_version(url)},
    }
    if not is_seeded(url):
        t0 = time.perf_counter()
        counts = seed(url, scale, seed=seed_value, progress=True, rules=PLATFORM_RULES)
        result["seed"] = {"seconds": round(time.perf_counter() - t0, 1), "rows": counts}
    print("ingest benchmark …")
    result["ingest"] = ingest_bench.measure(url, workdir)
    if with_dlt:
        from bench.dlt_compare import dlt_full_load  # dlt is imported only here (requirements-bench.txt)

        print("dlt baseline …")
        dlt = dlt_full_load(url, [s.name for s in SPECS], workdir)
        dlt["pitboss_vs_dlt"] = round(result["ingest"]["full_rows_per_s"] / dlt["rows_per_s"], 2)
        result["dlt"] = dlt
    served = workdir / "warehouse.duckdb"
    run_ingest(url, served, full=True).raise_for_status()
    print("warehouse query benchmark …")
    result["warehouse"] = wh_bench.measure(served)
    result["warehouse_build"] = wh_bench.measure_build(served)
    result["postgres_kpi"] = wh_bench.measure_pg(url)
    print("export benchmark (1 M rows) …")
    result["exports"] = export_bench.measure(url, workdir)
    print("payments benchmark (withdrawal queue, flags, search) …")
    result["payments"] = payments_bench.measure(url)
    kpi_wh = result["warehouse"]["queries"]["kpis"]["p95_ms"]
    result["warehouse_vs_postgres"] = round(result["postgres_kpi"]["kpi"]["p95_ms"] / kpi_wh, 1) if kpi_wh else None
    if with_pages:
        from bench.pages import measure as measure_pages

        print("page benchmark …")
        result["pages"] = measure_pages(url=url, warehouse=served)
        from bench.replicas import measure as measure_replicas

        print("replicas benchmark (40 Overview sessions over two replicas) …")
        result["replicas"] = measure_replicas(url=url, warehouse=served)
    return result


def _row(name: str, value: str, target: str, met: bool | None) -> str:
    verdict = "" if met is None else ("met" if met else "**missed**")
    return f"| {name} | {value} | {target} | {verdict} |"


def markdown(r: dict[str, Any]) -> str:
    """The scale's section of docs/BENCHMARKS.md."""
    m = r["machine"]
    lines = [
        f"Measured {r['measured_at']} on {m['cpu']} ({m['cores']} cores, {m['ram_gib']} GiB), {m['os']}; "
        f"Python {m['python']}, PostgreSQL {m['postgresql']}, duckdb {m['duckdb']}, polars {m['polars']}, "
        f"streamlit {m['streamlit']}. Raw numbers: `docs/bench/{r['scale']}.json`.",
        "",
        "| measure | value | target | |",
        "|---|---|---|---|",
    ]
    if "seed" in r:
        rows = sum(r["seed"]["rows"].values()) if isinstance(r["seed"]["rows"], dict) else r["seed"]["rows"]
        lines.append(_row("generate (seed)", f"{r['seed']['seconds']} s, {rows:,} rows", "≤ 90 s at demo", None))
    i = r["ingest"]
    lines += [
        _row("bare scanner copy", f"{i['bare_scanner_seconds']} s ({i['bare_scanner_rows_per_s']:,} rows/s)", "", None),
        _row(
            "full load (Pitboss)",
            f"{i['full_seconds']} s ({i['full_rows_per_s']:,} rows/s) = {i['full_vs_bare']} × bare",
            "≥ 0.8 × bare",
            i["full_vs_bare"] >= 0.8,
        ),
    ]
    if "dlt" in r:
        d = r["dlt"]
        lines.append(
            _row(
                "dlt sql_database (pyarrow)",
                f"{d['seconds']} s ({d['rows_per_s']:,} rows/s); Pitboss = {d['pitboss_vs_dlt']} × dlt",
                "Pitboss ≥ 5 × dlt",
                d["pitboss_vs_dlt"] >= 5,
            )
        )
    lines += [
        _row(
            "incremental after ~1 % changed",
            f"{i['incremental_seconds']} s = {i['incremental_fraction']:.1%} of full "
            f"({i['changed_rows']:,} rows changed)",
            "≤ 10 % of full",
            i["incremental_fraction"] <= 0.10,
        ),
        _row("full load with marts", f"{i['full_with_marts_seconds']} s (marts {i['marts_seconds']} s)", "", None),
    ]
    limit = 100 if r["scale"] != "large" else 500
    for name, q in r["warehouse"]["queries"].items():
        lines.append(
            _row(
                f"Overview query `{name}`",
                f"p50 {q['p50_ms']} ms, p95 {q['p95_ms']} ms",
                f"p95 ≤ {limit} ms",
                q["p95_ms"] <= limit,
            )  # fmt: skip
        )
    pg = r["postgres_kpi"]["kpi"]
    lines.append(
        _row(
            "KPI on PostgreSQL vs warehouse",
            f"PostgreSQL p95 {pg['p95_ms']} ms = {r['warehouse_vs_postgres']} × the warehouse",
            "warehouse ≥ 20 × faster",
            (r["warehouse_vs_postgres"] or 0) >= 20,
        )
    )
    for fmt, e in (r.get("exports") or {}).items():
        lines.append(
            _row(
                f"whole export of {e['rows']:,} players to {fmt.upper()} (streamed)",
                f"{e['seconds']} s, {e['file_mib']} MiB file; peak RSS growth {e['peak_rss_growth_mib']} MiB "
                f"(DuckDB block cache {e['duckdb_cache_mib']} MiB of it; {e['peak_rss_growth_cold_mib']} MiB "
                "in a cold process)",
                f"growth ≤ {EXPORT_GROWTH_TARGET_MIB} MiB",
                e["peak_rss_growth_mib"] <= EXPORT_GROWTH_TARGET_MIB,
            )
        )
    if r.get("payments"):
        from bench.payments import markdown_rows

        lines += markdown_rows(r["payments"], _row)
    for name, p in (r.get("pages") or {}).get("pages", {}).items():
        lines.append(_row(f"page `{name}` warm rerun", f"{p['p50_ms']} ms (p95 {p['p95_ms']} ms)", "≤ 100 ms",
                          p["p50_ms"] <= 100))  # fmt: skip
    conc = (r.get("pages") or {}).get("concurrent_overview")
    if conc and "p95_s" in conc:
        lines.append(
            _row(
                f"{conc['sessions']} new sessions loading the Overview at once (server delivers the whole page)",
                f"p50 {conc['p50_s']} s, p95 {conc['p95_s']} s, {conc['failed']} failed; "
                f"server CPU {conc['server_cpu_s']} s for the whole benchmark",
                "p95 ≤ 3.5 s",
                conc["p95_s"] <= 3.5,
            )
        )
        one = conc.get("single_browser_tab") or {}
        if "p50_s" in one:
            lines.append(_row("one Chromium tab loading the Overview (drawn)", f"p50 {one['p50_s']} s", "", None))
        tabs = conc.get("browser_tabs_same_machine") or {}
        if "p95_s" in tabs:
            lines.append(
                _row(
                    f"{tabs['n']} Chromium tabs at once on the server's own 2 cores (drawn)",
                    f"p50 {tabs['p50_s']} s, p95 {tabs['p95_s']} s, {tabs['failed']} failed",
                    "",
                    None,
                )
            )
    rep = r.get("replicas") or {}
    if "p95_s" in rep:
        lines.append(
            _row(
                f"{rep['sessions']} new sessions loading the Overview at once over {rep['replicas']} replicas "
                "behind one address (`serve --replicas`)",
                f"p50 {rep['p50_s']} s, p95 {rep['p95_s']} s, {rep['failed']} failed; "
                f"replicas' CPU {rep['server_cpu_s']} s",
                "p95 ≤ 3.5 s",
                rep["p95_s"] <= 3.5,
            )
        )
    return "\n".join(lines)


def write_docs(result: dict[str, Any], docs: Path = DOCS) -> None:
    """Write `docs`/bench/<scale>.json and replace (or append) the scale's section of `docs`/BENCHMARKS.md."""
    scale = result["scale"]
    (docs / "bench").mkdir(parents=True, exist_ok=True)
    (docs / "bench" / f"{scale}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    bench_md = docs / BENCH_MD.name
    start, end = f"<!-- bench:{scale}:start -->", f"<!-- bench:{scale}:end -->"
    section = f"{start}\n## Benchmark run, scale `{scale}`\n\n{markdown(result)}\n{end}"
    text = bench_md.read_text() if bench_md.exists() else "# Benchmarks\n"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    bench_md.write_text(text)


def main(scale: str = "demo", seed: int = 42, *, with_dlt: bool = True, with_pages: bool = True) -> int:
    """Run every benchmark, write the results into docs/, print the scale's section; the exit code."""
    result = run(scale, seed, with_dlt=with_dlt, with_pages=with_pages)
    write_docs(result)
    print(markdown(result))
    return 0

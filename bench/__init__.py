"""Every benchmark of Pitboss and its harness, outside the product packages (SPEC §1).

    run.py                the harness of `python -m app bench [--scale S]` / `make bench`: seeds its own
                          database, runs everything below, writes docs/bench/<scale>.json and docs/BENCHMARKS.md
    ingest.py             ingestion: full load vs the bare scanner copy, incremental run after ~1 % changes
    dlt_compare.py        the same full load done by dlt (baseline; needs requirements-bench.txt)
    warehouse_queries.py  Overview read latency, the same KPI on PostgreSQL, full mart build time
    pages.py              warm page reruns (AppTest) and concurrent new sessions on a real server
    ws_sessions.py        Streamlit sessions driven over the app's WebSocket protocol (for pages.py)

Like the tests, this package may import anything; no product module imports it (only the composition root
`app/commands/bench.py`, the thin command that parses the arguments and calls `bench.run.main`).
"""

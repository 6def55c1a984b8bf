"""The replicas benchmark (bench/replicas.py): its report row, and the proxy cookie it leaves out."""

from __future__ import annotations

import json

from app.commands.proxy import AFFINITY_COOKIE
from app.settings import PROJECT_ROOT
from bench import replicas, run


def test_the_sessions_are_spread_by_leaving_out_the_proxys_cookie():
    # With the cookie every session would be sent to the replica the browser signed in on.
    assert replicas.AFFINITY_COOKIE == AFFINITY_COOKIE


def test_the_report_shows_the_p95_over_the_replicas_and_judges_it():
    result = json.loads((PROJECT_ROOT / "tests" / "bench" / "data" / "run_tiny.json").read_text())
    del result["replicas"]
    base = run.markdown(result)
    assert "over 2 replicas" not in base  # a run without it shows no row
    result["replicas"] = {"sessions": 40, "replicas": 2, "n": 40, "failed": 0, "p50_s": 1.08, "p95_s": 1.3,
                          "max_s": 1.3, "server_cpu_s": 9.9}  # fmt: skip
    row = next(line for line in run.markdown(result).splitlines() if "over 2 replicas" in line)
    assert row.startswith("| 40 new sessions loading the Overview at once over 2 replicas")
    assert "p95 1.3 s, 0 failed" in row and row.endswith("| p95 ≤ 3.5 s | met |")
    result["replicas"].update(p95_s=float("inf"), failed=40)
    row = next(line for line in run.markdown(result).splitlines() if "over 2 replicas" in line)
    assert row.endswith("| **missed** |")
    result["replicas"] = {"skipped": "/usr/bin/chromium not installed"}
    assert "over 2 replicas" not in run.markdown(result)

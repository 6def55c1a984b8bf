"""The harness: `python -m app bench` reaches it through the thin command, and it writes its docs sections."""

from __future__ import annotations

import json

from app.cli import build_parser
from app.commands import bench as bench_command
from app.settings import PROJECT_ROOT
from bench import run


def test_command_parses_and_points_at_the_harness():
    args = build_parser().parse_args(["bench", "--scale", "tiny", "--no-dlt", "--no-pages"])
    assert args.func is bench_command._bench
    assert (args.scale, args.seed, args.no_dlt, args.no_pages) == ("tiny", 42, True, True)


RUN = PROJECT_ROOT / "tests" / "bench" / "data" / "run_tiny.json"  # a real `make bench SCALE=tiny` run's numbers


def _run(scale: str, factor: float = 1.0) -> dict:
    result = json.loads(RUN.read_text())
    result["scale"] = scale
    result["ingest"]["rows"] = int(result["ingest"]["rows"] * factor)
    result["ingest"]["full_seconds"] *= factor
    return result


def test_markdown_has_every_target_row_with_its_verdict():
    text = run.markdown(_run("tiny"))
    for row in (
        "| full ingest with marts (`ingest --full`, the whole run) |",
        "| peak RSS of the full ingest |",
        "incremental run after 60 s of live activity, marts included (single file)",
        "incremental run after 60 s of live activity, marts included (DuckLake)",
        "| Overview query `kpis` |",
        "| reconcile (row counts and daily money, source vs warehouse) |",
        "| page `overview` warm rerun |",
        "| page `month_close` warm rerun |",
        "on one replica",
        "over 2 replicas",
        "| step of this run | time | peak RSS | |",
    ):
        assert row in text, row
    for line in text.splitlines():
        if "target" not in line and line.startswith("| ") and "step of this run" not in line:
            assert line.rstrip().endswith(("| met |", "| **missed** |", "|  |")), line


def test_write_docs_replaces_the_scale_section_and_compares_the_scales(tmp_path):
    (tmp_path / "BENCHMARKS.md").write_text("# Benchmarks\n\nNotes.\n")
    run.write_docs(_run("small"), docs=tmp_path)
    run.write_docs(_run("small"), docs=tmp_path)  # replaced, not appended twice
    content = (tmp_path / "BENCHMARKS.md").read_text()
    assert content.startswith("# Benchmarks\n\nNotes.")
    assert content.count("<!-- bench:small:start -->") == 1 and content.count("<!-- bench:small:end -->") == 1
    assert json.loads((tmp_path / "bench" / "small.json").read_text())["scale"] == "small"
    assert "Run `make bench SCALE=small`" in content  # one scale: nothing to compare yet
    run.write_docs(_run("demo", 10.0), docs=tmp_path)
    content = (tmp_path / "BENCHMARKS.md").read_text()
    assert content.count("<!-- bench:scaling:start -->") == 1
    assert "| full ingest with marts (s) |" in content and "(∝ rows^1.00)" in content
    svg = (tmp_path / "bench" / "scaling.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") >= 3

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


def test_markdown_and_write_docs_replace_the_scale_section(tmp_path):
    result = json.loads((PROJECT_ROOT / "docs" / "bench" / "demo.json").read_text())  # a real run's raw numbers
    result["scale"] = "tiny"
    text = run.markdown(result)
    assert "| full load (Pitboss) |" in text and "Overview query `kpis`" in text
    (tmp_path / "BENCHMARKS.md").write_text("# Benchmarks\n\nNotes.\n")
    run.write_docs(result, docs=tmp_path)
    run.write_docs(result, docs=tmp_path)  # replaced, not appended twice
    content = (tmp_path / "BENCHMARKS.md").read_text()
    assert content.startswith("# Benchmarks\n\nNotes.")
    assert content.count("<!-- bench:tiny:start -->") == 1 and content.count("<!-- bench:tiny:end -->") == 1
    assert json.loads((tmp_path / "bench" / "tiny.json").read_text())["scale"] == "tiny"

"""How each cost grows from small → demo → large: a table and a plot from the runs in docs/bench/<scale>.json.

    section(docs) -> str       the "How costs grow" section of docs/BENCHMARKS.md (writes docs/bench/scaling.svg)

The plot is plain SVG written here (log–log: cost against the source's row count, one line per cost), so the
docs need no plotting library or image renderer.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

SCALES = ("small", "demo", "large")
SVG_NAME = "scaling.svg"
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def _runs(docs: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for scale in SCALES:
        path = docs / "bench" / f"{scale}.json"
        if path.exists():
            out[scale] = json.loads(path.read_text())
    return out


def _live(r: dict[str, Any], key: str) -> float | None:
    x = r.get(key)
    return x["incremental_runs"][-1]["seconds"] if x else None


def _slowest_page(r: dict[str, Any]) -> float | None:
    pages = [p["p95_ms"] for p in (r.get("pages") or {}).get("pages", {}).values() if "p95_ms" in p]
    return max(pages) if pages else None


def _peak_rss(r: dict[str, Any]) -> float | None:
    steps = [s["peak_rss_mib"] for s in r.get("steps", {}).values()]
    if r.get("seed") and "peak_rss_mib" in r["seed"]:
        steps.append(r["seed"]["peak_rss_mib"])
    return max(steps) if steps else None


# (label, unit, value of a run) — the costs the table shows; the first five are plotted (seconds)
COSTS: tuple[tuple[str, str, Any], ...] = (
    ("seed", "s", lambda r: (r.get("seed") or {}).get("seconds")),
    ("bare scanner copy", "s", lambda r: r["ingest"]["bare_scanner_seconds"]),
    ("full ingest with marts", "s", lambda r: r["ingest"]["full_seconds"]),
    ("incremental after 60 s live (file)", "s", lambda r: _live(r, "ingest_live")),
    ("incremental after 60 s live (DuckLake)", "s", lambda r: _live(r, "ingest_live_lake")),
    ("Overview `kpis` p95", "ms", lambda r: r["warehouse"]["queries"]["kpis"]["p95_ms"]),
    ("slowest page warm rerun p95", "ms", _slowest_page),
    ("peak RSS of any step", "MiB", _peak_rss),
)
PLOTTED = 5


def _rows(r: dict[str, Any]) -> int:
    return int(r["ingest"]["rows"])


def _fmt(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.3g}"


def table(runs: dict[str, dict[str, Any]]) -> str:
    scales = list(runs)
    head = "| cost | " + " | ".join(f"{s} ({_rows(runs[s]) / 1e6:.1f} M rows)" for s in scales) + " | growth |"
    lines = [head, "|---|" + "---|" * len(scales) + "---|"]
    for label, unit, value in COSTS:
        vals = [value(runs[s]) for s in scales]
        growth = ""
        known = [(s, v) for s, v in zip(scales, vals, strict=True) if v]
        if len(known) >= 2:
            (s0, v0), (s1, v1) = known[0], known[-1]
            rows_x = _rows(runs[s1]) / _rows(runs[s0])
            exponent = math.log(v1 / v0) / math.log(rows_x) if rows_x > 1 else float("nan")
            growth = f"× {v1 / v0:,.1f} for × {rows_x:,.0f} rows (∝ rows^{exponent:.2f})"
        lines.append(f"| {label} ({unit}) | " + " | ".join(_fmt(v) for v in vals) + f" | {growth} |")
    return "\n".join(lines)


def svg(runs: dict[str, dict[str, Any]], width: int = 720, height: int = 420) -> str:
    """Seconds against source rows, log–log, one line per plotted cost."""
    pad_l, pad_r, pad_t, pad_b = 70, 250, 30, 50
    series = []
    for (label, _unit, value), colour in zip(COSTS[:PLOTTED], COLOURS, strict=False):
        pts = [(_rows(r), value(r)) for r in runs.values() if value(r)]
        if pts:
            series.append((label, colour, pts))
    xs = [x for _, _, pts in series for x, _ in pts] or [1, 10]
    ys = [y for _, _, pts in series for _, y in pts] or [1, 10]
    x0, x1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)

    def px(x: float) -> float:
        return pad_l + (math.log10(x) - x0) / (x1 - x0) * (width - pad_l - pad_r)

    def py(y: float) -> float:
        return height - pad_b - (math.log10(y) - y0) / (y1 - y0) * (height - pad_t - pad_b)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{pad_l}" y="18" font-size="14">Cost against source rows (log–log)</text>',
    ]
    for e in range(x0, x1 + 1):
        x = px(10**e)
        out.append(f'<line x1="{x:.1f}" y1="{pad_t}" x2="{x:.1f}" y2="{height - pad_b}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{height - pad_b + 16}" text-anchor="middle">10^{e}</text>')
    for e in range(y0, y1 + 1):
        y = py(10**e)
        out.append(f'<line x1="{pad_l}" y1="{y:.1f}" x2="{width - pad_r}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end">{10.0**e:g} s</text>')
    out.append(f'<text x="{(pad_l + width - pad_r) / 2}" y="{height - 10}" text-anchor="middle">source rows</text>')
    for i, (label, colour, pts) in enumerate(series):
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in sorted(pts))
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{colour}"/>')
        ly = pad_t + 10 + 20 * i
        out.append(f'<rect x="{width - pad_r + 15}" y="{ly - 9}" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{width - pad_r + 32}" y="{ly + 1}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def section(docs: Path) -> str:
    """The section's markdown; writes the plot next to the runs' JSON."""
    runs = _runs(docs)
    if len(runs) < 2:
        return "Run `make bench SCALE=small`, `make bench` and `make bench SCALE=large` to compare the scales."
    (docs / "bench" / SVG_NAME).write_text(svg(runs))
    measured = ", ".join(f"{s} {r['measured_at'][:10]}" for s, r in runs.items())
    return "\n".join(
        [
            f"From the latest run of each scale ({measured}); growth is between the smallest and the largest "
            "scale shown, with the exponent k of cost ∝ rows^k (1: linear in the data; 0: independent of it).",
            "",
            table(runs),
            "",
            f"![Cost against source rows](bench/{SVG_NAME})",
        ]
    )

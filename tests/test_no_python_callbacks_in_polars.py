"""Served code never runs Python callbacks inside polars.

polars runs `map_elements`/`map_batches`/`map_rows` callbacks on its own thread pool, where they need the
GIL. With several Streamlit sessions rendering at once, one session's thread held the GIL while waiting for
that pool and the pool waited for the GIL: the whole server hung (found by the 20-session benchmark, seen in
a py-spy dump). This test keeps such callbacks out of everything the app process runs.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVED = ("app", "pages", "warehouse", "auth")
CALLBACKS = {"map_elements", "map_batches", "map_rows", "map_groups", "apply"}


def _callback_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} .{node.func.attr}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CALLBACKS
    ]


def test_served_code_has_no_polars_python_callbacks():
    found = [hit for top in SERVED for path in sorted((ROOT / top).rglob("*.py")) for hit in _callback_calls(path)]
    assert found == []

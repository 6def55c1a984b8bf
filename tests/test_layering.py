"""SPEC §1 import rules, enforced on every import in the tree (module level and inside functions).

Each top-level folder may import only what the table in SPEC §1 allows. The check parses every Python
file (AST), resolves relative imports, and names the file and line of each forbidden edge.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

FIRST_PARTY = ("app", "auth", "bench", "migrations", "pages", "pipelines", "tests", "warehouse")


@dataclass(frozen=True)
class Rule:
    """Who the files under `folder` may import (first-party prefixes), and which libraries they may not."""

    folder: str
    allowed: tuple[str, ...]
    forbidden_libraries: tuple[str, ...] = ()


# The most specific folder wins (app/commands before app, app/services before app).
RULES: tuple[Rule, ...] = (
    Rule("app/commands", ("app", "auth", "warehouse", "pipelines", "bench")),
    Rule("app/services", ("app.services", "app.db", "app.models", "app.settings", "auth", "warehouse"), ("streamlit",)),
    Rule("app", ("app", "auth", "warehouse")),
    Rule("pages", ("app.ui", "app.services", "warehouse", "auth")),
    Rule("pipelines", ("pipelines", "warehouse", "app.db", "app.models"), ("streamlit",)),
    Rule("warehouse", ("warehouse",), ("streamlit",)),
    Rule("auth", ("auth",)),
    Rule("migrations", ("migrations", "app.models", "app.db")),
)


@dataclass(frozen=True)
class Edge:
    file: str
    line: int
    module: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} imports {self.module}"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, root: Path) -> Iterator[Edge]:
    """Every imported module of `path` (absolute names; relative imports resolved), with its line."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path, root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    rel = str(path.relative_to(root))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Edge(rel, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield Edge(rel, node.lineno, target)
            for alias in node.names:  # `from app import services` imports app.services
                yield Edge(rel, node.lineno, f"{target}.{alias.name}")


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def rule_for(rel: str) -> Rule | None:
    for rule in RULES:
        if rel == rule.folder or rel.startswith(rule.folder + "/"):
            return rule
    return None


def violations(root: Path) -> list[Edge]:
    """Forbidden edges in the tree under `root`."""
    found: list[Edge] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith((".venv/", ".pitboss/", ".git/")):
            continue
        rule = rule_for(rel)
        if rule is None:
            continue
        seen: set[tuple[int, str]] = set()
        for edge in imports_of(path, root):
            top = edge.module.split(".")[0]
            if top in FIRST_PARTY:
                # `from app import services` yields both `app` and `app.services`: judge the longest name only
                if any(_within(edge.module, a) for a in rule.allowed):
                    continue
                if any(_within(a, edge.module) for a in rule.allowed):
                    continue  # a parent package of an allowed module (`from app.services import kyc`)
            elif top not in rule.forbidden_libraries:
                continue
            if (edge.line, edge.module) not in seen:
                seen.add((edge.line, edge.module))
                found.append(edge)
    return found


def test_the_tree_follows_the_import_rules():
    bad = violations(PROJECT_ROOT)
    assert not bad, "forbidden imports (SPEC §1):\n" + "\n".join(map(str, bad))


@pytest.mark.parametrize(
    ("file", "source", "forbidden"),
    [
        (
            "pipelines/generator/x.py",
            "def f():\n    from app.services.blacklist import rules\n",
            "app.services.blacklist",
        ),
        ("pipelines/ingest/x.py", "import app.settings\n", "app.settings"),
        ("warehouse/x.py", "from app.db import libpq_dsn\n", "app.db"),
        ("warehouse/x.py", "import streamlit as st\n", "streamlit"),
        ("app/services/x/y.py", "def g():\n    import pipelines.ingest.runlog\n", "pipelines.ingest.runlog"),
        ("app/services/x.py", "import streamlit\n", "streamlit"),
        ("app/ui/x.py", "from pipelines import generator\n", "pipelines"),
        ("pages/x.py", "from app.models import ACCOUNT_STATUSES\n", "app.models"),
        ("pages/x.py", "from pipelines.ingest import run_ingest\n", "pipelines.ingest"),
        ("auth/x.py", "from app.services import core\n", "app.services"),
        ("pages/x.py", "from ..app.db import engine\n", "app.db"),
    ],
)
def test_a_forbidden_import_is_named_with_file_and_line(tmp_path, file, source, forbidden):
    """The test of the test: a forbidden edge added anywhere (also inside a function) is caught."""
    path = tmp_path / file
    path.parent.mkdir(parents=True)
    path.write_text("import os\n\n" + source)
    bad = violations(tmp_path)
    assert bad, f"{file} importing {forbidden} was not caught"
    assert bad[0].file == file and bad[0].line >= 3 and bad[0].module.startswith(forbidden)
    assert f"{file}:{bad[0].line} imports" in str(bad[0])


@pytest.mark.parametrize(
    ("file", "source"),
    [
        ("app/commands/x.py", "from pipelines.ingest import run_ingest\nimport bench\n"),
        ("pipelines/x.py", "from app.db import libpq_dsn\nfrom app.models import Base\nimport warehouse.runlog\n"),
        ("pages/x.py", "from app.services.kyc import writes\nfrom app.ui import guard\nimport streamlit\n"),
        ("app/services/x.py", "from app.services import core\nfrom warehouse.gateway import open_gateway\n"),
    ],
)
def test_allowed_imports_pass(tmp_path, file, source):
    path = tmp_path / file
    path.parent.mkdir(parents=True)
    path.write_text(source)
    assert violations(tmp_path) == []

"""The page registry: every page file is registered, exists, and starts with the guard."""

from __future__ import annotations

import ast
from pathlib import Path

from app.ui import navigation
from auth.identity import Actor
from auth.permissions import ROLES

PAGES_DIR = Path(__file__).resolve().parents[2] / "pages"


def actor(*roles: str) -> Actor:
    return Actor(staff_id=1, username="t", roles=roles, brand_scope=None)


def page_files() -> list[Path]:
    return sorted(p for p in PAGES_DIR.glob("*.py") if p.name != "__init__.py")


def test_every_page_file_is_registered_and_every_registered_page_exists():
    assert {p.stem for p in page_files()} == {s.file for s in navigation.PAGES}
    assert all(spec.path.is_file() for spec in navigation.PAGES)
    assert len({s.file for s in navigation.PAGES}) == len(navigation.PAGES) == len(page_files())
    assert {s.section for s in navigation.PAGES} == set(navigation.SECTIONS)


def _calls(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) for n in ast.walk(node))


def test_every_page_calls_the_guard_before_anything_else():
    """The first statement that calls anything (after imports) is `actor = guard_page(__file__)`.

    Plain constants and function definitions before it are fine: they run nothing.
    """
    unguarded = []
    for path in page_files():
        body = [
            n
            for n in ast.parse(path.read_text()).body
            if not isinstance(n, ast.Import | ast.ImportFrom | ast.FunctionDef) and _calls(n)
        ]
        first = ast.unparse(body[0]) if body else ""
        if first != "actor = guard_page(__file__)":
            unguarded.append((path.name, first))
    assert unguarded == []


def test_landing_page_per_role():
    landing = {role: navigation.landing_for(actor(role)).file for role in ROLES}
    assert landing == {
        "admin": "overview",
        "manager": "overview",
        "analyst": "overview",
        "compliance": "players",
        "support": "players",
        "finance": "overview",
    }
    assert navigation.landing_for(actor("nobody")) is None
    assert navigation.pages_for(None) == []


def test_spec_lookup_and_sections():
    assert navigation.spec_for(str(PAGES_DIR / "staff.py")).title == "Staff"
    assert navigation.spec_for("kyc_queue").section == "Compliance"
    assert navigation.spec_for("login") is None
    grouped = navigation.by_section(navigation.pages_for(actor("support")))
    assert list(grouped)[:2] == ["Players", "Compliance"]
    assert [s.file for s in grouped["Compliance"]] == ["responsible_gambling"]  # support: RG work it may see
    assert [s.file for s in grouped["Players"]] == ["players", "player_360", "adjustments", "support"]
    assert [s.file for s in grouped["Account"]] == ["account"]  # everyone's own page (the second factor)
    assert navigation.spec_for("system_health").permits(actor("manager"))
    assert not navigation.spec_for("system_health").permits(actor("compliance"))

"""System health — placeholder until issue 7 builds it."""

from app.ui.guard import guard_page
from app.ui.placeholder import not_built_yet

actor = guard_page(__file__)
not_built_yet(
    "System health",
    issue=7,
    what=("pipeline runs, table freshness, reconciliation and database reachability"),
)

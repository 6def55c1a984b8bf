"""Operators — placeholder until issue 5 builds it."""

from app.ui.guard import guard_page
from app.ui.placeholder import not_built_yet

actor = guard_page(__file__)
not_built_yet(
    "Operators",
    issue=5,
    what=("every brand side by side: KPIs, balances owed, pending withdrawals, status flags"),
)

"""Player 360 — placeholder until issue 5 builds it."""

from app.ui.guard import guard_page
from app.ui.placeholder import not_built_yet

actor = guard_page(__file__)
not_built_yet(
    "Player 360",
    issue=5,
    what=(
        "a player's profile, balances, bets, payments, sessions, KYC, tickets, blacklist hits"
        " and audit history, with the actions allowed to you (issue 6)"
    ),
)

"""Overview — placeholder until issue 5 builds it."""

from app.ui.guard import guard_page
from app.ui.placeholder import not_built_yet

actor = guard_page(__file__)
not_built_yet(
    "Overview",
    issue=5,
    what=(
        "KPI tiles (GGR, NGR, handle, hold %, active players, deposits, withdrawals, net deposits, FTDs, ARPU)"
        " with change vs the previous period, daily trends, top games and regions, per brand"
    ),
)

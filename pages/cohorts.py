"""Cohorts — placeholder until issue 5 builds it."""

from app.ui.guard import guard_page
from app.ui.placeholder import not_built_yet

actor = guard_page(__file__)
not_built_yet(
    "Cohorts",
    issue=5,
    what=("retention heatmaps and LTV curves by registration or first-deposit cohort"),
)

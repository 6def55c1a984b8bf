"""Tracking — placeholder until issue 7 builds it."""

from app.ui.guard import guard_page
from app.ui.placeholder import not_built_yet

actor = guard_page(__file__)
not_built_yet("Tracking", issue=7, what="tracking configurations for Meta, Google Ads, TikTok and AppsFlyer")

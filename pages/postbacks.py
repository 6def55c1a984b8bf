"""Postbacks — placeholder until issue 7 builds it."""

from app.ui.guard import guard_page
from app.ui.placeholder import not_built_yet

actor = guard_page(__file__)
not_built_yet("Postbacks", issue=7, what="postback delivery status with retry and replay")

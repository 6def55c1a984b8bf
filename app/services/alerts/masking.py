"""Alerts as a viewer may see them: no personal data for roles without VIEW_PERSONAL_DATA (SPEC §5, analysts).

A blacklist-match alert is stored with a title that names no identifier ("… matches blacklist entry #12 on
session ip"); the matched value sits in its detail (`identifier`), with the entry's reason (free text).
For masked viewers every alert is masked on read: the identifier by its category, free text (the title, the
entry's reason, the note) with the identifier and anything shaped like personal data masked. Alerts opened
before titles were stored this way (the value in the title and in `matched_on`) are masked the same way.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from app.services.players.masking import mask_identifier, mask_text, masks_personal_data
from auth.identity import Actor

# How `blacklist.matching.players_matching` says which identifier matched ("session ip 203.0.113.9").
MATCH_KINDS = {
    "registration ip": "ip",
    "session ip": "ip",
    "session device": "device",
    "device": "device",
    "email": "email",
    "phone": "phone",
    "document": "document",
    "payment account": "payment_account",
}
FREE_TEXT = ("entry_reason", "note", "reason")


def split_match(matched_on: str | None) -> tuple[str, str | None]:
    """`"session ip 203.0.113.9"` → `("session ip", "203.0.113.9")`; a bare kind → `(kind, None)`."""
    text = (matched_on or "").strip()
    for kind in sorted(MATCH_KINDS, key=len, reverse=True):
        if text == kind:
            return kind, None
        if text.startswith(kind + " "):
            return kind, text[len(kind) + 1 :]
    return text, None


def mask_detail(detail: dict) -> tuple[dict, list[Any]]:
    """An alert's detail with personal values masked, and the raw values found (to mask in its free text)."""
    kind, value = split_match(detail.get("matched_on"))
    category = detail.get("category") or MATCH_KINDS.get(kind)
    known = [v for v in (detail.get("identifier"), value) if v]
    out = dict(detail)
    if "identifier" in out:
        out["identifier"] = mask_identifier(category, out["identifier"])
    if value is not None:
        out["matched_on"] = f"{kind} {mask_identifier(MATCH_KINDS.get(kind, category), value)}"
    for key in FREE_TEXT:
        if isinstance(out.get(key), str):
            out[key] = mask_text(out[key], known)
    return out, known


def mask_alert(alert: Any) -> Any:
    """An `alerts.reads.Alert` with personal data masked (title and detail)."""
    detail, known = mask_detail(alert.detail or {})
    title = mask_text(alert.title, known) if known or alert.rule_code == "blacklist_matches" else alert.title
    return replace(alert, title=title, detail=detail)


def for_viewer(actor: Actor, alerts: list) -> list:
    """`alerts` as `actor` may see them."""
    return [mask_alert(a) for a in alerts] if masks_personal_data(actor) else alerts


def history_for_viewer(actor: Actor, history: dict | None) -> dict | None:
    """An alert's history (who acknowledged / resolved, the note) as `actor` may see it."""
    if history is None or not masks_personal_data(actor) or not history.get("note"):
        return history
    return {**history, "note": mask_text(history["note"])}

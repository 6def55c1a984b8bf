"""Player 360's support pieces: the player's notes (append-only; masked roles see that a note exists, not its
text) with the form to add one, and links from the Tickets tab to the cases on the Support page."""

from __future__ import annotations

import streamlit as st
from sqlalchemy.engine import Engine

from app.services.core import ServiceError
from app.services.support import reads as support_read
from app.services.support import rules
from app.services.support import writes as support
from app.ui import fmt
from app.ui.forms import action_form
from app.ui.links import page_link
from app.ui.table import show_table
from auth.identity import Actor


def render_player_notes(actor: Actor, player_id: int, engine: Engine) -> None:
    """The Notes section: the notes, newest first, and (for support handlers) the form to add one."""
    st.markdown("**Notes**")
    try:
        view = support_read.player_notes(engine, actor, player_id, audit_denied=False)
    except ServiceError as exc:
        st.warning(exc.message)
        return
    if view is None:
        return
    if view.notes:
        if view.masked:
            st.caption(f"{fmt.plural(len(view.notes), 'note')}; your role sees that they exist, not their text.")
        show_table(
            [{"time (UTC)": n["created_at"], "by": n["author"], "note": n["body"]} for n in view.notes],
            key=f"player_notes:{player_id}",
        )
    else:
        st.caption("No notes on this player yet.")
    if not view.can_write:
        return
    form = action_form("player_note", f"player_notes:{player_id}")
    if form.show_done("Add another note"):
        return
    with st.form(form.key):
        body = st.text_area("Add a note", max_chars=rules.MAX_NOTE, key=f"{form.key}:body")
        st.caption("Notes are kept for good (they cannot be edited or removed) and every note is audited.")
        if st.form_submit_button("Add note", key=f"{form.key}:submit"):
            form.submit(
                lambda rid, _version: support.add_player_note(
                    engine, actor, player_id=player_id, body=body, request_id=rid
                ),
            )


def render_case_links(actor: Actor, player_id: int, engine: Engine) -> None:
    """Links to the player's support cases (for support handlers)."""
    try:
        cases = support_read.player_cases(engine, actor, player_id)
    except ServiceError:
        return
    if not cases:
        return
    st.markdown("**Open on the Support page**")
    for c in cases:
        page_link(
            "support",
            f"Case #{c['id']} · {c['status']} · {fmt.plain(c['subject'])}",
            icon=":material/support_agent:",
            ticket=c["id"],
        )

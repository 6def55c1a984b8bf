"""The guard every page calls first: `actor = guard_page(__file__)`."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.services.staff import signin
from app.ui import state
from app.ui.navigation import spec_for
from auth.identity import Actor


def guard_page(file: str) -> Actor:
    """The signed-in actor allowed to see this page; otherwise stop the page before it renders anything.

    Re-validates the server-side session (an ended, expired or changed session stops the page), looks the
    page up in `app.ui.navigation.PAGES`, and audits an attempt to open a page the role may not use.
    """
    sid = state.session_id()
    if not sid:
        st.stop()
    settings = state.settings()
    engine = state.engine()
    actor = signin.current_actor(engine, sid, settings=settings)
    if actor is None:
        st.stop()
    spec = spec_for(file)
    if spec is None or not spec.permits(actor):
        signin.record_page_denied(engine, actor, Path(file).stem)
        st.error("You do not have access to this page.", icon=":material/block:")
        st.stop()
    return actor

"""The sidebar: who is signed in, their roles and brand scope, and the sign-out button."""

from __future__ import annotations

import streamlit as st

from app.services.staff import reads as staff
from app.ui import fmt, state
from auth.identity import Actor


def _request_logout() -> None:
    st.session_state[state.LOGOUT_KEY] = True


def render_sidebar(actor: Actor) -> None:
    """Signed-in user, role(s), brand scope (brand codes) and sign out."""
    if actor.brand_scope is None:
        brands = "all brands"
    else:
        codes = staff.brand_codes(state.engine(), actor.brand_scope)
        brands = ", ".join(codes) if codes else "none"
    name = st.session_state.get("name") or actor.username
    with st.sidebar:
        st.markdown(f"**{fmt.plain(name)}**  \n{fmt.plain(actor.username)}")
        st.caption(f"Role: {', '.join(actor.roles)}  \nBrands: {brands}")
        st.button(
            "Sign out",
            key="pitboss_sign_out",
            icon=":material/logout:",
            on_click=_request_logout,
            width="stretch",
        )

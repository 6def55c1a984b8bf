"""The sign-in page: streamlit-authenticator's form, our password check, the session bound to the cookie."""

from __future__ import annotations

import streamlit as st
import streamlit_authenticator as stauth
from sqlalchemy.engine import Engine
from streamlit_authenticator.utilities import LoginError

from app.services.core import ServiceError
from app.services.staff import demo, signin
from app.settings import Settings
from app.ui import fmt, state
from auth.authenticator import issued_token
from auth.sessions import token_session_id

FIELDS = {"Form name": "Sign in", "Username": "Username", "Password": "Password", "Login": "Sign in"}


def render_login(authenticator: stauth.Authenticate, engine: Engine, settings: Settings) -> None:
    """The login page (the only page before sign-in), in a narrow centred column."""
    _, middle, _ = st.columns([1, 1.4, 1])
    with middle:
        _render_login(authenticator, engine, settings)


def _render_login(authenticator: stauth.Authenticate, engine: Engine, settings: Settings) -> None:
    st.title("Pitboss")
    st.caption("Back office — staff sign-in")
    notice_slot = st.empty()
    try:
        authenticator.login(location="main", key="pitboss_login", fields=FIELDS)
    except LoginError as exc:
        st.error(str(exc))
    check = st.session_state.pop(state.CHECK_KEY, None)
    if check is not None:  # a new attempt replaces the last notice (signed out, session ended)
        st.session_state.pop(state.NOTICE_KEY, None)
    notice = st.session_state.get(state.NOTICE_KEY)
    if notice:
        notice_slot.info(notice, icon=":material/info:")
    if check is not None and check.ok and st.session_state.get("authentication_status"):
        try:
            _complete_login(authenticator, engine, check.staff_id, settings)
        except ServiceError as exc:
            st.error(exc.message, icon=":material/error:")
            return
        st.success(f"Signed in as {fmt.plain(check.username)}. Loading your pages…", icon=":material/check_circle:")
        # The cookie component reruns the app once the cookie is written; no st.rerun() here (it would
        # cancel the cookie write). The button is a fallback if the browser does not rerun by itself.
        st.button("Continue", key="pitboss_continue")
        return
    if check is not None and not check.ok:
        st.error(check.message, icon=":material/error:")
    if settings.is_demo:
        _demo_hint()


def _complete_login(authenticator: stauth.Authenticate, engine: Engine, staff_id: int, settings: Settings) -> None:
    """Bind the cookie written in this run (it carries a random token) to a new server-side session whose id
    is the SHA-256 of the cookie; the session ends after `settings.session_idle_minutes` without activity."""
    issued = issued_token(authenticator)
    session_id, expires_at = (token_session_id(issued[0]), issued[1]) if issued else (None, None)
    actor = signin.open_session(
        engine, staff_id, session_id=session_id, expires_at=expires_at, client=state.client_label(),
        idle_minutes=settings.session_idle_minutes,
    )  # fmt: skip
    st.session_state[state.SESSION_KEY] = actor.session_id


def _demo_hint() -> None:
    with st.expander("Demo accounts (PITBOSS_ENV=demo only)", icon=":material/key:"):
        rows = [
            {"username": u.username, "password": u.password, "role": ", ".join(u.roles),
             "brands": "one brand" if u.one_brand else "all"}
            for u in demo.DEMO_STAFF
        ]  # fmt: skip
        st.table(rows)

"""The sign-in page: streamlit-authenticator's form, our password check, the session bound to the cookie, and
the second step (a TOTP or recovery code, or the enrolment a role requires) before that session is live."""

from __future__ import annotations

import streamlit as st
import streamlit_authenticator as stauth
from sqlalchemy.engine import Engine
from streamlit_authenticator.utilities import LoginError

from app.services.core import ServiceError
from app.services.staff import demo, signin
from app.services.staff import reads as staff_reads
from app.settings import Settings
from app.ui import fmt, state
from app.ui import second_factor as second_factor_ui
from auth.authenticator import issued_token
from auth.identity import Actor
from auth.sessions import PENDING_ENROL, token_session_id

FIELDS = {"Form name": "Sign in", "Username": "Username", "Password": "Password", "Login": "Sign in"}


def render_login(authenticator: stauth.Authenticate, engine: Engine, settings: Settings) -> None:
    """The login page (the only page before sign-in), in a narrow centred column."""
    _, middle, _ = st.columns([1, 1.4, 1])
    with middle:
        _render_login(authenticator, engine, settings)


def _render_login(authenticator: stauth.Authenticate, engine: Engine, settings: Settings) -> None:
    st.title("Pitboss")
    st.caption("Back office — staff sign-in")
    pending = state.pending_session_id()
    if pending:  # the password passed; the session waits for its second step
        _keep_writing_cookie(authenticator)
        _render_pending(engine, settings, pending)
        return
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
            opened = _complete_login(authenticator, engine, check.staff_id, settings)
        except ServiceError as exc:
            st.error(exc.message, icon=":material/error:")
            return
        if opened.pending_step is not None:  # the cookie is being written in this run: no st.rerun() here either
            _render_pending(engine, settings, opened.session_id)
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


def _complete_login(
    authenticator: stauth.Authenticate, engine: Engine, staff_id: int, settings: Settings
) -> signin.Opened:
    """Bind the cookie written in this run (it carries a random token) to a new server-side session whose id
    is the SHA-256 of the cookie; the session ends after `settings.session_idle_minutes` without activity.
    An account with a second step gets a session pending that step (remembered as such, not as live)."""
    issued = issued_token(authenticator)
    if issued is None:  # the run that accepted the password was cut short before its cookie write (shell.py)
        authenticator.cookie_controller.set_cookie()
        issued = issued_token(authenticator)
    session_id, expires_at = (token_session_id(issued[0]), issued[1]) if issued else (None, None)
    opened = signin.begin_session(
        engine, staff_id, settings=settings, session_id=session_id, expires_at=expires_at,
        client=state.client_label(), idle_minutes=settings.session_idle_minutes,
    )  # fmt: skip
    if opened.actor is None:
        st.session_state[state.PENDING_KEY] = opened.session_id
        st.session_state[state.PENDING_COOKIE_KEY] = issued
    else:
        st.session_state[state.SESSION_KEY] = opened.session_id
    return opened


def _keep_writing_cookie(authenticator: stauth.Authenticate) -> None:
    """While the second step waits, keep the cookie component that writes the login cookie on the page.

    The library renders it only in the run that accepted the password; the runs of the second step do not call
    its login, so a rerun that came before the browser had written the cookie would unmount the component and
    the cookie would never be written (the tab signed in alone; a new tab would not know the sign-in). The
    same token and component key: rendering it again writes nothing new."""
    issued = st.session_state.get(state.PENDING_COOKIE_KEY)
    if not issued:
        return
    token, expires = issued
    model = authenticator.cookie_controller.cookie_model
    local_expiry = expires.astimezone().replace(tzinfo=None)  # the component takes local time, as the library's
    model.cookie_manager.set(model.cookie_name, token, expires_at=local_expiry)


def remember_signed_in(engine: Engine, actor: Actor) -> None:
    """This tab is signed in as `actor` (a live session): what the shell checks on every run."""
    st.session_state.pop(state.PENDING_KEY, None)
    st.session_state.pop(state.PENDING_COOKIE_KEY, None)
    st.session_state[state.SESSION_KEY] = actor.session_id
    st.session_state.update(
        username=actor.username,
        name=staff_reads.display_name(engine, actor.staff_id),
        roles=list(actor.roles),
        authentication_status=True,
    )


def _request_cancel() -> None:
    st.session_state[state.LOGOUT_KEY] = True


def _render_pending(engine: Engine, settings: Settings, session_id: str) -> None:
    """The second step: a code (TOTP or recovery), or the enrolment the role requires before anything else.
    On success the session is live and the app reruns into the user's pages."""
    info = signin.sign_in_state(engine, session_id, settings=settings)
    if info is None or info.pending_step is None:  # ended meanwhile (the shell says why on the next run)
        st.error("Your sign-in has ended. Please sign in again.", icon=":material/error:")
    elif info.pending_step == PENDING_ENROL:
        st.write(f"Password accepted for {fmt.plain(info.username)}: one more step.")
        st.warning(
            "Your role must sign in with a second factor. Set it up now with an authenticator app.",
            icon=":material/gpp_maybe:",
        )
        bound = second_factor_ui.render_enrolment(engine, session_id, settings)
        if bound is not None and bound.signed_in:
            remember_signed_in(engine, bound.actor)
            st.rerun()
    else:
        st.write(f"Password accepted for {fmt.plain(info.username)}: one more step.")
        result = second_factor_ui.render_second_step(engine, session_id, settings)
        if result is not None and result.ok and result.actor is not None:
            remember_signed_in(engine, result.actor)
            st.rerun()
        if result is not None and (result.outcome in ("ended", "locked") or result.locked_until is not None):
            st.rerun()  # the session has ended (locked out): the shell signs this tab out and says why
        if result is not None:
            st.error(result.message, icon=":material/error:")
    st.button("Cancel and sign in again", key="pitboss_2fa_abort", on_click=_request_cancel)


def _demo_hint() -> None:
    with st.expander("Demo accounts (PITBOSS_ENV=demo only)", icon=":material/key:"):
        rows = [
            {"username": u.username, "password": u.password, "role": ", ".join(u.roles),
             "brands": "one brand" if u.one_brand else "all"}
            for u in demo.DEMO_STAFF
        ]  # fmt: skip
        st.table(rows)

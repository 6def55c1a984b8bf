"""The app shell, run on every script run by `app/main.py`.

1. settings: production refuses to start with a weak cookie key (a clear message, nothing else);
2. who is signed in: the tab's live server-side session, or a login cookie (sent when the tab connected)
   whose session row is live; a cookie whose session was ended — logout, disable, role change — is
   dropped and deleted. A session still waiting for its second step (a code, or the enrolment the role
   requires) is not live: only the sign-in page exists, and it asks for that step;
3. streamlit-authenticator (credentials built from `staff_users`) only when this run needs it: the sign-in
   form, or deleting a cookie — signed-in runs never build it (its cookie component is an iframe per tab);
4. the navigation, built from that actor's permissions (before sign-in only the login page exists),
   the sidebar, and the selected page. A page that exists but is not the actor's (asked for by URL or a
   link) is answered by a hidden stand-in at its path: it audits the `page.view` denial once per attempt
   and says "You don't have access to this page" (instead of Streamlit's "Page not found").
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

import streamlit as st
import streamlit_authenticator as stauth
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.util import calc_hash
from streamlit_authenticator.utilities import LoginError

from app.services.alerts import reads as alerts
from app.services.staff import signin
from app.settings import Settings, SettingsError
from app.ui import navigation, state
from app.ui.login import remember_signed_in, render_login
from app.ui.second_factor import render_new_recovery_codes
from app.ui.sidebar import render_sidebar
from auth.authenticator import cookie_username, cookie_value, credentials_from_rows, make_authenticator
from auth.identity import Actor
from auth.sessions import token_session_id

# Demo without a configured key: a random key for this process (cookies die with the process).
_EPHEMERAL_KEY = secrets.token_urlsafe(48)
NO_ACCESS = "You don't have access to this page."  # a page that exists but is not the actor's
UNREACHABLE = "The database cannot be reached right now. Please try again in a moment."
log = logging.getLogger(__name__)


def _startup_settings() -> Settings:
    try:
        settings = state.settings()
        settings.check_production()
    except SettingsError as exc:
        print(f"Pitboss cannot start: {exc}", file=sys.stderr)
        st.error(f"Pitboss cannot start: {exc}", icon=":material/gpp_bad:")
        st.stop()
    return settings


def _authenticator(engine: Engine, settings: Settings) -> stauth.Authenticate:
    credentials = credentials_from_rows(signin.login_rows(engine))

    def check_credentials(username: str, password: str) -> bool:
        result = signin.attempt_login(
            engine, username, password, settings=settings, client=state.client_label(), client_ip=state.client_ip()
        )
        st.session_state[state.CHECK_KEY] = result
        return result.ok and result.username in credentials["usernames"]

    return make_authenticator(
        credentials,
        cookie_name=settings.cookie_name,
        cookie_key=settings.cookie_key or _EPHEMERAL_KEY,
        expiry_hours=settings.cookie_expiry_hours,
        check_credentials=check_credentials,
    )


def _sign_out(authenticator: stauth.Authenticate, notice: str | None) -> None:
    """Forget the user in this tab and delete the login cookie (the session row is already ended)."""
    st.session_state.pop(state.SESSION_KEY, None)
    st.session_state.pop(state.PENDING_KEY, None)
    st.session_state.pop(state.PENDING_COOKIE_KEY, None)
    if st.session_state.get("authentication_status"):
        authenticator.logout(location="unrendered")
    for key in ("name", "username", "email", "roles", "authentication_status"):
        st.session_state[key] = None
    if notice:
        st.session_state[state.NOTICE_KEY] = notice


def _ended_notice(engine: Engine, session_id: str) -> str:
    reason = signin.session_end_reason(engine, session_id) or "ended"
    return f"Your session has ended ({reason}). Please sign in again."


def _adopt_cookie_session(engine: Engine, settings: Settings) -> Actor | None:
    """A new browser tab whose login cookie (sent when it connected) names a live server-side session: that
    session's actor, remembered for the tab, exactly as the library's cookie restore would sign in — but
    without building the authenticator (its cookie component costs every tab an iframe and a round trip)."""
    token = cookie_value(settings.cookie_name)
    if not token or st.session_state.get(state.REJECTED_COOKIE_KEY) == token:
        return None
    username = cookie_username(token, settings.cookie_key or _EPHEMERAL_KEY)
    if not username:
        return None
    sid = token_session_id(token)
    actor = signin.current_actor(engine, sid, settings=settings)
    if actor is None:  # not live; if it waits for its second step, this browser passed the password: ask for it
        info = signin.sign_in_state(engine, sid, settings=settings)
        if info is not None and info.pending_step is not None and info.username == username:
            st.session_state[state.PENDING_KEY] = sid
        return None
    if actor.username != username:
        return None
    remember_signed_in(engine, actor)
    return actor


def _sign_in_cut_short() -> bool:
    """The library holds a user who is not from a cookie: this tab's password check passed in the last run (its
    LoginCheck is not consumed yet) and a rerun cut that run short before the session was opened (at the
    cookie write). Not a cookie to drop: the sign-in page opens the session and writes a cookie for it."""
    check = st.session_state.get(state.CHECK_KEY)
    return check is not None and check.ok and check.username == st.session_state.get("username")


def resolve_actor(engine: Engine, settings: Settings, authenticator: Callable[[], stauth.Authenticate]) -> Actor | None:
    """The signed-in actor of this run, or None (then only the login page exists).

    `authenticator()` builds the library object; it is only needed to sign in, or to delete a cookie."""
    sid = state.session_id()
    pending = state.pending_session_id()
    if st.session_state.pop(state.LOGOUT_KEY, False):
        signin.logout(engine, sid or pending)
        _sign_out(authenticator(), "You have signed out.")
        return None
    if pending and not sid:
        info = signin.sign_in_state(engine, pending, settings=settings)
        if info is not None and info.pending_step is not None:
            return None  # the sign-in page asks for the second step
        actor = signin.current_actor(engine, pending, settings=settings) if info is not None else None
        if actor is None:
            _sign_out(authenticator(), _ended_notice(engine, pending))
            return None
        remember_signed_in(engine, actor)  # the step was finished in another tab of this browser
        return actor
    if sid:
        actor = signin.current_actor(engine, sid, settings=settings)
        if actor is not None and actor.username == st.session_state.get("username"):
            return actor
        _sign_out(authenticator(), _ended_notice(engine, sid))
        return None
    actor = _adopt_cookie_session(engine, settings)
    if actor is not None or state.pending_session_id():
        return actor
    # No usable cookie. If the library restores one (it reads the same cookie), its session is not live:
    # drop it, and do not look at that cookie again in this tab.
    auth = authenticator()
    with contextlib.suppress(LoginError):  # a cookie naming an unknown user: treated as no cookie
        auth.login(location="unrendered")
    if st.session_state.get("authentication_status"):
        if _sign_in_cut_short():
            return None  # the sign-in page finishes it
        token = cookie_value(settings.cookie_name)
        sid = token_session_id(token) if token else None
        st.session_state[state.REJECTED_COOKIE_KEY] = token
        _sign_out(auth, _ended_notice(engine, sid) if sid else None)
    return None


def _title(spec: navigation.PageSpec, open_alerts: int) -> str:
    """The page's navigation title; the Alerts entry carries the count of open alerts as its badge."""
    if spec.file == "alerts" and open_alerts:
        return f"{spec.title} ({open_alerts} open)"
    return spec.title


def requested_page() -> navigation.PageSpec | None:
    """The registered page this run was asked for (by URL path, a link or `st.switch_page`), if any."""
    ctx = get_script_run_ctx()
    if ctx is None:
        return None
    wanted_hash = ctx.pages_manager.intended_page_script_hash
    wanted_name = ctx.pages_manager.intended_page_name
    for spec in navigation.PAGES:
        if (wanted_hash and wanted_hash == calc_hash(spec.url_path)) or (
            not wanted_hash and wanted_name == spec.url_path
        ):
            return spec
    return None


def _refused_page(actor: Actor, engine: Engine) -> StreamlitPage | None:
    """A hidden stand-in at the path of a page that exists but is not this actor's, when that page was asked for.

    Its body audits the `page.view` denial once per attempt (a rerun on the same refused page is not a new
    attempt; opening a page the actor may use ends the attempt) and says so."""
    spec = requested_page()
    if spec is None or spec.permits(actor):
        st.session_state.pop(state.DENIED_PAGE_KEY, None)
        return None

    def refused() -> None:
        if st.session_state.get(state.DENIED_PAGE_KEY) != spec.file:
            signin.record_page_denied(engine, actor, spec.file, via="navigation")
            st.session_state[state.DENIED_PAGE_KEY] = spec.file
        st.error(NO_ACCESS, icon=":material/block:")

    return st.Page(refused, title=spec.title, url_path=spec.url_path, visibility="hidden")


def _navigation(actor: Actor, engine: Engine) -> StreamlitPage:
    """The actor's pages by section. Every page keeps its own path (/overview, /players, …): the default page
    is a hidden "home" that switches to the actor's landing page, because Streamlit serves the default page
    at "/" and a deep link to its own path would otherwise be "page not found"."""
    landing = navigation.landing_for(actor)
    refused = _refused_page(actor, engine)
    open_alerts = alerts.open_alert_count(engine, actor)
    by_file: dict[str, StreamlitPage] = {}
    sections: dict[str, list[StreamlitPage]] = {}
    for section, specs in navigation.by_section(navigation.pages_for(actor)).items():
        for spec in specs:
            page = st.Page(spec.path, title=_title(spec, open_alerts), icon=spec.icon, url_path=spec.url_path)
            by_file[spec.file] = page
            sections.setdefault(section, []).append(page)

    def home() -> None:
        st.switch_page(by_file[landing.file])

    first = next(iter(sections))
    sections[first].insert(0, st.Page(home, title="Home", url_path="home", default=True, visibility="hidden"))
    if refused is not None:
        sections[first].append(refused)
    return st.navigation(sections, position="sidebar", expanded=True)


# A file, not a Material icon name: those favicons are fetched from fonts.gstatic.com by every browser.
_FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.png"

# Exact amounts (cents) must fit a KPI tile at 1280 px: a slightly smaller metric value font.
_STYLE = "<style>[data-testid='stMetricValue'] { font-size: 1.6rem; }</style>"


def run() -> None:
    """One run of the app."""
    st.set_page_config(page_title="Pitboss", page_icon=str(_FAVICON), layout="wide")
    st.html(_STYLE)
    settings = _startup_settings()
    engine = state.engine()
    built: list[stauth.Authenticate] = []

    def authenticator() -> stauth.Authenticate:
        if not built:
            built.append(_authenticator(engine, settings))
        return built[0]

    try:
        actor = resolve_actor(engine, settings, authenticator)
    except OperationalError:  # the server is down or refusing connections: say so, not a traceback
        log.exception("the operational database cannot be reached")
        st.error(UNREACHABLE, icon=":material/cloud_off:")
        st.stop()
    if actor is None or not navigation.pages_for(actor):
        if actor is not None:  # an account whose roles open no page
            signin.logout(engine, actor.session_id)
            _sign_out(authenticator(), "Your account has no pages to open; ask an admin for a role.")

        def login() -> None:
            render_login(authenticator(), engine, settings)

        # The sign-in page answers at every page's path: a deep link shows it (no "page not found"), and
        # as Streamlit identifies a page by its url path, the user lands on that page after signing in.
        pages = [st.Page(login, title="Sign in", icon=":material/login:", url_path="login", default=True)]
        pages += [
            st.Page(login, title="Sign in", url_path=spec.url_path, visibility="hidden") for spec in navigation.PAGES
        ]
        page = st.navigation(pages, position="hidden")
        page.run()
        return
    page = _navigation(actor, engine)
    render_sidebar(actor)
    render_new_recovery_codes()  # just issued (a confirmed enrolment): shown once, above the page
    page.run()

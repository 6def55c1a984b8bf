"""The keys Pitboss keeps in `st.session_state`, and the per-process settings/engine for the UI."""

from __future__ import annotations

from functools import lru_cache

import streamlit as st
from sqlalchemy.engine import Engine

from app.db import get_engine
from app.settings import Settings, get_settings

SESSION_KEY = "pitboss_session_id"  # the live staff_sessions row of this browser tab
PENDING_KEY = "pitboss_pending_session_id"  # a session of this tab waiting for its second step (not live)
PENDING_COOKIE_KEY = "pitboss_pending_cookie"  # (token, expiry) of the cookie issued with that session
NOTICE_KEY = "pitboss_notice"  # a message for the login page (signed out, session ended, …)
LOGOUT_KEY = "pitboss_logout_requested"  # set by the sign-out button's callback
CHECK_KEY = "pitboss_login_check"  # the LoginCheck of the last form submit
REJECTED_COOKIE_KEY = "pitboss_rejected_cookie"  # a login cookie of this tab whose session is not live
DENIED_PAGE_KEY = "pitboss_denied_page"  # the refused page whose denial this tab has already audited


def settings() -> Settings:
    return get_settings()


@lru_cache(maxsize=4)
def _engine_for(settings: Settings) -> Engine:
    return get_engine(settings)


def engine() -> Engine:
    """The process-wide engine (cached per settings: resolving the embedded server costs a round trip)."""
    return _engine_for(get_settings())


def session_id() -> str | None:
    return st.session_state.get(SESSION_KEY)


def pending_session_id() -> str | None:
    return st.session_state.get(PENDING_KEY)


def client_ip() -> str | None:
    """The client's network address as Streamlit sees it (None for localhost): keys the sign-in throttles."""
    try:
        ip = st.context.ip_address
    except Exception:
        return None
    return ip if isinstance(ip, str) else None


def client_label() -> str:
    """Where a request comes from, for the session row and the audit log (IP and browser)."""
    try:
        ip = st.context.ip_address or "?"
        agent = (st.context.headers.get("User-Agent") or "")[:120]
    except Exception:
        return "unknown"
    return f"{ip} {agent}".strip()

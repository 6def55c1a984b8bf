"""streamlit-authenticator 0.4.2, wired to Pitboss's own account store and sessions.

What the library does for us: the login form, the signed re-authentication cookie (a JWT holding the
username and an expiry date) and restoring the user from that cookie on a new browser session.
Its weaknesses and how they are closed here:
- credentials: built from `staff_users` on every run (pre-hashed, `auto_hash=False`); no YAML file is
  ever written, and the password check is replaced by ours (`check_credentials`), which also handles
  disabled/demo accounts, the failed-login counter and the lockout;
- the cookie cannot be revoked: each issued cookie is bound to a server-side `staff_sessions` row
  whose id is the SHA-256 of the cookie value (`issued_token`), and the app only trusts a cookie
  whose session row is live;
- the cookie is a deterministic function of the key, the username and the expiry (which the audit log
  records): the token we issue also carries a random 256-bit `sid` claim, so knowing all three is not
  enough to rebuild a live session's cookie (and cookies without a `sid` are refused);
- the key: it comes from Settings (≥ 32 random bytes; production refuses weak keys).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterable
from typing import Any

import jwt
import streamlit as st
import streamlit_authenticator as stauth

COOKIE_ALGORITHM = "HS256"  # what streamlit-authenticator 0.4.2 signs its cookie with
_ISSUED = "pitboss_issued_token"  # attribute of the library's CookieModel: the token written in this run


def credentials_from_rows(rows: Iterable[Any]) -> dict:
    """The library's credentials dict from staff rows (username, display_name, email, password_hash, roles)."""
    return {
        "usernames": {
            row.username: {
                "name": row.display_name,
                "email": row.email,
                "password": row.password_hash,
                "roles": list(row.roles),
            }
            for row in rows
        }
    }


def make_authenticator(
    credentials: dict,
    *,
    cookie_name: str,
    cookie_key: str,
    expiry_hours: float,
    check_credentials: Callable[[str, str], bool],
) -> stauth.Authenticate:
    """An Authenticate whose password check is `check_credentials(username, password)`."""
    authenticator = stauth.Authenticate(
        credentials,
        cookie_name=cookie_name,
        cookie_key=cookie_key,
        cookie_expiry_days=expiry_hours / 24.0,
        auto_hash=False,
        login_sleep_time=0,
    )
    # The library's model checks bcrypt against the dict and counts failures in memory only; ours
    # checks the database row (disabled, demo, lockout) and records the attempt there.
    authenticator.authentication_controller.authentication_model.check_credentials = check_credentials
    model = authenticator.cookie_controller.cookie_model

    def token_encode() -> str:
        """`CookieModel._token_encode` plus a random `sid` claim; the token is kept for `issued_token`."""
        claims = {"username": st.session_state["username"], "exp_date": model.exp_date, "sid": secrets.token_hex(32)}
        token = jwt.encode(claims, model.cookie_key, algorithm=COOKIE_ALGORITHM)
        setattr(model, _ISSUED, token)
        return token

    model._token_encode = token_encode
    return authenticator


def issued_token(authenticator: stauth.Authenticate) -> tuple[str, dt.datetime] | None:
    """The cookie value `login()` wrote during this run and its expiry, or None if none was written."""
    model = authenticator.cookie_controller.cookie_model
    token = getattr(model, _ISSUED, None)
    if token is None or model.exp_date is None:
        return None
    return token, dt.datetime.fromtimestamp(model.exp_date, tz=dt.UTC)


def cookie_username(token: str, cookie_key: str, now: dt.datetime | None = None) -> str | None:
    """The username in a login cookie signed with `cookie_key` and not yet expired, else None.

    Mirrors `CookieModel._token_decode` + its expiry check, without the library's cookie component (which
    needs a browser round trip before the value is known)."""
    try:
        claims = jwt.decode(token, cookie_key, algorithms=[COOKIE_ALGORITHM])
    except jwt.PyJWTError:
        return None
    username, exp = claims.get("username"), claims.get("exp_date")
    if not isinstance(username, str) or not isinstance(exp, int | float) or not isinstance(claims.get("sid"), str):
        return None
    if exp <= (now or dt.datetime.now(dt.UTC)).timestamp():
        return None
    return username


def cookie_value(cookie_name: str) -> str | None:
    """The login cookie the browser sent when this session connected (None if absent)."""
    try:
        value = st.context.cookies.get(cookie_name)
    except Exception:  # no browser context (bare script run)
        return None
    return value if isinstance(value, str) and value else None

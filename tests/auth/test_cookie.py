"""The login cookie check the shell uses to sign a returning tab in without the library's cookie component."""

from __future__ import annotations

import datetime as dt

import jwt

from auth.authenticator import COOKIE_ALGORITHM, cookie_username

KEY = "k" * 64
NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)


def _token(
    username: object = "admin", exp: object = None, key: str = KEY, alg: str = COOKIE_ALGORITHM, sid: object = "r" * 64
) -> str:
    exp = (NOW + dt.timedelta(hours=1)).timestamp() if exp is None else exp
    claims = {"username": username, "exp_date": exp} | ({} if sid is None else {"sid": sid})
    return jwt.encode(claims, key, algorithm=alg)


def test_a_cookie_signed_with_the_key_and_unexpired_names_its_user():
    assert cookie_username(_token(), KEY, NOW) == "admin"


def test_expired_forged_or_malformed_cookies_name_nobody():
    assert cookie_username(_token(exp=(NOW - dt.timedelta(seconds=1)).timestamp()), KEY, NOW) is None
    assert cookie_username(_token(key="x" * 64), KEY, NOW) is None  # signed with another key
    assert cookie_username(_token(alg="HS512"), KEY, NOW) is None  # not the library's algorithm
    assert cookie_username(_token(username=42), KEY, NOW) is None
    assert cookie_username(_token(exp="tomorrow"), KEY, NOW) is None
    assert cookie_username("not-a-jwt", KEY, NOW) is None
    assert cookie_username(_token(sid=None), KEY, NOW) is None  # the library's own, deterministic form
    assert cookie_username(_token(sid=42), KEY, NOW) is None
    unsigned = jwt.encode({"username": "admin", "exp_date": NOW.timestamp() + 60}, None, algorithm="none")
    assert cookie_username(unsigned, KEY, NOW) is None

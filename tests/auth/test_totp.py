"""The second factor's primitives: TOTP codes with an injected clock, replay refusal, recovery codes, the
secret's encryption at rest, and who must have a factor."""

from __future__ import annotations

import base64
import re

import pytest

from app.settings import SettingsError, load_settings
from auth import totp

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()  # RFC 6238 appendix B (SHA-1)
T0 = 30 * 60_000_000 + 7  # 7 s into step 60,000,000


def test_codes_match_the_rfc_6238_test_vectors():
    assert totp.code_at(RFC_SECRET, totp.time_step(59)) == "287082"
    assert totp.code_at(RFC_SECRET, totp.time_step(1111111109)) == "081804"
    assert totp.match_code(RFC_SECRET, "287 082", after_step=None, now=59) == ("ok", 1)


def test_a_code_is_accepted_one_step_either_side_and_never_again():
    secret = totp.new_secret()
    step = totp.time_step(T0)
    for offset in (-1, 0, 1):
        assert totp.match_code(secret, totp.code_at(secret, step + offset), after_step=None, now=T0) == (
            "ok",
            step + offset,
        )
    for offset in (-2, 2):
        assert totp.match_code(secret, totp.code_at(secret, step + offset), after_step=None, now=T0)[0] == "bad"
    now_code = totp.code_at(secret, step)
    # used once (that step recorded): refused as a replay for the rest of its window, and so are older codes
    assert totp.match_code(secret, now_code, after_step=step, now=T0) == ("replayed", step)
    assert totp.match_code(secret, totp.code_at(secret, step - 1), after_step=step, now=T0)[0] == "replayed"
    assert totp.match_code(secret, totp.code_at(secret, step + 1), after_step=step, now=T0) == ("ok", step + 1)
    for junk in ("", "12345", "1234567", "abcdef", None):
        assert totp.match_code(secret, junk, after_step=None, now=T0) == ("bad", None)


def test_secrets_and_the_provisioning_uri():
    secret = totp.new_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret) and secret != totp.new_secret()
    uri = totp.provisioning_uri(secret, "ada")
    assert uri.startswith("otpauth://totp/Pitboss:ada?") and f"secret={secret}" in uri and "issuer=Pitboss" in uri
    assert totp.grouped("ABCDEFGH") == "ABCD EFGH"


def test_recovery_codes_are_random_stored_salted_and_matched_as_typed():
    codes = totp.new_recovery_codes()
    assert len(codes) == 10 == len(set(codes))
    assert all(re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", c) for c in codes)
    salt, digest = totp.hash_recovery_code(codes[0])
    assert codes[0] not in digest and len(digest) == 64
    assert totp.hash_recovery_code(codes[0])[1] != digest  # salted: the same code hashes differently
    assert totp.recovery_code_matches(codes[0], salt, digest)
    assert totp.recovery_code_matches(" " + codes[0].upper().replace("-", " ") + " ", salt, digest)
    assert not totp.recovery_code_matches(codes[1], salt, digest)
    assert not totp.recovery_code_matches("", salt, digest)
    assert totp.looks_like_totp("123 456") and not totp.looks_like_totp(codes[0])


def test_the_secret_is_encrypted_under_the_key_outside_the_database():
    box = totp.SecretBox(b"k" * 40)
    sealed = box.seal("JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in sealed and box.open(sealed) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(totp.SecretUnreadable):
        totp.SecretBox(b"another key").open(sealed)
    with pytest.raises(totp.SecretUnreadable):
        box.open(sealed[:-4] + "AAAA")
    with pytest.raises(ValueError):
        totp.SecretBox(b"")


def test_who_must_have_a_second_factor():
    for roles in (("admin",), ("compliance",), ("finance",), ("support", "compliance")):
        assert totp.required_for(roles, production=True)
        assert not totp.required_for(roles, production=False)  # demo: anyone may skip it
    for roles in (("analyst",), ("manager",), ("support",)):
        assert not totp.required_for(roles, production=True)


def test_the_second_factor_key_setting():
    audit = "a-random-audit-key-" + "x1y2z3" * 6
    base = {"PITBOSS_ENV": "demo", "PITBOSS_AUDIT_KEY": audit}
    derived = load_settings(base, secrets_file=None).effective_second_factor_key()
    own = load_settings({**base, "PITBOSS_SECOND_FACTOR_KEY": "s" * 40}, secrets_file=None)
    assert derived != own.effective_second_factor_key()
    assert derived == load_settings(base, secrets_file=None).effective_second_factor_key()  # stable
    prod = {**base, "PITBOSS_ENV": "production", "PITBOSS_COOKIE_KEY": "c0o1k2i3e4-" * 4}
    load_settings(prod, secrets_file=None).check_production()  # no own key: the audit key's derivation
    with pytest.raises(SettingsError, match="PITBOSS_SECOND_FACTOR_KEY"):
        load_settings({**prod, "PITBOSS_SECOND_FACTOR_KEY": "short"}, secrets_file=None).check_production()

"""Blacklist value normalisation per category (pure)."""

from __future__ import annotations

import re

import pytest

from app.services.blacklist.rules import (
    InvalidValue,
    email_key_variants,
    ip_in_entry,
    normalize,
    try_normalize,
)


@pytest.mark.parametrize(
    ("category", "raw", "expected"),
    [
        ("email", "  Fraud.Ster@Example.COM ", "fraud.ster@example.com"),
        ("email", "a+promo@x.io", "a@x.io"),  # the match key: plus-tag dropped
        ("email", "+tagonly@x.io", "+tagonly@x.io"),  # nothing before the tag: kept
        ("email", "J.O.H.N+casino@GoogleMail.com", "john@gmail.com"),  # Gmail ignores dots
        ("email", "j.doe@outlook.com", "j.doe@outlook.com"),  # other providers do not
        ("email", "Ana@Bücher.DE", "ana@xn--bcher-kva.de"),  # IDNA domain
        ("email", "\u00a0ｊｏｈｎ@ｅｘａｍｐｌｅ.com\u3000", "john@example.com"),  # NFKC, Unicode spaces stripped
        ("phone", "+44 7400 900-123", "+447400900123"),
        ("phone", "0044 (7400) 900.123", "+447400900123"),
        ("phone", "+1/212/555/0100", "+12125550100"),
        ("ip", " 203.0.113.7 ", "203.0.113.7"),
        ("ip", "203.0.113.0/24", "203.0.113.0/24"),
        ("ip", "203.0.113.7/32", "203.0.113.7"),
        ("ip", "2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("ip", "2001:db8::/48", "2001:db8::/48"),
        ("device", "  DEV-ABC123 ", "dev-abc123"),
        ("document", " ab-123 456.7 ", "AB1234567"),
        ("payment_account", "gb82 west 1234 5698 7654 32", "GB82WEST12345698765432"),
        ("payment_account", "DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
        ("payment_account", " card_fp_9aZ ", "card_fp_9aZ"),
    ],
)
def test_valid_values_are_normalised(category: str, raw: str, expected: str) -> None:
    assert normalize(category, raw) == expected


@pytest.mark.parametrize(
    ("category", "raw", "message"),
    [
        ("email", "", "empty"),
        ("email", "   ", "empty"),
        ("email", "no-at-sign.com", "not an email address: An email address must have an @-sign"),
        ("email", "a@b@c.com", "not an email address"),
        ("email", "a@localhost", "not an email address"),
        ("email", "a..b@x.com", "two periods in a row"),
        ("email", "a b@x.com", "invalid characters before the @-sign"),
        ("email", "fraud@example.invalid", "special-use or reserved name"),  # email-validator, not our regex
        ("phone", "07400 900123", "no country code"),
        ("phone", "+44 74a0 900123", "only digits"),
        ("phone", "+4412", r"not a valid phone number for \+44 \(GB\): too short"),
        ("phone", "+1234567890123456", "too long"),
        ("phone", "+0441234567", "unknown country code"),
        ("phone", "+44 7700 900123", r"not a valid phone number for \+44 \(GB\)"),  # right length, not in use
        ("phone", "+1 212 055 0100", r"not a valid phone number for \+1"),  # no US area code starts with 0
        ("ip", "300.1.1.1", "not an IP address"),
        ("ip", "203.0.113.7/24", "host bits set; did you mean 203.0.113.0/24"),
        ("ip", "0.0.0.0/4", "too broad"),
        ("ip", "2001::/16", "too broad"),
        ("ip", "example.com", "not an IP address"),
        ("device", "dev 1", "contains spaces"),
        ("document", "AB#123", "letters and digits"),
        ("document", "A1", "4–30"),
        ("payment_account", "GB82 WEST 1234 5698 7654 33", "check digits are wrong"),
        ("payment_account", "GB82", "not a valid IBAN"),
        ("payment_account", "GB88WEST1234569876543", "wrong length for its country"),  # mod-97 passes
        ("payment_account", "XX82WEST12345698765432", "unknown country code"),
        ("payment_account", "wallet id 1", "contains spaces"),
        ("nonsense", "x", "unknown category"),
        ("email", "x" * 300 + "@x.com", "longer than"),
        ("device", "a\x00b", "NUL"),
    ],
)
def test_invalid_values_get_a_clear_message(category: str, raw: str, message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        normalize(category, raw)


@pytest.mark.parametrize(
    ("category", "raw", "character"),
    [
        ("device", "dev\u200b123", "U+200B ZERO WIDTH SPACE"),
        ("device", "\x1b[31mdev-1", "U+001B"),
        ("device", "dev-1\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("device", "dev\u2066-1", "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ("payment_account", "card_fp\u200d_9aZ", "U+200D ZERO WIDTH JOINER"),
        ("payment_account", "wallet\u00ad42", "U+00AD SOFT HYPHEN"),
        ("payment_account", "\ufeffcard_fp_1", "U+FEFF"),
        ("payment_account", "card_fp_1\x07", "U+0007"),
        ("email", "a\u200b@example.com", "U+200B"),
        ("document", "AB\u2069123456", "U+2069"),
        ("phone", "+44 7400\u200e900123", "U+200E LEFT-TO-RIGHT MARK"),
    ],
)
def test_invisible_and_control_characters_are_refused(category: str, raw: str, character: str) -> None:
    """Issue 11: a value that looks like another one must not be stored (they would never match)."""
    with pytest.raises(InvalidValue, match=re.escape(f"invisible or control character ({character}")):
        normalize(category, raw)


def test_surrounding_unicode_whitespace_is_not_part_of_the_value() -> None:
    assert normalize("device", "\u00a0DEV-1\u2003") == "dev-1"
    assert normalize("payment_account", "\u3000card_fp_9aZ\u00a0") == "card_fp_9aZ"


def test_email_key_variants() -> None:
    assert email_key_variants("a@x.com") == {"a@x.com"}
    assert email_key_variants("a@xn--bcher-kva.de") == {"a@xn--bcher-kva.de", "a@bücher.de"}


def test_try_normalize_returns_none_for_bad_stored_data() -> None:
    assert try_normalize("phone", "n/a") is None
    assert try_normalize("phone", None) is None
    assert try_normalize("email", "Ok@Example.com") == "ok@example.com"
    assert try_normalize("email", "qa+1@pitboss.test") == "qa@pitboss.test"  # QA accounts' test domain
    assert try_normalize("email", "a@example.invalid") is None  # other special-use domains


def test_ip_in_entry() -> None:
    assert ip_in_entry("203.0.113.200", "203.0.113.0/24")
    assert ip_in_entry("203.0.113.7", "203.0.113.7")
    assert not ip_in_entry("203.0.114.1", "203.0.113.0/24")
    assert not ip_in_entry("2001:db8::1", "203.0.113.0/24")
    assert not ip_in_entry("garbage", "203.0.113.0/24")

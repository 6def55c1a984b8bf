"""Blacklist value normalisation per category (pure)."""

from __future__ import annotations

import pytest

from app.services.blacklist.rules import (
    InvalidValue,
    email_match_keys,
    iban_checksum_ok,
    ip_in_entry,
    normalize,
    try_normalize,
)


@pytest.mark.parametrize(
    ("category", "raw", "expected"),
    [
        ("email", "  Fraud.Ster@Example.COM ", "fraud.ster@example.com"),
        ("email", "a+promo@x.io", "a+promo@x.io"),
        ("phone", "+44 7700 900-123", "+447700900123"),
        ("phone", "0044 (7700) 900.123", "+447700900123"),
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
        ("email", "no-at-sign.com", "exactly one @"),
        ("email", "a@b@c.com", "exactly one @"),
        ("email", "a@localhost", "bad domain"),
        ("email", "a..b@x.com", "misplaced dot"),
        ("email", "a b@x.com", "bad part"),
        ("phone", "07700 900123", "no country code"),
        ("phone", "+44 77a0 900123", "only digits"),
        ("phone", "+4412", "8–15 digits"),
        ("phone", "+1234567890123456", "8–15 digits"),
        ("phone", "+0441234567", "never starts with 0"),
        ("ip", "300.1.1.1", "not an IP address"),
        ("ip", "203.0.113.7/24", "host bits set; did you mean 203.0.113.0/24"),
        ("ip", "0.0.0.0/4", "too broad"),
        ("ip", "2001::/16", "too broad"),
        ("ip", "example.com", "not an IP address"),
        ("device", "dev 1", "contains spaces"),
        ("document", "AB#123", "letters and digits"),
        ("document", "A1", "4–30"),
        ("payment_account", "GB82 WEST 1234 5698 7654 33", "check digits are wrong"),
        ("payment_account", "GB82", "15–34"),
        ("payment_account", "wallet id 1", "contains spaces"),
        ("nonsense", "x", "unknown category"),
        ("email", "x" * 300 + "@x.com", "longer than"),
        ("device", "a\x00b", "NUL"),
    ],
)
def test_invalid_values_get_a_clear_message(category: str, raw: str, message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        normalize(category, raw)


def test_plus_tag_matching_keys() -> None:
    assert email_match_keys("A+Promo@X.com") == {"a+promo@x.com", "a@x.com"}
    assert email_match_keys("a@x.com") == {"a@x.com"}


def test_try_normalize_returns_none_for_bad_stored_data() -> None:
    assert try_normalize("phone", "n/a") is None
    assert try_normalize("phone", None) is None
    assert try_normalize("email", "Ok@Example.com") == "ok@example.com"


def test_ip_in_entry() -> None:
    assert ip_in_entry("203.0.113.200", "203.0.113.0/24")
    assert ip_in_entry("203.0.113.7", "203.0.113.7")
    assert not ip_in_entry("203.0.114.1", "203.0.113.0/24")
    assert not ip_in_entry("2001:db8::1", "203.0.113.0/24")
    assert not ip_in_entry("garbage", "203.0.113.0/24")


def test_iban_checksum() -> None:
    assert iban_checksum_ok("GB82WEST12345698765432")
    assert not iban_checksum_ok("GB82WEST12345698765423")

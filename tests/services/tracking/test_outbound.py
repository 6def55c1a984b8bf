"""Outbound postback requests against real local servers: only HTTPS to public (or test-allowed) addresses,
checked after DNS and connected to the checked address, no redirects, one total deadline."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.services.tracking import outbound
from app.services.tracking.outbound import OutboundPolicy, send
from app.services.tracking.rules import address_problem, url_problem
from app.settings import SettingsError, load_settings
from tests.services.tracking.conftest import start_partner, stop_partner

TOKEN = "EAAB-super-secret-token-9f3c"
LOCAL = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.fixture
def policy(test_certs) -> OutboundPolicy:
    """The test policy: the test CA trusted, 127.0.0.1 allowed (test only)."""
    return OutboundPolicy(LOCAL, test_certs.ca)


def _send(url: str, policy: OutboundPolicy, **kw):
    kw.setdefault("timeout", 3)
    return send(url, {"click_id": "c1"}, event_id="ev-1", policy=policy, params={"access_token": TOKEN}, **kw)


def test_https_to_an_allowed_local_partner_is_delivered_with_its_credentials(partner, policy):
    result = _send(partner.url("/ok"), policy)
    assert result.ok and result.http_code == 200 and '"ok"' in result.body
    assert partner.hits["ev-1"] == 1 and f"access_token={TOKEN}" in partner.paths[0]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "only https:// postback URLs are allowed (this one is file://)"),
        ("http://127.0.0.1:1/x", "only https:// postback URLs are allowed (this one is http://)"),
        ("partner.example/cb?token=abc", "no scheme"),
        ("https://user:pw@partner.test/cb", "must not carry a user name or password"),
        ("https:///nohost", "no host"),
        ("https://partner.test:99999/x", "cannot be parsed"),
        ("", "empty"),
    ],
)
def test_bad_urls_are_refused_before_anything_is_sent(url, reason, policy):
    result = _send(url, policy)
    assert not result.ok and result.permanent and result.http_code is None
    assert reason in result.error and result.error.startswith("refused: ")
    assert "root:" not in result.body + result.error  # the local file was never read
    assert TOKEN not in result.error


def test_file_url_never_reads_the_file(policy, tmp_path):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("root:x:0:0:TOPSECRET")
    result = _send(secret_file.as_uri(), policy)
    assert result.permanent and "TOPSECRET" not in result.body + (result.error or "")


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("169.254.169.254", "link-local (cloud metadata)"),
        ("10.1.2.3", "a private"),
        ("192.168.0.10", "a private"),
        ("100.64.0.1", "reserved"),
        ("[::1]", "loopback"),
        ("[::ffff:10.0.0.1]", "a private"),
        ("0.0.0.0", "unspecified"),
    ],
)
def test_internal_and_metadata_addresses_are_refused_without_connecting(host, kind, policy):
    started = time.monotonic()
    result = _send(f"https://{host}/latest/meta-data/", policy)
    assert result.permanent and not result.ok and "not a public one" in result.error and kind in result.error
    assert time.monotonic() - started < 1  # refused before any connection attempt


def test_loopback_is_refused_without_the_test_allowlist(partner, test_certs):
    no_allow = OutboundPolicy((), test_certs.ca)
    for url in (partner.url("/ok"), f"https://localhost:{partner.port}/ok"):
        result = _send(url, no_allow)
        assert result.permanent and "loopback" in result.error and TOKEN not in result.error
    assert partner.total == 0


def test_a_redirect_is_not_followed_and_the_token_goes_nowhere_else(partner, test_certs, policy):
    attacker = start_partner(test_certs)
    try:
        partner.redirect_to = attacker.url("/steal")
        result = _send(partner.url("/redirect"), policy)
    finally:
        stop_partner(attacker)
    assert result.http_code == 302 and result.permanent and not result.ok
    assert "redirect" in result.error and f"127.0.0.1:{attacker.port}" in result.error
    assert "/steal" not in result.error and TOKEN not in result.error
    assert partner.total == 1 and attacker.total == 0


def test_an_untrusted_certificate_is_refused(partner, test_certs):
    other = OutboundPolicy(LOCAL, test_certs.other_ca)
    result = _send(partner.url("/ok"), other)
    assert not result.ok and "TLS certificate is not trusted" in result.error and TOKEN not in result.error
    assert partner.total == 0


def test_one_total_deadline_even_when_the_answer_drips(partner, policy):
    started = time.monotonic()
    result = _send(partner.url("/drip"), policy, timeout=1.0)  # 100 bytes, one every 0.1 s: 10 s in all
    elapsed = time.monotonic() - started
    assert result.error == "timed out after 1s" and not result.permanent
    assert elapsed < 2.0


def test_dns_is_resolved_once_and_the_checked_address_is_the_one_connected(partner, policy, monkeypatch):
    """A rebinding name answers 127.0.0.1 (allowed here) first and 10.0.0.1 after: only the first answer is
    ever used, for the check and the connection."""
    calls = []
    real = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host[:1].isdigit():  # an address literal (the connection to the checked address)
            return real(host, port, *args, **kwargs)
        calls.append(host)
        ip = "127.0.0.1" if len(calls) == 1 else "10.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(outbound.socket, "getaddrinfo", rebinding)
    result = _send(f"https://partner.test:{partner.port}/ok", policy)
    assert result.ok and calls == ["partner.test"] and partner.total == 1


def test_a_name_resolving_to_a_private_address_is_refused_after_dns(partner, policy, monkeypatch):
    def private(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]  # fmt: skip

    monkeypatch.setattr(outbound.socket, "getaddrinfo", private)
    result = _send(f"https://partner.test:{partner.port}/ok", policy)
    assert result.permanent and "partner.test resolves to an address that is not public" in result.error
    assert "10.0.0.7 is a private address, not a public one" in result.error
    assert partner.total == 0


def test_proxies_from_the_environment_are_ignored(partner, policy, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.9.9.9:3128")
    assert _send(partner.url("/ok"), policy).ok


def test_plain_http_server_on_loopback_gets_nothing(policy):
    """Even with the test allowlist, plain http is refused: the token never travels unencrypted."""
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # pragma: no cover - must never run
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = _send(f"http://127.0.0.1:{server.server_address[1]}/cb", policy)
    finally:
        server.shutdown()
        server.server_close()
    assert result.permanent and "http://" in result.error and hits == []


def test_pure_rules():
    assert url_problem("https://partner.example/cb?x=1") is None
    assert address_problem(ipaddress.ip_address("8.8.8.8")) is None
    assert address_problem(ipaddress.ip_address("2a00:1450:4001::1")) is None
    assert "private" in address_problem(ipaddress.ip_address("64:ff9b::a00:1"))  # NAT64 of 10.0.0.1
    assert address_problem(ipaddress.ip_address("127.0.0.1"), LOCAL) is None


def test_the_test_allowlist_is_refused_in_production(tmp_path):
    env = {
        "PITBOSS_ENV": "production",
        "PITBOSS_COOKIE_KEY": "k3y-" + "abcdefghijklmnopqrstuvwxyz0123456789",
        "PITBOSS_POSTBACK_ALLOW_HOSTS": "127.0.0.1",
    }
    settings = load_settings(env, secrets_file=None)
    with pytest.raises(SettingsError, match="PITBOSS_POSTBACK_ALLOW_HOSTS"):
        settings.check_production()
    with pytest.raises(SettingsError, match="test-only"):
        OutboundPolicy.from_settings(settings)
    with pytest.raises(SettingsError, match="IP addresses or networks"):
        load_settings({"PITBOSS_POSTBACK_ALLOW_HOSTS": "localhost"}, secrets_file=None)
    demo = load_settings({"PITBOSS_POSTBACK_ALLOW_HOSTS": "127.0.0.1, 10.0.0.0/8"}, secrets_file=None)
    assert OutboundPolicy.from_settings(demo).allowed == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
    )

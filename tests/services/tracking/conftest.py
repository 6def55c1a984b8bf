"""Fixtures for tracking/postback tests: a migrated database with minimal rows, and a local HTTPS partner.

Postbacks go to public HTTPS addresses only, so the local partner serves HTTPS with a certificate issued in
the test by a test CA, and the `partner` fixture sets the two test settings that let the worker reach it:
PITBOSS_POSTBACK_CA_BUNDLE (trust the test CA) and PITBOSS_POSTBACK_ALLOW_HOSTS=127.0.0.1 (test-only).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.db import create_engine

TEST_HOSTS = ("localhost", "partner.test")  # names the test certificate is valid for (besides 127.0.0.1)


@dataclass(frozen=True)
class TestCerts:
    ca: Path  # the test CA (PEM), to trust
    cert: Path  # the partner's certificate (PEM), issued by the CA
    key: Path
    other_ca: Path  # a CA that did not issue the partner's certificate


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _make_ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="session")
def test_certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    """A test CA, a partner certificate it issued (127.0.0.1, localhost, partner.test), and an unrelated CA."""
    out = tmp_path_factory.mktemp("certs")
    ca_key, ca_cert = _make_ca("Pitboss test CA")
    _, other_cert = _make_ca("Some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), *(x509.DNSName(h) for h in TEST_HOSTS)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("partner.test"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = TestCerts(out / "ca.pem", out / "partner.pem", out / "partner.key", out / "other-ca.pem")
    paths.ca.write_bytes(_pem(ca_cert))
    paths.other_ca.write_bytes(_pem(other_cert))
    paths.cert.write_bytes(_pem(cert))
    paths.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


class Partner:
    """A local HTTPS server whose answer is chosen by the URL path: /ok, /bad (400), /err (503), /slow, /flaky,
    /drip (answers one byte at a time, slowly), /redirect (302 to `redirect_to`)."""

    def __init__(self, certs: TestCerts) -> None:
        self.hits: Counter[str] = Counter()  # event id -> requests received
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.slow_seconds = 2.0
        self.flaky_failures = 1  # /flaky answers 503 this many times, then 200
        self.redirect_to = "https://127.0.0.1:1/elsewhere"
        partner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                event_id = self.headers.get("X-Event-Id", "?")
                path = self.path.split("?")[0]
                with partner.lock:
                    partner.hits[event_id] += 1
                    partner.paths.append(self.path)
                    partner.headers.append(dict(self.headers))
                    flaky_fail = path == "/flaky" and partner.hits[event_id] <= partner.flaky_failures
                if path == "/slow":
                    time.sleep(partner.slow_seconds)
                    code, body = 200, b"late"
                elif path == "/drip":
                    self._drip()
                    return
                elif path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", partner.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                elif path == "/bad":
                    code, body = 400, b'{"error":"invalid click id"}'
                elif path == "/err" or flaky_fail:
                    code, body = 503, b"upstream unavailable " + b"x" * 2000
                else:
                    code, body = 200, b'{"status":"ok"}'
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _drip(self) -> None:
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    for _ in range(100):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.1)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                    pass

            do_GET = _answer
            do_POST = _answer

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certs.cert, certs.key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.base = f"https://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def total(self) -> int:
        return sum(self.hits.values())


def start_partner(certs: TestCerts) -> Partner:
    p = Partner(certs)
    p.thread.start()
    return p


def stop_partner(p: Partner) -> None:
    p.server.shutdown()
    p.server.server_close()


@pytest.fixture
def partner(test_certs: TestCerts, monkeypatch: pytest.MonkeyPatch) -> Iterator[Partner]:
    """The local HTTPS partner, reachable by the worker (in this process and in subprocesses it starts)."""
    monkeypatch.setenv("PITBOSS_POSTBACK_CA_BUNDLE", str(test_certs.ca))
    monkeypatch.setenv("PITBOSS_POSTBACK_ALLOW_HOSTS", "127.0.0.1")
    monkeypatch.delenv("PITBOSS_ENV", raising=False)
    p = start_partner(test_certs)
    yield p
    stop_partner(p)


@pytest.fixture
def engine(fresh_db: str) -> Iterator[sa.Engine]:
    eng = create_engine(fresh_db, poolclass=sa.pool.NullPool)
    yield eng
    eng.dispose()

"""Real local receivers for the alert delivery tests: SMTP servers (aiosmtpd) and an HTTPS webhook receiver.

- `smtp_server(...)`: an aiosmtpd server on 127.0.0.1 and a free port that accepts, or answers every RCPT with a
  chosen reply (a 4xx or a 5xx); optionally STARTTLS (required) with a certificate made here and AUTH checked
  against one user and password;
- `free_port()` for "down" (nothing listens there), `blackhole()` for "slow" (accepts and never answers);
- `Webhook`: an HTTPS server with a self-signed certificate (made here with `cryptography`) that verifies the
  HMAC signature of every body and answers from a script of status codes (e.g. 500 then 200).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.services.alerts.channels import verify_signature
from tests.ports import free_port


@dataclass(frozen=True)
class SelfSigned:
    cert: Path
    key: Path


def self_signed(directory: Path) -> SelfSigned:
    """A self-signed certificate for 127.0.0.1 and localhost (its own trust anchor)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    out = SelfSigned(directory / "self.pem", directory / "self.key")
    out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return out


def _server_context(certs: SelfSigned) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs.cert, certs.key)
    return ctx


# --------------------------------------------------------------------------- SMTP


@dataclass
class Mailbox:
    """What an SMTP test server received (and the reply it gives to RCPT, when set)."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)  # (mail from, rcpt tos, content)
    rcpt_reply: str | None = None  # e.g. "450 4.2.1 Mailbox busy" or "550 5.1.1 No such user"
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server(
    *,
    rcpt_reply: str | None = None,
    certs: SelfSigned | None = None,
    login: tuple[str, str] | None = None,
    port: int | None = None,
) -> Iterator[tuple[int, Mailbox]]:
    """A running aiosmtpd server on 127.0.0.1: (port, mailbox). With `certs`, STARTTLS is required; with
    `login`, AUTH is required and only that user and password are accepted."""
    box = Mailbox(rcpt_reply=rcpt_reply)
    kwargs: dict = {}
    if certs is not None:
        kwargs.update(tls_context=_server_context(certs), require_starttls=True)
    if login is not None:

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and (auth_data.login.decode(), auth_data.password.decode()) == login
            )
            box.logins.append(auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?")
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=certs is not None,
                      auth_exclude_mechanism=["LOGIN"])  # fmt: skip
    port = port or free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


@contextmanager
def blackhole() -> Iterator[int]:
    """A TCP port that accepts connections and never says anything (a hung SMTP server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


# --------------------------------------------------------------------------- webhook


class Webhook:
    """A local HTTPS webhook receiver that checks the signature of each body with `secret`.

    `script`: the status codes of the next answers (then 200). `received` keeps (signature valid, headers, body).
    """

    def __init__(self, certs: SelfSigned, secret: str, script: list[int] | None = None) -> None:
        self.secret = secret
        self.script = list(script or [])
        self.received: list[tuple[bool, dict[str, str], bytes]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = dict(self.headers)
                hook.received.append((verify_signature(hook.secret, headers, body), headers, body))
                code = hook.script.pop(0) if hook.script else 200
                answer = b'{"ok":true}' if code < 300 else b"receiver trouble"
                self.send_response(code)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = _server_context(certs).wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hooks/pitboss/s3cr3t-path-token"

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

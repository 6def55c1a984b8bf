"""Outbound HTTP for postbacks: one guarded request to a partner, never to anything else.

A postback URL names a partner, but it is typed by staff and stored in the database, so it is not trusted:

- only `https://` URLs without credentials in them (`rules.url_problem`); TLS verified (certifi's CAs, or
  the bundle named by PITBOSS_POSTBACK_CA_BUNDLE);
- the host is resolved once, every address it resolves to must be public (`rules.address_problem`), and the
  connection goes to that checked address (TLS still verifies the host name), so a second DNS answer cannot
  swap in an internal address (no rebinding gap); proxies from the environment are ignored;
- redirects are never followed (the request carries the platform's credentials): a 3xx fails the postback;
- one total deadline per request (DNS, connect, TLS, sending and reading the answer together);
- at most `RESPONSE_LIMIT` characters of the answer are kept, and no error text carries the credentials.

PITBOSS_POSTBACK_ALLOW_HOSTS (tests only; production refuses it) lists non-public addresses that may be
reached, e.g. the local HTTPS receiver of the test suite.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import json
import re
import socket
import ssl
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpcore
import httpx

from app.services.tracking.rules import IPNetwork, address_problem, url_host, url_problem
from app.settings import Settings, SettingsError, load_settings

RESPONSE_LIMIT = 500  # characters of the response body kept
USER_AGENT = "Pitboss-Postbacks/1.0"
_resolver = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="postback-dns")


class Refused(Exception):
    """The destination is not allowed (the message says why; it never carries the URL's path or query)."""


@dataclass(frozen=True)
class OutboundPolicy:
    """Where postbacks may go: public addresses (plus test-only `allowed` networks), TLS verified with `ca_bundle`."""

    allowed: tuple[IPNetwork, ...] = ()
    ca_bundle: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> OutboundPolicy:
        """The policy of the current environment (read fresh; production refuses the test-only allowlist)."""
        settings = settings or load_settings()
        if settings.postback_allow_hosts and not settings.is_demo:
            raise SettingsError("PITBOSS_POSTBACK_ALLOW_HOSTS is a test-only setting and is refused in production")
        allowed = tuple(ipaddress.ip_network(h, strict=False) for h in settings.postback_allow_hosts)
        return cls(allowed, settings.postback_ca_bundle)


@dataclass
class SendResult:
    http_code: int | None
    body: str
    error: str | None = None  # why nothing (or no usable answer) came back
    permanent: bool = False  # retrying cannot help (a refused destination, a redirect)

    @property
    def ok(self) -> bool:
        return self.http_code is not None and 200 <= self.http_code < 300


@lru_cache(maxsize=8)
def _ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    import certifi

    ctx = ssl.create_default_context(cafile=str(ca_bundle or certifi.where()))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


# --------------------------------------------------------------------------- the guarded network backend


def _remaining(deadline: float, exc: type[Exception]) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise exc("the request deadline passed")
    return left


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the request's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner, self._deadline = inner, deadline

    def _timeout(self, timeout: float | None, exc: type[Exception]) -> float:
        left = _remaining(self._deadline, exc)
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._timeout(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._timeout(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._timeout(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def resolve(host: str, port: int, timeout: float) -> list[str]:
    """The addresses `host` resolves to (DNS bounded by `timeout`)."""
    future = _resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=timeout)
    except concurrent.futures.TimeoutError as exc:
        raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
    except OSError as exc:
        raise httpcore.ConnectError(f"{host} cannot be resolved ({exc.strerror or exc})") from exc
    return list(dict.fromkeys(info[4][0] for info in infos))


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves once, refuses any non-public address, and connects to the address it checked."""

    def __init__(self, policy: OutboundPolicy, deadline: float) -> None:
        self._policy, self._deadline = policy, deadline
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:  # fmt: skip
        left = _remaining(self._deadline, httpcore.ConnectTimeout)
        addresses = resolve(host, port, left if timeout is None else min(timeout, left))
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        for addr in addresses:
            problem = address_problem(ipaddress.ip_address(addr.split("%")[0]), self._policy.allowed)
            if problem:
                raise Refused(
                    problem if host == addr else f"{host} resolves to an address that is not public: {problem}"
                )
        left = _remaining(self._deadline, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(
            addresses[0], port, left if timeout is None else min(timeout, left), local_address, socket_options
        )
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None):
        raise Refused("postbacks never use unix sockets")


def _transport(policy: OutboundPolicy, deadline: float) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(verify=_ssl_context(policy.ca_bundle), trust_env=False)
    transport._pool = httpcore.ConnectionPool(  # the same pool httpx builds, on the guarded backend
        ssl_context=_ssl_context(policy.ca_bundle),
        max_connections=1,
        max_keepalive_connections=0,
        http1=True,
        http2=False,
        retries=0,
        network_backend=_GuardedBackend(policy, deadline),
    )
    return transport


# --------------------------------------------------------------------------- sending


def _redact(text: str, secrets: list[str]) -> str:
    for value in secrets:
        if value:
            text = text.replace(value, "•••")
    return text


def _error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        why = re.search(r"certificate verify failed: ([^(]+)", text)
        return f"the partner's TLS certificate is not trusted ({why.group(1).strip() if why else 'verify failed'})"
    return text


def _answer(resp: httpx.Response, deadline: float, secrets: list[str]) -> SendResult:
    """The SendResult of a response: a redirect is refused, else at most RESPONSE_LIMIT characters of the body."""
    if 300 <= resp.status_code < 400:
        location = resp.headers.get("location")
        where = url_host(location) if location else "?"
        return SendResult(
            resp.status_code,
            "",
            f"refused: the partner answered with a redirect (HTTP {resp.status_code} to {where}); "
            "redirects are not followed, fix the postback URL",
            permanent=True,
        )
    raw = bytearray()
    for chunk in resp.iter_bytes():
        raw += chunk
        if len(raw) >= RESPONSE_LIMIT * 4:
            break
        _remaining(deadline, httpx.ReadTimeout)
    text = _redact(raw.decode("utf-8", "replace"), secrets)
    return SendResult(resp.status_code, text[:RESPONSE_LIMIT])


def send(
    url: str,
    payload: dict,
    *,
    event_id: str,
    timeout: float,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    policy: OutboundPolicy | None = None,
    content: bytes | None = None,
) -> SendResult:
    """POST `payload` as JSON to `url` (GET when it is empty) within `timeout` seconds in total.

    `content`: a JSON body already serialized (e.g. one the caller signed), POSTed as is instead of `payload`.

    Never raises for a refused destination or an HTTP or network outcome: the SendResult says what happened
    (`permanent` when retrying cannot help), and its texts never carry `headers` or `params` values.
    """
    secrets = [*(headers or {}).values(), *(params or {}).values()]
    problem = url_problem(url)
    if problem:
        return SendResult(None, "", f"refused: {problem}", permanent=True)
    policy = policy or OutboundPolicy.from_settings()
    deadline = time.monotonic() + timeout
    all_headers = {"User-Agent": USER_AGENT, "X-Event-Id": event_id, **(headers or {})}
    body = content
    if body is None and payload:
        body = json.dumps({"event_id": event_id, **payload}, default=str).encode()
    if body is not None:
        all_headers["Content-Type"] = "application/json"
    try:
        with httpx.Client(
            transport=_transport(policy, deadline), follow_redirects=False, trust_env=False, timeout=timeout
        ) as client:
            request = client.build_request(
                "POST" if body else "GET", url.strip(), params=params or None, headers=all_headers, content=body
            )
            resp = client.send(request, stream=True)
            try:
                return _answer(resp, deadline, secrets)
            finally:
                resp.close()
    except (httpx.InvalidURL, ValueError, UnicodeError):
        return SendResult(None, "", "refused: the postback URL is not valid", permanent=True)
    except Refused as exc:
        return SendResult(None, "", _redact(f"refused: {exc}", secrets)[:RESPONSE_LIMIT], permanent=True)
    except (httpx.TimeoutException, httpcore.TimeoutException):
        return SendResult(None, "", f"timed out after {timeout:g}s")
    except (httpx.HTTPError, httpcore.NetworkError, httpcore.ProtocolError, OSError, ssl.SSLError) as exc:
        text = _redact(f"connection error: {_error_text(exc)}", secrets)
        return SendResult(None, "", text[:RESPONSE_LIMIT])

"""A small reverse proxy in front of several app replicas on one host (`python -m app serve --replicas N`).

Plain asyncio streams, no dependency. What it does, and why:

- **HTTP and WebSockets.** A request head is read, rewritten and sent to a replica; a WebSocket upgrade
  (Streamlit's `/_stcore/stream`) then becomes a byte tunnel both ways. Any other request is sent with
  `Connection: close` and exactly its `Content-Length` body, and the connection ends with the response: one
  request per client connection, so every request the replica sees passed through the rewriting below
  (nothing is pipelined behind it). Chunked request bodies are refused (411; browsers do not send them).
- **The client's address.** `X-Forwarded-For` / `X-Real-IP` / `Forwarded` sent by the client are dropped and
  `X-Forwarded-For: <peer address>` is set. Streamlit's server (uvicorn) trusts that header from 127.0.0.1
  only, where the replicas listen, so the sign-in throttles key on the real client, not on the proxy, and a
  client cannot choose the address they are keyed on.
- **Any replica serves any signed-in user** (sessions live in PostgreSQL). A browser is still kept on one
  replica while it is up (cookie `pitboss_replica`, set on the first response): Streamlit keeps a tab's
  uploaded files and its download/media files in the memory of the process holding the tab's WebSocket, and
  the upload or download request must reach that process. When the replica is down (health checks on
  `/_stcore/health` every `health_every` seconds, or a refused connection), the browser moves to another
  replica and stays signed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import dataclass

AFFINITY_COOKIE = "pitboss_replica"
MAX_HEAD = 64 * 1024  # request or response head
HEAD_TIMEOUT = 30.0  # seconds a client may take to send its request head
CONNECT_TIMEOUT = 5.0
CHUNK = 64 * 1024
# Not passed on: hop-by-hop headers (RFC 9110 §7.6.1) and forwarding headers a client could forge.
DROPPED = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade",
        b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port", b"x-real-ip",
        b"forwarded",
    }
)  # fmt: skip
UNAVAILABLE = "No app replica is available right now. Please try again in a moment."
log = logging.getLogger(__name__)


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Replica:
    host: str
    port: int
    healthy: bool = True  # until a health check or a refused connection says otherwise


@dataclass(frozen=True)
class RequestHead:
    method: bytes
    target: bytes
    version: bytes
    headers: list[tuple[bytes, bytes]]  # as sent (names in their case)

    def values(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def is_websocket(self) -> bool:
        connection = b",".join(self.values(b"connection")).lower()
        upgrade = b",".join(self.values(b"upgrade")).lower()
        return self.method == b"GET" and b"upgrade" in connection and b"websocket" in upgrade

    def content_length(self) -> int:
        if self.values(b"transfer-encoding"):
            raise BadRequest(411, "Length Required")
        lengths = {v.strip() for v in self.values(b"content-length")}
        if not lengths:
            return 0
        if len(lengths) > 1 or not next(iter(lengths)).isdigit():
            raise BadRequest(400, "Bad Request")
        return int(next(iter(lengths)))

    def replica_cookie(self) -> int | None:
        """The replica index the browser was given (`pitboss_replica=<n>`), if any."""
        for header in self.values(b"cookie"):
            for part in header.split(b";"):
                name, _, value = part.strip().partition(b"=")
                if name == AFFINITY_COOKIE.encode() and value.isdigit() and len(value) <= 3:
                    return int(value)
        return None


def parse_head(raw: bytes) -> RequestHead:
    """The request line and headers of `raw` (the bytes up to and including the blank line)."""
    lines = raw[:-4].split(b"\r\n") if raw.endswith(b"\r\n\r\n") else []
    parts = lines[0].split(b" ") if lines else []
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1.") or not parts[0].isalpha():
        raise BadRequest(400, "Bad Request")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            raise BadRequest(400, "Bad Request")  # no obsolete line folding, no space before the colon
        headers.append((name, value.strip()))
    return RequestHead(parts[0], parts[1], parts[2], headers)


def forwarded_head(head: RequestHead, client_ip: str) -> bytes:
    """The head sent to the replica: forwarding headers replaced by ours, one request per connection."""
    lines = [b" ".join((head.method, head.target, head.version))]
    named = {v.strip().lower() for v in b",".join(head.values(b"connection")).split(b",")}
    lines += [k + b": " + v for k, v in head.headers if k.lower() not in DROPPED and k.lower() not in named]
    lines.append(b"X-Forwarded-For: " + client_ip.encode())
    lines.append(b"X-Forwarded-Proto: http")
    if head.is_websocket:
        lines += [b"Connection: Upgrade", b"Upgrade: websocket"]
    else:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _error_response(status: int, reason: str, text: str | None = None) -> bytes:
    body = (text or reason).encode() + b"\n"
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


class ReplicaProxy:
    """Spreads browsers over `replicas` ((host, port) pairs) and keeps each on its replica while it is up."""

    def __init__(self, replicas: list[tuple[str, int]], *, health_every: float = 2.0) -> None:
        if not replicas:
            raise ValueError("at least one replica")
        self.replicas = [Replica(h, p) for h, p in replicas]
        self.health_every = health_every
        self._next = itertools.cycle(range(len(self.replicas)))
        self._tasks: set[asyncio.Task] = set()

    async def start(self, host: str | None, port: int) -> asyncio.Server:
        """Listen on host:port (host None: every interface); check the replicas' health in the background
        until the server closes."""
        server = await asyncio.start_server(self.handle, host, port, limit=MAX_HEAD)
        task = asyncio.get_running_loop().create_task(self._health_loop(server))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return server

    # -- choosing a replica -------------------------------------------------------------------------------

    def _candidates(self, wanted: int | None) -> list[int]:
        """Replica indexes to try in order: the browser's own if it is up, then the healthy ones round-robin,
        then the rest (a health check may be stale)."""
        n = len(self.replicas)
        start = next(self._next)
        ring = [(start + k) % n for k in range(n)]
        order = [i for i in ring if self.replicas[i].healthy] + [i for i in ring if not self.replicas[i].healthy]
        if wanted is not None and 0 <= wanted < n and self.replicas[wanted].healthy:
            order.remove(wanted)
            order.insert(0, wanted)
        return order

    async def _connect(self, wanted: int | None) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter] | None:
        for index in self._candidates(wanted):
            replica = self.replicas[index]
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(replica.host, replica.port, limit=MAX_HEAD), CONNECT_TIMEOUT
                )
            except (OSError, TimeoutError):
                self._mark(index, healthy=False)
                continue
            return index, reader, writer
        return None

    def _mark(self, index: int, *, healthy: bool) -> None:
        replica = self.replicas[index]
        if replica.healthy != healthy:
            log.warning("replica %d (%s:%d) is %s", index, replica.host, replica.port, "up" if healthy else "down")
        replica.healthy = healthy

    # -- one client connection ----------------------------------------------------------------------------

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        peer = client_w.get_extra_info("peername")
        client_ip = peer[0] if isinstance(peer, tuple) else "unknown"
        upstream_w: asyncio.StreamWriter | None = None
        try:
            try:
                raw = await asyncio.wait_for(client_r.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
                head = parse_head(raw)
                body_left = 0 if head.is_websocket else head.content_length()
            except asyncio.LimitOverrunError:
                raise BadRequest(431, "Request Header Fields Too Large") from None
            except TimeoutError:
                raise BadRequest(408, "Request Timeout") from None
            wanted = head.replica_cookie()
            connected = await self._connect(wanted)
            if connected is None:
                client_w.write(_error_response(503, "Service Unavailable", UNAVAILABLE))
                await client_w.drain()
                return
            index, upstream_r, upstream_w = connected
            upstream_w.write(forwarded_head(head, client_ip))
            while body_left > 0:
                chunk = await client_r.read(min(CHUNK, body_left))
                if not chunk:
                    return
                upstream_w.write(chunk)
                await upstream_w.drain()
                body_left -= len(chunk)
            await upstream_w.drain()
            if wanted != index:  # the browser is new here or its replica is down: keep it on this one
                await self._relay_head_with_cookie(upstream_r, client_w, index)
            if head.is_websocket:
                await _tunnel(client_r, client_w, upstream_r, upstream_w)
            else:
                await _pipe(upstream_r, client_w)
        except BadRequest as exc:
            with contextlib.suppress(OSError):
                client_w.write(_error_response(exc.status, exc.reason))
                await client_w.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a side went away: close both
        finally:
            for writer in (upstream_w, client_w):
                if writer is not None:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()

    async def _relay_head_with_cookie(
        self, upstream_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, index: int
    ) -> None:
        head = await upstream_r.readuntil(b"\r\n\r\n")
        cookie = f"Set-Cookie: {AFFINITY_COOKIE}={index}; Path=/; HttpOnly; SameSite=Lax\r\n".encode()
        client_w.write(head[:-2] + cookie + b"\r\n")
        await client_w.drain()

    # -- health ---------------------------------------------------------------------------------------------

    async def check(self, index: int) -> bool:
        replica = self.replicas[index]
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(replica.host, replica.port), 2.0)
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(b"GET /_stcore/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 2.0)
            return status.split(b" ")[1:2] == [b"200"]
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def check_all(self) -> None:
        results = await asyncio.gather(*(self.check(i) for i in range(len(self.replicas))))
        for index, ok in enumerate(results):
            self._mark(index, healthy=ok)

    async def _health_loop(self, server: asyncio.Server) -> None:
        while server.is_serving():
            await self.check_all()
            await asyncio.sleep(self.health_every)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    while chunk := await src.read(CHUNK):
        dst.write(chunk)
        await dst.drain()


async def _tunnel(
    client_r: asyncio.StreamReader,
    client_w: asyncio.StreamWriter,
    upstream_r: asyncio.StreamReader,
    upstream_w: asyncio.StreamWriter,
) -> None:
    """Bytes both ways until either side closes."""
    tasks = [asyncio.ensure_future(_pipe(client_r, upstream_w)), asyncio.ensure_future(_pipe(upstream_r, client_w))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, OSError, asyncio.IncompleteReadError):
                await task

"""The replica proxy (app/commands/proxy.py) against stand-in replicas: forwarding headers, one request per
connection, replica affinity and failover, health checks, WebSocket tunnelling. The real Streamlit replicas
behind it are driven by tests/browser/test_replicas.py."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from dataclasses import dataclass, field

import pytest

from app.commands.proxy import AFFINITY_COOKIE, UNAVAILABLE, ReplicaProxy


@dataclass
class StandIn:
    """A replica stand-in: answers every request with its name, records what it received."""

    name: str
    server: asyncio.Server | None = None
    heads: list[bytes] = field(default_factory=list)
    extra: list[bytes] = field(default_factory=list)  # bytes after the first request's body (must stay empty)

    @property
    def port(self) -> int:
        return self.server.sockets[0].getsockname()[1]

    async def start(self, port: int = 0) -> StandIn:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        return self

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
        body = await reader.readexactly(length)
        if not head.startswith(b"GET /_stcore/health "):  # the proxy's health checks are not requests
            self.heads.append(head + body)
        with contextlib.suppress(TimeoutError):
            more = await asyncio.wait_for(reader.read(4096), 0.3)
            if more:
                self.extra.append(more)
        text = self.name.encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(text), text))
        await writer.drain()
        writer.close()


def run_async(coro) -> None:
    """Run `coro` on a fresh event loop in its own thread: a browser test earlier in this worker leaves
    Playwright's loop running in the main thread, where asyncio.run() refuses to start."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


async def _request(port: int, raw: bytes, *, source: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return data


def _get(cookie: str | None = None, extra: str = "") -> bytes:
    lines = ["GET /overview HTTP/1.1", "Host: pitboss.example", "Connection: keep-alive"]
    if cookie:
        lines.append(f"Cookie: pitboss_auth=abc; {cookie}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


@contextlib.asynccontextmanager
async def _setup(n: int = 2):
    replicas = [await StandIn(f"replica-{i}").start() for i in range(n)]
    proxy = ReplicaProxy([("127.0.0.1", r.port) for r in replicas], health_every=0.2)
    server = await proxy.start("127.0.0.1", 0)
    try:
        yield proxy, server.sockets[0].getsockname()[1], replicas
    finally:
        server.close()
        await server.wait_closed()
        for r in replicas:
            if r.server.is_serving():
                await r.stop()


def test_the_replica_sees_the_clients_address_never_a_forged_one() -> None:
    async def main() -> None:
        async with _setup(1) as (_, port, (replica,)):
            forged = (
                "X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n"
                "x-forwarded-proto: https\r\n"
            )
            response = await _request(port, _get(extra=forged), source="127.0.0.2")
            assert response.endswith(b"replica-0")
            head = replica.heads[0].decode().lower()
            assert "6.6.6.6" not in head and "https" not in head
            assert head.count("x-forwarded-for:") == 1 and "x-forwarded-for: 127.0.0.2\r\n" in head
            assert "connection: close\r\n" in head and "keep-alive" not in head
            assert "host: pitboss.example\r\n" in head  # kept: Streamlit compares the Origin with it

    run_async(main())


def test_one_request_per_connection_nothing_smuggled_behind_it() -> None:
    async def main() -> None:
        async with _setup(1) as (_, port, (replica,)):
            body = b"a=1"
            first = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n" + body
            second = _get(extra="X-Forwarded-For: 6.6.6.6\r\n")  # pipelined: would reach the replica unrewritten
            response = await _request(port, first + second)
            assert response.count(b"HTTP/1.1 200") == 1
            assert replica.heads == [replica.heads[0]] and replica.heads[0].endswith(b"\r\n\r\na=1")
            assert replica.extra == []
            # A chunked body (or one with two lengths) is refused before any replica sees it.
            chunked = b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"
            assert (await _request(port, chunked)).startswith(b"HTTP/1.1 411")
            two = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
            assert (await _request(port, two)).startswith(b"HTTP/1.1 400")
            assert (await _request(port, b"GET /x HTTP/1.1\r\n folded: x\r\n\r\n")).startswith(b"HTTP/1.1 400")
            assert len(replica.heads) == 1

    run_async(main())


def _cookie_of(response: bytes) -> str | None:
    head = response.split(b"\r\n\r\n", 1)[0].decode()
    for line in head.split("\r\n"):
        if line.lower().startswith("set-cookie:") and AFFINITY_COOKIE in line:
            return line.split(":", 1)[1].split(";")[0].strip()
    return None


def test_a_browser_stays_on_its_replica_and_moves_when_it_is_down() -> None:
    async def main() -> None:
        async with _setup(2) as (proxy, port, replicas):
            # New browsers are spread over the replicas, each told where it landed.
            first, second = await _request(port, _get()), await _request(port, _get())
            landed = {first.rsplit(b"\r\n", 1)[-1], second.rsplit(b"\r\n", 1)[-1]}
            assert landed == {b"replica-0", b"replica-1"}
            cookie = _cookie_of(first)
            assert cookie == f"{AFFINITY_COOKIE}={first.decode()[-1]}"
            # A browser with a cookie stays where it is (and is not told again).
            for _ in range(3):
                again = await _request(port, _get(f"{AFFINITY_COOKIE}=1"))
                assert again.endswith(b"replica-1") and _cookie_of(again) is None
            # Its replica goes away: the next request lands on the other one and the browser is moved there.
            await replicas[1].stop()
            await asyncio.sleep(0.5)  # a health check already under way when it stopped has finished
            moved = await _request(port, _get(f"{AFFINITY_COOKIE}=1"))
            assert moved.endswith(b"replica-0") and _cookie_of(moved) == f"{AFFINITY_COOKIE}=0"
            assert proxy.replicas[1].healthy is False
            # A cookie naming no replica is treated as none.
            assert _cookie_of(await _request(port, _get(f"{AFFINITY_COOKIE}=7"))) == f"{AFFINITY_COOKIE}=0"
            # All gone: a clear 503, no traceback, no address.
            await replicas[0].stop()
            down = await _request(port, _get())
            assert down.startswith(b"HTTP/1.1 503") and down.endswith(UNAVAILABLE.encode() + b"\n")

    run_async(main())


def test_health_checks_bring_a_replica_back() -> None:
    async def main() -> None:
        async with _setup(2) as (proxy, _, replicas):
            port = replicas[1].port
            await replicas[1].stop()
            await asyncio.sleep(0.5)  # a health check already under way when it stopped has finished
            await proxy.check_all()
            assert [r.healthy for r in proxy.replicas] == [True, False]
            await replicas[1].start(port)
            await asyncio.sleep(0.6)  # the background loop checks every 0.2 s
            assert [r.healthy for r in proxy.replicas] == [True, True]

    run_async(main())


def test_websockets_are_tunnelled_both_ways() -> None:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    seen: list[dict] = []

    async def echo(ws) -> None:
        seen.append(dict(ws.request.headers.raw_items()))
        async for message in ws:
            await ws.send(b"echo:" + message)

    async def main() -> None:
        async with serve(echo, "127.0.0.1", 0) as backend:
            backend_port = backend.sockets[0].getsockname()[1]
            proxy = ReplicaProxy([("127.0.0.1", backend_port)])
            server = await proxy.start("127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            try:
                headers = {"Cookie": "pitboss_auth=abc", "X-Forwarded-For": "6.6.6.6"}
                async with connect(f"ws://127.0.0.1:{port}/_stcore/stream", additional_headers=headers) as ws:
                    for i in range(3):
                        await ws.send(b"x" * (100_000 * i + 1))
                        assert await ws.recv() == b"echo:" + b"x" * (100_000 * i + 1)
            finally:
                server.close()
                await server.wait_closed()
        assert seen[0]["X-Forwarded-For"] == "127.0.0.1" and seen[0]["Cookie"] == "pitboss_auth=abc"

    run_async(main())


def test_a_proxy_needs_a_replica() -> None:
    with pytest.raises(ValueError):
        ReplicaProxy([])

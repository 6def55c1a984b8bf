"""Fixtures for tracking/postback tests: a migrated database with minimal rows, and a local partner server."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from app.db import create_engine


class Partner:
    """A local HTTP server whose answer is chosen by the URL path: /ok, /bad (400), /err (503), /slow, /flaky."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()  # event id -> requests received
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.slow_seconds = 2.0
        self.flaky_failures = 1  # /flaky answers 503 this many times, then 200
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

            do_GET = _answer
            do_POST = _answer

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    @property
    def total(self) -> int:
        return sum(self.hits.values())


@pytest.fixture
def partner() -> Iterator[Partner]:
    p = Partner()
    p.thread.start()
    yield p
    p.server.shutdown()
    p.server.server_close()


@pytest.fixture
def engine(fresh_db: str) -> Iterator[sa.Engine]:
    eng = create_engine(fresh_db, poolclass=sa.pool.NullPool)
    yield eng
    eng.dispose()

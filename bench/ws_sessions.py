"""Streamlit sessions driven over the app's own WebSocket protocol, for the concurrent-sessions benchmark.

A Chromium tab per session puts 20 browsers (JavaScript parsing, Plotly rendering) on the same 2 cores as
the server, and then measures the browsers. These clients speak what the browser speaks — connect to
`/_stcore/stream` with the login cookie, ask for a page run, read every ForwardMsg until the run finishes —
so the time is what the server needs to deliver the whole page to each of many users at once. A session
counts only if the page arrived whole (`expect`: at least that many elements of each kind).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

FINISHED_SUCCESSFULLY = 0  # ForwardMsg.ScriptFinishedStatus


@dataclass(frozen=True)
class SessionLoad:
    seconds: float
    elements: dict[str, int]
    complete: bool


async def load_page(
    base: str, cookie_header: str, page: str, expect: dict[str, int], timeout: float = 120.0
) -> SessionLoad:
    """Open one new session on `page` and wait until its run has finished (its elements all sent)."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    started = time.perf_counter()
    elements: Counter[str] = Counter()
    url = base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/_stcore/stream"
    headers = {"Cookie": cookie_header, "Origin": base}
    async with asyncio.timeout(timeout):
        async with websockets.connect(url, subprotocols=["streamlit"], additional_headers=headers,
                                      max_size=None, ping_interval=None) as ws:  # fmt: skip
            request = BackMsg()
            request.rerun_script.page_name = page
            request.rerun_script.query_string = ""
            await ws.send(request.SerializeToString())
            while True:
                msg = ForwardMsg()
                msg.ParseFromString(await ws.recv())
                kind = msg.WhichOneof("type")
                if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                    elements[msg.delta.new_element.WhichOneof("type")] += 1
                elif kind == "script_finished" and msg.script_finished == FINISHED_SUCCESSFULLY:
                    break
    seconds = time.perf_counter() - started
    complete = all(elements[k] >= n for k, n in expect.items())
    return SessionLoad(seconds, dict(elements), complete)


async def load_concurrently(
    base: str, cookie_header: str, page: str, sessions: int, expect: dict[str, int]
) -> list[SessionLoad | None]:
    """`sessions` new sessions opening `page` at the same moment (None: that session failed)."""

    async def one() -> SessionLoad | None:
        try:
            return await load_page(base, cookie_header, page, expect)
        except Exception:  # a failed session is counted, not fatal
            return None

    return list(await asyncio.gather(*(one() for _ in range(sessions))))

"""Page benchmarks (wired into `make bench` by app/commands/bench.py):

- warm rerun time of every analytics page with Streamlit's AppTest (signed in as the demo admin; the first run
  fills the caches, then `reruns` reruns are timed) — target ≤ 100 ms at demo scale;
- `sessions` simultaneous browser sessions (Playwright + Chromium) loading the Overview from a real server —
  target p95 ≤ 3.5 s. Skipped (with a note) when /usr/bin/chromium is missing.

    measure(url=<postgres url>, warehouse=<served duckdb file>) -> dict
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa

from app.db import create_engine
from app.services import staff
from app.settings import PROJECT_ROOT, get_settings, load_settings

PAGES = ("overview", "regions", "games", "operators", "cohorts", "metrics", "players", "player_360")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-background-timer-throttling",
                 "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"]  # fmt: skip
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"


def _stats_ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1), "p95_ms": round(p95 * 1000, 1), "n": len(ordered)}


def _admin_session(engine: sa.Engine) -> str:
    staff.ensure_demo_staff(engine, load_settings({"PITBOSS_ENV": "demo"}))
    with engine.connect() as conn:
        sid = conn.execute(sa.text("SELECT id FROM staff_users WHERE username = 'admin'")).scalar()
    return staff.open_session(engine, sid, client="bench").session_id


def page_reruns(engine: sa.Engine, reruns: int = 10) -> dict[str, dict[str, float]]:
    """Warm rerun time per page (AppTest, the app's environment must point at the data)."""
    from streamlit.testing.v1 import AppTest

    from app.ui import state

    sid = _admin_session(engine)
    with engine.connect() as conn:
        player = conn.execute(sa.text("SELECT min(id) FROM players WHERE NOT is_test")).scalar()
    out = {}
    for name in PAGES:
        at = AppTest.from_file(str(PROJECT_ROOT / "pages" / f"{name}.py"), default_timeout=120)
        at.session_state[state.SESSION_KEY] = sid
        if name == "player_360":
            at.query_params["player"] = str(player)
        at.run()
        if at.exception:
            out[name] = {"error": str(at.exception[0].message)[:200]}
            continue
        samples = []
        for _ in range(reruns):
            started = time.perf_counter()
            at.run()
            samples.append(time.perf_counter() - started)
        out[name] = _stats_ms(samples)
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "app" / "main.py"), "--server.port",
           str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
           "--server.fileWatcherType", "none"]  # fmt: skip
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("streamlit did not start in 60 s")


async def _concurrent(base: str, sessions: int) -> list[float]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        login = await browser.new_context()
        page = await login.new_page()
        await page.goto(base)
        await page.locator("input[aria-label=Username]").fill("admin")
        await page.locator("input[type=password]").fill(staff.demo_password("admin"))
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("button", name="Sign out").wait_for(timeout=60_000)
        # Each tab is its own Streamlit session; tabs of one signed-in context share the HTTP cache like
        # returning users' browsers do (the load generator shares the server's 2 cores: no JS re-download).
        tabs = [await login.new_page() for _ in range(sessions)]

        async def load(pg) -> float | None:
            started = time.perf_counter()
            try:
                await pg.goto(f"{base}/overview", wait_until="commit", timeout=120_000)
                await pg.locator("[data-testid=stMetric]").first.wait_for(timeout=120_000)
                await pg.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
                await pg.wait_for_selector(IDLE, timeout=120_000)
            except Exception:  # a failed load is counted, not fatal
                return None
            return time.perf_counter() - started

        times = await asyncio.gather(*(load(t) for t in tabs))
        await browser.close()
        return list(times)


def concurrent_overview(env: dict[str, str], workdir: Path, sessions: int = 20) -> dict[str, Any]:
    """`sessions` browser sessions opening the Overview at the same time on a fresh server."""
    if not Path(CHROMIUM).exists():
        return {"skipped": f"{CHROMIUM} not installed"}
    proc, base = _start_server(env, workdir / "bench-streamlit.log")
    try:
        server = psutil.Process(proc.pid)
        cpu0 = server.cpu_times()
        loads = asyncio.run(_concurrent(base, sessions))
        cpu1 = server.cpu_times()
        server_cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    times = sorted(t for t in loads if t is not None)
    failed = len(loads) - len(times)
    if not times:
        return {"sessions": sessions, "failed": failed, "p50_s": float("inf"), "p95_s": float("inf"),
                "server_cpu_s": round(server_cpu, 2)}  # fmt: skip
    # a failed load counts as the slowest possible: p95 then reflects it
    ranked = times + [float("inf")] * failed
    p95 = ranked[min(len(ranked) - 1, round(0.95 * (len(ranked) - 1)))]
    return {"sessions": sessions, "failed": failed, "p50_s": round(statistics.median(ranked), 2),
            "p95_s": round(p95, 2), "max_s": round(times[-1], 2),
            "server_cpu_s": round(server_cpu, 2)}  # fmt: skip


def measure(*, url: str, warehouse: str | os.PathLike, reruns: int = 10, sessions: int = 20) -> dict[str, Any]:
    """Both page benchmarks on the database `url` and the served warehouse file `warehouse`."""
    warehouse = Path(warehouse)
    values = {"PITBOSS_ENV": "demo", "PITBOSS_DATABASE_URL": url, "PITBOSS_WAREHOUSE": str(warehouse)}
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    try:
        result: dict[str, Any] = {"pages": page_reruns(engine, reruns)}
        result["concurrent_overview"] = concurrent_overview(dict(os.environ), warehouse.parent, sessions)
    finally:
        engine.dispose()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
    return result

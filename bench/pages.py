"""Page benchmarks (wired into `make bench` by bench/run.py):

- warm rerun time of every page with Streamlit's AppTest (signed in as the demo admin; the first run fills the
  caches, then `reruns` reruns are timed) — target ≤ 300 ms (issue 15: at every scale up to large);
- `sessions` new sessions loading the Overview at once from a real server — target p95 ≤ 3.5 s — driven
  over Streamlit's WebSocket protocol after one real browser sign-in (`ws_sessions`); plus a lone Chromium
  tab (what rendering adds) and `sessions` Chromium tabs at once on the same machine (informational).
  Skipped (with a note) when /usr/bin/chromium is missing.

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
from app.services.staff import demo, signin
from app.settings import PROJECT_ROOT, get_settings, load_settings

# every page of the app (pages/*.py), signed in as the demo admin, who may open them all
PAGES = tuple(sorted(p.stem for p in (PROJECT_ROOT / "pages").glob("*.py") if not p.stem.startswith("_")))
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
    demo.ensure_demo_staff(engine, load_settings({"PITBOSS_ENV": "demo"}))
    with engine.connect() as conn:
        sid = conn.execute(sa.text("SELECT id FROM staff_users WHERE username = 'admin'")).scalar()
    return signin.open_session(engine, sid, client="bench").session_id


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


OVERVIEW_EXPECT = {"metric": 10, "plotly_chart": 5}  # a whole Overview: its KPI tiles and charts


async def _browser_cookie(browser, base: str) -> tuple[object, str]:
    """Sign in as the demo admin in a new context; (the context, its cookies as a Cookie header)."""
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(base, timeout=120_000)
    await page.locator("input[aria-label=Username]").wait_for(timeout=120_000)
    await page.wait_for_selector(IDLE, timeout=120_000)  # a rerun still under way would empty the form
    await page.locator("input[aria-label=Username]").fill("admin")
    await page.locator("input[type=password]").fill(demo.demo_password("admin"))
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("button", name="Sign out").wait_for(timeout=120_000)
    await page.wait_for_selector(IDLE, timeout=120_000)  # the Overview has run once: caches are warm
    await page.close()
    cookies = await context.cookies()
    return context, "; ".join(f"{c['name']}={c['value']}" for c in cookies)


async def _tab_load(context, base: str) -> float | None:
    """One new browser tab opening the Overview until its tiles and charts are drawn (None: it failed)."""
    tab = await context.new_page()
    started = time.perf_counter()
    try:
        await tab.goto(f"{base}/overview", wait_until="commit", timeout=120_000)
        await tab.locator("[data-testid=stMetric]").first.wait_for(timeout=120_000)
        await tab.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
        await tab.wait_for_selector(IDLE, timeout=120_000)
    except Exception:  # a failed load is counted, not fatal
        return None
    return time.perf_counter() - started


async def _concurrent(base: str, sessions: int) -> dict[str, Any]:
    """Protocol sessions at once (the target), then one browser tab alone, then `sessions` browser tabs at once."""
    from playwright.async_api import async_playwright

    from bench.ws_sessions import load_concurrently

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context, cookie = await _browser_cookie(browser, base)
        loads = await load_concurrently(base, cookie, "overview", sessions, OVERVIEW_EXPECT)
        protocol = [x.seconds if x is not None and x.complete else None for x in loads]
        single = [await _tab_load(context, base) for _ in range(3)]
        tabs = await asyncio.gather(*(_tab_load(context, base) for _ in range(sessions)))
        await browser.close()
    return {"protocol": protocol, "single_tab": single, "tabs": list(tabs)}


def _summary(samples: list[float | None]) -> dict[str, Any]:
    """p50/p95/max of load times; a failed load counts as the slowest possible."""
    times = sorted(t for t in samples if t is not None)
    failed = len(samples) - len(times)
    ranked = times + [float("inf")] * failed
    if not times:
        return {"n": len(samples), "failed": failed, "p50_s": float("inf"), "p95_s": float("inf")}
    p95 = ranked[min(len(ranked) - 1, round(0.95 * (len(ranked) - 1)))]
    return {"n": len(samples), "failed": failed, "p50_s": round(statistics.median(ranked), 2),
            "p95_s": round(p95, 2), "max_s": round(times[-1], 2)}  # fmt: skip


def concurrent_overview(env: dict[str, str], workdir: Path, sessions: int = 20) -> dict[str, Any]:
    """`sessions` new sessions opening the Overview at the same moment on a fresh server.

    The target is judged on sessions driven over Streamlit's WebSocket protocol (see `ws_sessions`): the
    time until the server has delivered each whole page. A lone browser tab gives the rendering time a
    user's own browser adds; `sessions` Chromium tabs at once are reported too, but they share the
    server's 2 cores and mostly measure Chromium."""
    if not Path(CHROMIUM).exists():
        return {"skipped": f"{CHROMIUM} not installed"}
    proc, base = _start_server(env, workdir / "bench-streamlit.log")
    try:
        server = psutil.Process(proc.pid)
        cpu0 = server.cpu_times()
        raw = asyncio.run(_concurrent(base, sessions))
        cpu1 = server.cpu_times()
        server_cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    protocol = _summary(raw["protocol"])
    return {
        "sessions": sessions,
        **protocol,  # the target's figures: p50_s, p95_s, failed
        "single_browser_tab": _summary(raw["single_tab"]),
        "browser_tabs_same_machine": _summary(raw["tabs"]),
        "server_cpu_s": round(server_cpu, 2),
    }


def measure(*, url: str, warehouse: str | os.PathLike, reruns: int = 20, sessions: int = 20) -> dict[str, Any]:
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

"""Concurrent Overview sessions over several app replicas behind one address (wired into `make bench` by
bench/run.py; docs/REPLICAS.md):

`python -m app serve --replicas 2` (two Streamlit processes and the proxy in front of them) on the bench data;
one real browser sign-in through the proxy; each replica's Overview warmed once (Streamlit's caches are per
process); then `sessions` (40) new sessions open the Overview at the same moment through the one address over
Streamlit's WebSocket protocol (`ws_sessions`), without the proxy's replica cookie, so the proxy spreads them
over the replicas. p50/p95 of the time until each whole page arrived (≥ 10 KPI tiles, ≥ 5 charts).

    measure(url=<postgres url>, warehouse=<served duckdb file>, sessions=40, replicas=2) -> dict
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa

from app.db import create_engine
from app.services.staff import demo
from app.settings import PROJECT_ROOT, load_settings
from bench.pages import CHROMIUM, CHROMIUM_ARGS, OVERVIEW_EXPECT, _browser_cookie, _free_port, _summary

AFFINITY_COOKIE = "pitboss_replica"  # the proxy's (app/commands/proxy.py): left out so sessions spread


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def _free_ports(n: int) -> int:
    """A port p with p … p + n - 1 free."""
    for _ in range(50):
        p = _free_port()
        try:
            for q in range(p + 1, p + n):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", q))
        except OSError:
            continue
        return p
    raise RuntimeError(f"no {n} consecutive free ports")


def _start_serve(env: dict[str, str], replicas: int, log: Path) -> tuple[subprocess.Popen, int, list[int]]:
    """`python -m app serve --replicas N` on free ports; (the process, the proxy's port, the replicas' ports)."""
    port, first = _free_port(), _free_ports(replicas)
    ports = [first + i for i in range(replicas)]
    cmd = [sys.executable, "-m", "app", "serve", "--replicas", str(replicas), "--port", str(port),
           "--address", "127.0.0.1", "--first-replica-port", str(first)]  # fmt: skip
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not all(_healthy(p) for p in (port, *ports)):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"serve did not come up: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)
    return proc, port, ports


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # serve stops its replicas
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def _burst(base: str, replica_bases: list[str], sessions: int) -> list[float | None]:
    from playwright.async_api import async_playwright

    from bench.ws_sessions import load_concurrently, load_page

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context, _ = await _browser_cookie(browser, base)
        cookies = await context.cookies()
        await browser.close()
    header = "; ".join(f"{c['name']}={c['value']}" for c in cookies if c["name"] != AFFINITY_COOKIE)
    for replica in replica_bases:  # every process's caches warm, as the single-server benchmark has them
        await load_page(replica, header, "overview", OVERVIEW_EXPECT)
    loads = await load_concurrently(base, header, "overview", sessions, OVERVIEW_EXPECT)
    return [x.seconds if x is not None and x.complete else None for x in loads]


def concurrent_overview_replicas(env: dict[str, str], workdir: Path, sessions: int = 40,
                                 replicas: int = 2) -> dict[str, Any]:  # fmt: skip
    """`sessions` new Overview sessions at once through the one address of `replicas` replicas."""
    if not Path(CHROMIUM).exists():
        return {"skipped": f"{CHROMIUM} not installed"}
    env = dict(env)
    if not env.get("PITBOSS_COOKIE_KEY"):  # serve refuses replicas without one shared key
        env["PITBOSS_COOKIE_KEY"] = secrets.token_urlsafe(48)
    proc, port, ports = _start_serve(env, replicas, workdir / "bench-replicas.log")
    try:
        procs = [c for c in psutil.Process(proc.pid).children(recursive=True) if "streamlit" in " ".join(c.cmdline())]
        cpu0 = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
        samples = asyncio.run(_burst(f"http://127.0.0.1:{port}", [f"http://127.0.0.1:{p}" for p in ports], sessions))
        cpu1 = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
    finally:
        _stop(proc)
    return {"sessions": sessions, "replicas": replicas, **_summary(samples), "server_cpu_s": round(cpu1 - cpu0, 2)}


def measure(*, url: str, warehouse: str | os.PathLike, sessions: int = 40, replicas: int = 2) -> dict[str, Any]:
    """The benchmark on the database `url` and the served warehouse file `warehouse`."""
    warehouse = Path(warehouse)
    env = {**os.environ, "PITBOSS_ENV": "demo", "PITBOSS_DATABASE_URL": url, "PITBOSS_WAREHOUSE": str(warehouse)}
    env.pop("STREAMLIT_SERVER_COOKIE_SECRET", None)
    engine = create_engine(url, poolclass=sa.pool.NullPool)
    try:
        demo.ensure_demo_staff(engine, load_settings({"PITBOSS_ENV": "demo"}))  # the admin signs in in a browser
    finally:
        engine.dispose()
    return concurrent_overview_replicas(env, warehouse.parent, sessions, replicas)

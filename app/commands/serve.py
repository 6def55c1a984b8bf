"""`python -m app serve [--replicas N] [--port P]`: the app, as one Streamlit process or N replicas behind one address.

With N ≥ 2 it starts N Streamlit processes on 127.0.0.1, ports `--first-replica-port` … (default P+1 …), and
the small reverse proxy of `app/commands/proxy.py` on `--address`:P in front of them (WebSockets included; a
replica that exits is started again). Every replica gets the same environment, so the same database, warehouse,
login-cookie key, audit key and Streamlit cookie secret. Sign-in sessions live in PostgreSQL, so any replica
serves any signed-in user, and a sign-out or a disabled account on one ends access on all at the next click.
Several hosts, TLS, nginx/haproxy instead of the built-in proxy: docs/REPLICAS.md.

No ingest loop, alert delivery or live activity is started here: run those once per deployment (`python -m
app ingest --every 60`, `python -m app alerts deliver --every 30`), never once per replica.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from app import db
from app.commands.proxy import ReplicaProxy
from app.settings import PROJECT_ROOT, SettingsError, get_settings

MAX_REPLICAS = 16
COOKIE_SECRET_ENV = "STREAMLIT_SERVER_COOKIE_SECRET"  # Streamlit's server.cookieSecret, as an environment value
SHARED_COOKIE_KEY = (
    "several replicas must share one login-cookie key: set PITBOSS_COOKIE_KEY (or cookie_key in "
    ".streamlit/secrets.toml) to at least 32 random bytes; `make demo` writes one"
)


class ServeError(RuntimeError):
    """The replicas cannot be served; the message says why."""


def streamlit_command(port: int, address: str | None = None) -> list[str]:
    """`streamlit run app/main.py` on `port` (and `address`, all interfaces when None)."""
    # No file watcher: a served app does not reload its code, and Streamlit would otherwise watch every
    # module file for every new session (most of a session's start-up cost under load).
    cmd = [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "app" / "main.py"),
           "--server.port", str(port), "--server.headless", "true", "--server.fileWatcherType", "none"]  # fmt: skip
    if address:
        cmd += ["--server.address", address]
    return cmd


def replica_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every replica runs with: the caller's, plus one Streamlit cookie secret for all of them
    (the one configured, else a random one for this run)."""
    env = dict(os.environ if environ is None else environ)
    if not env.get(COOKIE_SECRET_ENV):
        env[COOKIE_SECRET_ENV] = secrets.token_hex(32)
    return env


def check_replica_settings(replicas: int) -> None:
    """Refuse what would break several replicas: weak production secrets, or no shared cookie key."""
    if not 1 <= replicas <= MAX_REPLICAS:
        raise ServeError(f"--replicas must be between 1 and {MAX_REPLICAS}")
    settings = get_settings()
    settings.check_production()
    if replicas > 1 and settings.cookie_key_problem() is not None:
        # Without one, each process signs cookies with its own random key: a user signed in on one replica
        # would be a stranger to the others.
        raise ServeError(SHARED_COOKIE_KEY)


class Replicas:
    """N Streamlit processes on 127.0.0.1 (own process groups), started again when one exits."""

    def __init__(self, ports: list[int], env: Mapping[str, str], *, log_dir: Path | None = None) -> None:
        self.ports, self.env, self.log_dir = ports, dict(env), log_dir
        self.procs: list[subprocess.Popen | None] = [None] * len(ports)
        self._started = [0.0] * len(ports)

    def _start(self, i: int) -> None:
        cmd, log = streamlit_command(self.ports[i], "127.0.0.1"), None
        if self.log_dir is not None:  # else the replicas write to this process's output
            log = (self.log_dir / f"replica-{i}.log").open("ab")
        try:
            err = subprocess.STDOUT if log else None
            self.procs[i] = subprocess.Popen(
                cmd, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=err, start_new_session=True
            )
        finally:
            if log is not None:
                log.close()
        self._started[i] = time.monotonic()

    def start(self) -> None:
        for i in range(len(self.ports)):
            self._start(i)

    def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(range(len(self.ports)))
        while pending and time.monotonic() < deadline:
            for i in sorted(pending):
                proc = self.procs[i]
                if proc is not None and proc.poll() is not None:
                    raise ServeError(f"replica {i} (port {self.ports[i]}) exited with {proc.returncode}")
                url = f"http://127.0.0.1:{self.ports[i]}/_stcore/health"
                with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1):
                    pending.discard(i)
            if pending:
                time.sleep(0.3)
        if pending:
            raise ServeError(f"replicas {sorted(pending)} did not become healthy in {timeout:g}s")

    def restart_exited(self, min_interval: float = 5.0) -> list[int]:
        """Start again every replica that exited (at most once per `min_interval` each); their indexes."""
        restarted = []
        for i, proc in enumerate(self.procs):
            if proc is not None and proc.poll() is not None and time.monotonic() - self._started[i] >= min_interval:
                print(f"replica {i} (port {self.ports[i]}) exited with {proc.returncode}: starting it again",
                      file=sys.stderr)  # fmt: skip
                self._start(i)
                restarted.append(i)
        return restarted

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            if proc is None:
                continue
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


async def _proxy_until_stopped(replicas: Replicas, address: str | None, port: int) -> None:
    proxy = ReplicaProxy([("127.0.0.1", p) for p in replicas.ports])
    server = await proxy.start(address, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    shown = "localhost" if address in (None, "", "0.0.0.0", "::") else address
    print(f"Pitboss at http://{shown}:{port}  ({len(replicas.ports)} replicas on 127.0.0.1:"
          f"{','.join(map(str, replicas.ports))}; Ctrl+C stops them)", flush=True)  # fmt: skip
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            replicas.restart_exited()
    finally:
        server.close()
        await server.wait_closed()


def serve(replicas: int, port: int, *, address: str | None = None, first_replica_port: int | None = None,
          environ: Mapping[str, str] | None = None) -> int:  # fmt: skip
    """Serve the app (what `python -m app serve` and `python -m app demo --replicas N` run); the exit code."""
    check_replica_settings(replicas)
    db.database_url(get_settings())  # the embedded server, if that is the database: started once, here
    env = replica_env(environ)
    if replicas == 1:
        proc = subprocess.Popen(streamlit_command(port, address), env=env, cwd=PROJECT_ROOT)
        try:
            return proc.wait()
        except KeyboardInterrupt:  # Ctrl+C, or SIGTERM / SIGHUP (app.cli runs commands stopped like Ctrl+C)
            return 0
        finally:
            stop_processes([proc])
    first = first_replica_port or port + 1
    group = Replicas([first + i for i in range(replicas)], env)
    try:
        group.start()
        group.wait_healthy()
        asyncio.run(_proxy_until_stopped(group, address, port))
    except KeyboardInterrupt:  # stopped while starting too: still stop the replicas
        pass
    except OSError as exc:  # the one address cannot be listened on (in use, not ours)
        raise ServeError(f"cannot listen on {address or 'every interface'}, port {port}: {exc.strerror}") from exc
    finally:
        group.stop()
    return 0


def stop_processes(procs: list[subprocess.Popen], timeout: float = 10.0) -> None:
    """Terminate `procs`, wait up to `timeout` seconds for all of them, kill those still running."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _serve(args: argparse.Namespace) -> int:
    try:
        return serve(args.replicas, args.port, address=args.address, first_replica_port=args.first_replica_port)
    except (SettingsError, ServeError) as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the app: one Streamlit process, or N replicas behind one address")
    p.add_argument("--replicas", type=int, default=1, help=f"Streamlit processes (1–{MAX_REPLICAS}; default 1)")
    p.add_argument("--port", type=int, default=8501, help="the one address's port (default 8501)")
    p.add_argument("--address", default=None, help="the interface to listen on (default: all)")
    p.add_argument("--first-replica-port", type=int, default=None, metavar="PORT",
                   help="replicas listen on 127.0.0.1:PORT, PORT+1, … (default: --port + 1)")  # fmt: skip
    p.set_defaults(func=_serve)

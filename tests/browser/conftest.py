"""Browser-test fixtures: a real Pitboss server (Streamlit) on a free port, and Chromium pages.

Reuse them from any test module under tests/browser/:
- `app_server` (module scope): a fresh migrated database with two brands and the demo staff, and a
  Streamlit server on it. Start your own with `start_app_server(db_url, extra_env)` when a module needs
  data in the database before the server starts (see `seed_brands`).
- `browser` (session scope) and `page` (a new browser context per test): Debian Chromium.
- `login(page, server, username, password=None)`, `wait_idle(page)`, `goto(page, server, path)`.
Mark modules `pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db import create_engine
from app.services.staff import demo as staff
from app.settings import get_settings, load_settings
from tests.conftest import PROJECT_ROOT, create_database, drop_database
from tests.ports import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
FAILURES = PROJECT_ROOT / "test-artifacts" / "failures"  # the page as it was when a browser test failed
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"
RUNNING = "[data-testid=stApp][data-test-script-state=running]"
LOCKOUT_THRESHOLD = 3
LOCKOUT_SECONDS = 15  # long enough that a loaded CI machine still submits within the lock


@dataclass
class AppServer:
    """A running Pitboss server: `url` (no trailing slash), its database and the environment it runs with."""

    url: str
    db_url: str
    engine: sa.Engine
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None

    def scalar(self, sql: str, **params) -> object:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def rows(self, sql: str, **params) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]

    def execute(self, sql: str, **params) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""


def seed_brands(engine: sa.Engine) -> dict[str, int]:
    """Two brands (an EUR one first) when the database has none; returns code → id."""
    with engine.begin() as conn:
        if not conn.execute(sa.text("SELECT count(*) FROM operators")).scalar():
            for code, name, cur, jur in (("harbour", "Lucky Harbour", "EUR", "MT"), ("crown", "Crown", "GBP", "GB")):
                conn.execute(
                    sa.text(
                        "INSERT INTO operators (code, name, company, currency, jurisdiction, launched_at)"
                        " VALUES (:c, :n, :co, :cur, :j, :t)"
                    ),
                    {"c": code, "n": name, "co": f"{name} Ltd", "cur": cur, "j": jur,
                     "t": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)},
                )  # fmt: skip
        return {r.code: r.id for r in conn.execute(sa.text("SELECT id, code FROM operators"))}


@contextmanager
def start_app_server(db_url: str, extra_env: dict[str, str] | None = None, *, tmp: Path) -> Iterator[AppServer]:
    """Run `streamlit run app/main.py` on a free port against `db_url` until the block ends."""
    port = free_port()
    env = {
        **os.environ,
        "PITBOSS_ENV": "demo",
        "PITBOSS_DATABASE_URL": db_url,
        "PITBOSS_DATA_DIR": str(tmp),
        "PITBOSS_WAREHOUSE": str(tmp / "warehouse.duckdb"),
        "PITBOSS_COOKIE_KEY": secrets.token_urlsafe(48),
        "PITBOSS_LOCKOUT_THRESHOLD": str(LOCKOUT_THRESHOLD),
        "PITBOSS_LOCKOUT_SECONDS": str(LOCKOUT_SECONDS),
        **(extra_env or {}),
    }
    log_path = tmp / f"streamlit-{port}.log"
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "app" / "main.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    engine = create_engine(db_url)
    server = AppServer(url=f"http://127.0.0.1:{port}", db_url=db_url, engine=engine, env=env, log_path=log_path)
    try:
        _wait_healthy(proc, port, server)
        yield server
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        engine.dispose()


def _wait_healthy(proc: subprocess.Popen, port: int, server: AppServer, timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{server.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"streamlit did not become healthy in {timeout}s:\n{server.log()[-3000:]}")


@pytest.fixture(scope="module")
def app_db(pg_server_url: str, migrated_template: str) -> Iterator[str]:
    """A fresh migrated database for one test module, with two brands and the demo staff."""
    name = f"pb_b_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_server_url, name, template=migrated_template)
    engine = create_engine(url)
    seed_brands(engine)
    staff.ensure_demo_staff(engine, load_settings({"PITBOSS_ENV": "demo"}), rounds=4)
    engine.dispose()
    yield url
    drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def app_server(app_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """A Pitboss server on `app_db` (demo env, short lockout), started once per module."""
    with start_app_server(app_db, tmp=tmp_path_factory.mktemp("app")) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_context(browser):
    """A fresh browser context (no cookies) with Pitboss's viewport and a generous timeout (loaded CI machines)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(60_000)
    return context


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so a fixture can see whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(browser, request):
    """A page in a fresh browser context (no cookies); a screenshot of it is kept when the test fails."""
    context = new_context(browser)
    pg = context.new_page()
    yield pg
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        with contextlib.suppress(Exception):
            FAILURES.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(FAILURES / f"{request.node.name}.png"), full_page=True)
    context.close()


def wait_idle(page, times: int = 1, settle: float = 0.3) -> None:
    """Wait until the script has finished running (`times` times, with a short pause in between)."""
    for _ in range(times):
        time.sleep(settle)
        page.wait_for_selector(IDLE, timeout=60_000)


def wait_rerun(page, start_timeout: float = 5_000) -> None:
    """After an interaction: wait for the script run it triggers to start (if not missed) and to finish."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):  # the run was too quick to observe (or none was triggered)
        page.wait_for_selector(RUNNING, timeout=start_timeout)
    wait_idle(page)


def goto(page, server: AppServer, path: str = "") -> None:
    """Open a URL and wait for the first run and the cookie component's follow-up run."""
    page.goto(f"{server.url}/{path.lstrip('/')}")
    wait_rerun(page, 15_000)
    wait_idle(page)


def click(page, locator) -> None:
    """Click something that reruns the app and wait for that run to finish."""
    wait_idle(page, settle=0)
    locator.click()
    wait_rerun(page)
    wait_idle(page)


SUBMIT_PATIENCE_S = 10.0
ATTEMPT_SQL = (  # every password attempt leaves one audit row (refused, failed, signed in, or waiting for a code)
    "SELECT count(*) FROM audit_log WHERE actor_name = :u AND action IN ('auth.login', 'auth.password')"
    " AND coalesce(detail->>'step', '') <> 'second_factor'"
)


def submit_login(page, username: str, password: str, server: AppServer | None = None) -> None:
    """Fill the sign-in form and submit it. A click that lands while the cookie component's first rerun is
    still in flight can be dropped by the browser (the form is redrawn under it): the form then still shows
    the typed name and no outcome, and the click is repeated once, as a person would.

    A loaded machine can take many seconds to even start the submitted run, and a second click then is a second
    attempt (a sign-in waiting for its code counts each one, so a third locks it). With `server`, the click is
    repeated only when the server recorded no attempt (its audit row) in all that time; without, only a form
    unanswered for SUBMIT_PATIENCE_S is."""
    attempts = (lambda: server.scalar(ATTEMPT_SQL, u=username)) if server is not None else None
    before = attempts() if attempts else 0
    wait_idle(page, settle=0)
    page.locator("input[aria-label=Username]").fill(username)
    page.locator("input[type=password]").fill(password)
    click(page, page.get_by_role("button", name="Sign in"))
    form = page.get_by_role("button", name="Sign in", exact=True)
    name = page.locator("input[aria-label=Username]")
    outcome = page.locator("[data-testid=stAlert], [data-testid=stSidebar] button")

    def unanswered() -> bool:
        if attempts is not None and attempts() > before:
            return False  # the server has it: its answer is on the way
        return bool(form.count() and name.count() and not outcome.count() and name.input_value() == username)

    deadline = time.monotonic() + (3 * SUBMIT_PATIENCE_S if attempts else SUBMIT_PATIENCE_S)
    while unanswered() and time.monotonic() < deadline:
        time.sleep(0.25)
    wait_idle(page)
    if unanswered():
        click(page, form)


def login(page, server: AppServer, username: str, password: str | None = None) -> None:
    """Open the app, sign in (demo password by default) and wait until the user's pages are shown."""
    goto(page, server)
    submit_login(page, username, password or staff.demo_password(username), server)
    page.get_by_role("button", name="Sign out").wait_for(timeout=60_000)
    wait_idle(page)
    wait_for_login_cookie(page)  # a page opened next by URL is signed in only once the cookie is there


def wait_for_login_cookie(page, timeout: float = 30.0) -> None:
    """Wait until the browser holds the sign-in cookie (written by JavaScript in the page a moment after the
    run that signed in; a loaded CI machine can take seconds)."""
    name = get_settings().cookie_name
    deadline = time.monotonic() + timeout
    while not any(c["name"] == name for c in page.context.cookies()):
        assert time.monotonic() < deadline, f"the sign-in cookie {name!r} was never written"
        time.sleep(0.2)


def main_text(page) -> str:
    return page.locator("[data-testid=stMain]").inner_text()


def nav_links(page) -> list[str]:
    """The titles in the sidebar navigation."""
    texts = page.locator("[data-testid=stSidebarNav] a").all_inner_texts()
    return [t.strip().splitlines()[-1].strip() for t in texts if t.strip()]


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

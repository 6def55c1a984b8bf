"""Several app replicas (docs/REPLICAS.md), real processes: `python -m app serve --replicas 2` starts two
Streamlit replicas A and B (same database, cookie key and Streamlit cookie secret) and the proxy in front of
them. The replicas are also addressed directly (a browser sends a host's cookies to all its ports), so each
test knows which replica served which click."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest

from app.commands.proxy import AFFINITY_COOKIE
from app.db import create_engine
from tests.browser.conftest import (
    LOCKOUT_SECONDS,
    LOCKOUT_THRESHOLD,
    AppServer,
    click,
    free_port,
    goto,
    login,
    nav_links,
    new_context,
    wait_for_login_cookie,
    wait_idle,
    wait_rerun,
)
from tests.conftest import PROJECT_ROOT
from tests.ports import streamlit_healthy

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

SIGN_IN_FORM = "input[aria-label=Username]"
CSV = b"category,value,reason,brand,expires_at\nemail,replica-test@example.com,chargeback fraud,,\n"


@dataclass
class Deployment:
    proxy: AppServer  # the one address
    a: AppServer
    b: AppServer
    serve: subprocess.Popen

    def replica_pid(self, port: int) -> int:
        """The pid of the Streamlit replica listening on `port` (a child of the serve process)."""
        for child in psutil.Process(self.serve.pid).children(recursive=True):
            if str(port) in child.cmdline() and "streamlit" in " ".join(child.cmdline()):
                return child.pid
        raise LookupError(port)


def _two_free_ports() -> int:
    """A port p with p and p + 1 free."""
    for _ in range(50):
        p = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", p + 1))
            except OSError:
                continue
        return p
    raise RuntimeError("no two consecutive free ports")


@pytest.fixture(scope="module")
def deployment(app_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("replicas")
    port, first = free_port(), _two_free_ports()
    env = {
        **os.environ,
        "PITBOSS_ENV": "demo",
        "PITBOSS_DATABASE_URL": app_db,
        "PITBOSS_DATA_DIR": str(tmp),
        "PITBOSS_WAREHOUSE": str(tmp / "warehouse.duckdb"),
        "PITBOSS_COOKIE_KEY": secrets.token_urlsafe(48),
        "PITBOSS_LOCKOUT_THRESHOLD": str(LOCKOUT_THRESHOLD),
        "PITBOSS_LOCKOUT_SECONDS": str(LOCKOUT_SECONDS),
    }
    env.pop("STREAMLIT_SERVER_COOKIE_SECRET", None)  # serve gives both replicas one
    log_path = tmp / "serve.log"
    cmd = [sys.executable, "-m", "app", "serve", "--replicas", "2", "--port", str(port), "--address", "127.0.0.1",
           "--first-replica-port", str(first)]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    engine = create_engine(app_db)
    servers = [AppServer(f"http://127.0.0.1:{p}", app_db, engine, env, log_path) for p in (port, first, first + 1)]
    try:
        deadline = time.monotonic() + 120
        while not all(streamlit_healthy(p) for p in (port, first, first + 1)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not come up:\n{servers[0].log()[-3000:]}")
            time.sleep(0.5)
        yield Deployment(*servers, serve=proc)
    finally:
        children = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # serve stops its replicas (each in its own process group)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        _gone, alive = psutil.wait_procs(children, timeout=15)
        for child in alive:  # never leak a process, but a replica left running is a fault of serve
            child.kill()
        engine.dispose()
        assert not alive, "serve left replicas running"


def _live_sessions(server: AppServer, username: str) -> int:
    return server.scalar(
        "SELECT count(*) FROM staff_sessions s JOIN staff_users u ON u.id = s.staff_user_id"
        " WHERE u.username = :u AND s.ended_at IS NULL",
        u=username,
    )


def _signed_in(page) -> None:
    page.get_by_role("button", name="Sign out").wait_for()
    wait_idle(page)
    assert page.locator(SIGN_IN_FORM).count() == 0


def _login_page(page, notice: str) -> None:
    page.get_by_text(notice).wait_for()
    page.locator(SIGN_IN_FORM).wait_for()
    wait_idle(page)
    assert page.get_by_role("button", name="Sign out").count() == 0
    assert nav_links(page) == []


def _upload_on_blacklist(page, server: AppServer) -> None:
    goto(page, server, "blacklist")
    page.get_by_role("heading", name="Blacklist").wait_for()
    page.locator("[data-testid=stFileUploader] input[type=file]").set_input_files(
        {"name": "list.csv", "mimeType": "text/csv", "buffer": CSV}
    )
    wait_rerun(page, 15_000)
    page.get_by_text("Dry run:").wait_for()
    assert page.get_by_text("The file was not accepted").count() == 0


def test_signed_in_on_replica_a_is_signed_in_on_replica_b(deployment, page):
    login(page, deployment.a, "compliance")
    wait_for_login_cookie(page)  # written by the page's JavaScript, seconds late on a loaded machine
    cookies = {c["name"] for c in page.context.cookies()}
    assert {"pitboss_auth", "_streamlit_xsrf"} <= cookies  # XSRF protection is on, and its cookie shared
    tab_b = page.context.new_page()
    goto(tab_b, deployment.b, "overview")  # a new Streamlit session on the other process, from the cookie
    _signed_in(tab_b)
    assert "Blacklist" in nav_links(tab_b)
    assert _live_sessions(deployment.a, "compliance") == 1  # the same server-side session, not a new sign-in
    # An upload checks Streamlit's XSRF token: the token A issued is accepted by B.
    _upload_on_blacklist(tab_b, deployment.b)


def test_sign_out_on_b_ends_access_on_a_at_the_next_click(deployment, page):
    login(page, deployment.a, "manager")
    tab_b = page.context.new_page()
    goto(tab_b, deployment.b, "overview")
    _signed_in(tab_b)
    click(tab_b, tab_b.get_by_role("button", name="Sign out"))
    tab_b.get_by_text("You have signed out.").first.wait_for()
    # The tab on A still shows the app; its next click is checked against PostgreSQL.
    click(page, page.locator("[data-testid=stSidebarNav]").get_by_text("Games", exact=True))
    _login_page(page, "Your session has ended (logout)")
    ended = deployment.a.rows(
        "SELECT s.end_reason FROM staff_sessions s JOIN staff_users u ON u.id = s.staff_user_id"
        " WHERE u.username = 'manager'"
    )
    assert [r["end_reason"] for r in ended] == ["logout"]


def test_an_admin_disabling_a_user_on_a_ends_their_access_on_b(deployment, page):
    since = deployment.a.scalar("SELECT coalesce(max(seq), 0) FROM audit_log")
    login(page, deployment.b, "eu_support")
    assert "Players" in nav_links(page)
    admin = new_context(page.context.browser)
    try:
        apage = admin.new_page()
        login(apage, deployment.a, "admin")
        click(apage, apage.locator("[data-testid=stSidebarNav]").get_by_text("Staff", exact=True))
        apage.get_by_role("heading", name="Staff").wait_for()
        apage.get_by_role("tab", name="Disable / enable").click()
        panel = apage.locator("[data-testid=stTabs] [role=tabpanel]:visible")
        panel.locator("[data-testid=stSelectbox]").click()
        click(apage, apage.get_by_role("option", name="eu_support", exact=True))
        panel.get_by_label("Reason (required)").fill("moved to another team")
        click(apage, panel.get_by_role("button", name="Disable eu_support"))
        apage.get_by_text("eu_support disabled; 1 session(s) ended").wait_for()
    finally:
        admin.close()
    click(page, page.locator("[data-testid=stSidebarNav]").get_by_text("Player 360", exact=True))
    _login_page(page, "Your session has ended (user disabled)")
    audit = deployment.a.rows(
        "SELECT actor_name, outcome, reason FROM audit_log WHERE action = 'staff.disable' AND seq > :s", s=since
    )
    assert audit == [{"actor_name": "admin", "outcome": "ok", "reason": "moved to another team"}]
    assert deployment.a.scalar("SELECT disabled FROM staff_users WHERE username = 'eu_support'") is True


def _replica_cookie(page) -> int:
    return int(next(c["value"] for c in page.context.cookies() if c["name"] == AFFINITY_COOKIE))


def test_one_address_keeps_a_tab_on_its_replica_and_moves_it_when_that_replica_dies(deployment, page):
    login(page, deployment.proxy, "compliance")
    ports = [int(s.url.rsplit(":", 1)[1]) for s in (deployment.a, deployment.b)]
    home = _replica_cookie(page)
    # Uploads and downloads live in the memory of the process holding the tab: through the one address
    # they reach it every time.
    for _ in range(3):
        _upload_on_blacklist(page, deployment.proxy)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download a template").click()
    assert info.value.suggested_filename == "blacklist_template.csv"
    assert "category" in info.value.path().read_text()
    # The tab's replica dies: the same address keeps serving the same signed-in user from the other one.
    sessions = _live_sessions(deployment.a, "compliance")
    os.killpg(deployment.replica_pid(ports[home]), signal.SIGKILL)
    page.reload()
    wait_rerun(page, 15_000)
    _signed_in(page)
    assert _replica_cookie(page) == 1 - home
    assert _live_sessions(deployment.a, "compliance") == sessions  # no new sign-in was needed
    click(page, page.locator("[data-testid=stSidebarNav]").get_by_text("KYC queue", exact=True))
    page.get_by_role("heading", name="KYC queue").wait_for()
    # serve starts the dead replica again.
    deadline = time.monotonic() + 90
    while not streamlit_healthy(ports[home]):
        assert time.monotonic() < deadline, "the replica was not started again"
        time.sleep(0.5)

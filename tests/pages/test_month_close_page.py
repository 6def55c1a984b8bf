"""AppTest of the Month close page and of the Overview of a closed month, on a private copy of the tiny data (the
shared analytics data stays unclosed): finance closes a month through the form (audited), the month is no longer
offered, a late chargeback shows as a restatement, and the Overview keeps the closed figures with the restated one
marked on its tile."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from app.services.finance.writes import detect_restatements
from app.ui import state
from pipelines.ingest.run import run_ingest
from tests.pages.conftest import PAGES, TIMEOUT, AnalyticsEnv, served_tiny_env
from warehouse.gateway import Gateway

CROWN = 2
OCTOBER = {"period": "custom", "from": "2026-10-01", "to": "2026-10-31", "brand": "crown", "cur": "brand"}


@pytest.fixture(scope="module")
def env(pg_server_url: str, tiny_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnalyticsEnv]:
    with served_tiny_env(pg_server_url, tiny_template, tmp_path_factory.mktemp("month_close")) as served:
        yield served


def run(env: AnalyticsEnv, page: str, username: str, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{page}.py"), default_timeout=TIMEOUT)
    at.session_state[state.SESSION_KEY] = env.sign_in(username)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def _close_october(at: AppTest) -> AppTest:
    at.selectbox(key="mc_brand").set_value(CROWN).run()
    at.selectbox(key="mc_month").set_value(dt.date(2026, 10, 1)).run()
    return next(b for b in at.button if b.label.startswith("Close October 2026")).click().run()


def test_finance_closes_a_month_and_sees_its_restatements(env: AnalyticsEnv):
    at = _close_october(run(env, "month_close", "finance"))
    assert not at.exception and not at.error, [e.value for e in at.error]
    texts = [str(e.value) for kind in ("success", "error", "info", "warning", "markdown") for e in getattr(at, kind)]
    assert any("closed: NGR" in t for t in texts), texts
    # the message follows the UI conventions: money with separators and 2 decimals, a time to the minute
    closed = re.compile(
        r"October 2026 of .+ closed: NGR -?[\d,]+\.\d{2} GBP \(-?[\d,]+\.\d{2} EUR\), read from the warehouse "
        r"data as of \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\. "
    )
    assert any(closed.match(t) for t in texts), texts
    with env.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM month_closes WHERE operator_id = :b"), {"b": CROWN}).mappings().one()
        audit = conn.execute(sa.text("SELECT outcome, actor_name FROM audit_log WHERE action = 'month.close'")).all()
    assert row["month"] == dt.date(2026, 10, 1) and row["currency"] == "GBP"
    assert [tuple(a) for a in audit] == [("ok", "finance")]

    # October is no longer offered (a second close is refused by the service: tests/services/finance)
    at = run(env, "month_close", "finance")
    at.selectbox(key="mc_brand").set_value(CROWN).run()
    assert dt.date(2026, 10, 1) not in at.selectbox(key="mc_month").options
    # a late chargeback dated in October: detected after the next ingest, listed on the closed month
    with env.engine.begin() as conn:
        amount = conn.execute(
            sa.text(
                "UPDATE payments SET status = 'chargeback', charged_back_at = '2026-10-20 12:00+00', chargeback_fee = 0"
                " WHERE id = (SELECT y.id FROM payments y JOIN players p ON p.id = y.player_id AND NOT p.is_test"
                " WHERE p.operator_id = :b AND y.kind = 'deposit' AND y.status = 'approved'"
                " AND y.created_at < '2026-10-20' ORDER BY y.created_at DESC LIMIT 1) RETURNING amount"
            ),
            {"b": CROWN},
        ).scalar_one()
    run_ingest(env.url, env.warehouse).raise_for_status()
    assert detect_restatements(env.engine, Gateway(env.warehouse)).new
    at = run(env, "month_close", "finance")
    at.selectbox(key="mc_open").set_value(row["id"]).run()
    assert not at.exception
    lines = at.dataframe[-1].value
    assert "late chargeback dated in the closed month" in " ".join(lines["why"].astype(str))
    chargebacks = lines[(lines["figure"] == "chargebacks") & (lines["currency"] == "GBP")]
    assert Decimal(str(chargebacks["difference"].iloc[0])).quantize(Decimal("0.01")) == amount

    # the Overview of October for the brand: the closed figures, the restated one marked on its tile
    at = run(env, "overview", "manager", OCTOBER)
    assert not at.exception
    assert any("Closed month: the tiles show the figures as closed" in i.value for i in at.info)
    ngr = next(m for m in at.metric if m.label.startswith("NGR"))
    closed_ngr = Decimal(row["figures"]["metrics"]["ngr"]["brand"])
    assert ngr.value == f"{closed_ngr:,.2f}"
    assert any(c.value.startswith("restated −") for c in at.caption)  # NGR fell by the chargeback
    assert any(c.value.startswith("Chargebacks restated +") for c in at.caption)


def test_other_roles_cannot_open_the_page(env: AnalyticsEnv):
    for username in ("manager", "analyst", "compliance", "support"):
        at = run(env, "month_close", username)
        assert [e.value for e in at.error] == ["You do not have access to this page."], username

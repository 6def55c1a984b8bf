"""Closing a month on the generator's data: the closed figures never change after a late chargeback or a backdated
correction, the change shows as restatement lines, and every refusal is audited and changes nothing."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import duckdb
import pytest

from app.services.core import AlreadyDone, Denied, Invalid
from app.services.finance import reads, rules
from app.services.finance.writes import close_month, detect_restatements
from tests.services.finance.conftest import BRAND, MONTH, Books
from warehouse import api
from warehouse.gateway import Gateway

OCT_20 = dt.datetime(2026, 10, 20, 12, 0, tzinfo=dt.UTC)
OCT_15 = dt.datetime(2026, 10, 15, 9, 30, tzinfo=dt.UTC)


def _figures(books: Books) -> dict:
    return books.rows("SELECT * FROM month_closes WHERE operator_id = :b AND month = :m", b=BRAND, m=MONTH)[0]


def _live(books: Books, metric: str, currency: str = "brand") -> float:
    f = api.Filters(MONTH, rules.month_end(MONTH), frozenset({BRAND}), None, currency)
    return {r["metric"]: r["value"] for r in api.kpis(books.gw, f, scope=None).iter_rows(named=True)}[metric]


def test_a_closed_month_keeps_its_figures_and_late_changes_become_restatements(books: Books):
    done = close_month(books.engine, books.actors["finance"], books.gw, brand_id=BRAND, month="2026-10",
                       note="October sign-off", request_id="close-crown-2026-10")  # fmt: skip
    closed = _figures(books)
    doc = closed["figures"]
    assert closed["currency"] == "GBP" and closed["closed_by_name"] == "Fc_Finance" and closed["snapshot_id"]
    # every Overview figure of the brand-month, in GBP and in EUR, with its definition version
    for name in (*rules.COMPARED, "hold_pct", "arpu"):
        assert name in doc["metrics"], name
    ngr = doc["metrics"]["ngr"]
    assert ngr["version"] == "v2" and Decimal(ngr["brand"]) == Decimal(str(_live(books, "ngr")))
    assert Decimal(ngr["eur"]) == Decimal(str(_live(books, "ngr", "EUR")))
    assert doc["metrics"]["active_players"]["value"] == _live(books, "active_players") > 0
    [audit] = books.audit("month.close")
    assert audit["outcome"] == "ok" and audit["target_id"] == f"{BRAND}:2026-10" and audit["operator_id"] == BRAND
    assert audit["after"]["figures"]["ngr"] == ngr["brand"] and done.result["month_close_id"] == closed["id"]

    # late source changes dated in the closed month: a chargeback recorded now, a backdated losing bet
    chargeback = books.late_chargeback(OCT_20)
    books.backdated_bet(OCT_15, "40.00")
    books.ingest()
    assert _live(books, "chargebacks") > float(doc["metrics"]["chargebacks"]["brand"])  # the live figure moved…
    found = detect_restatements(books.engine, books.gw)
    assert _figures(books)["figures"] == doc  # …the closed one did not
    lines = {(r["metric"], r["currency"]): r for r in books.rows("SELECT * FROM restatements ORDER BY id")}
    cb = lines[("chargebacks", "GBP")]
    assert cb["difference"] == chargeback["amount"] and cb["closed_value"] == Decimal(
        doc["metrics"]["chargebacks"]["brand"]
    )
    assert "late chargeback dated in the closed month" in cb["reason"]
    assert ("chargebacks", "EUR") in lines and lines[("payment_fees", "GBP")]["difference"] == chargeback["fee"]
    handle = lines[("handle", "GBP")]
    assert handle["difference"] == Decimal("40.00") and "backdated correction" in handle["reason"]
    assert lines[("ggr", "GBP")]["difference"] == Decimal("40.00")
    net = lines[("ngr", "GBP")]
    assert net["current_value"] == Decimal(str(_live(books, "ngr"))) and net["difference"] != 0
    assert "late chargeback" in net["reason"] and "backdated correction" in net["reason"]
    assert {(x["metric"], x["currency"]) for x in found.new} == set(lines)
    assert all(r["snapshot_id"] and r["detected_at"] for r in lines.values())

    # detection again: nothing moved since, nothing new; the outstanding ones are still reported
    again = detect_restatements(books.engine, books.gw)
    assert again.new == [] and {(x["metric"], x["currency"]) for x in again.outstanding} >= {("chargebacks", "GBP")}
    assert books.scalar("SELECT count(*) FROM restatements") == len(lines)

    # the Overview of October 2026 for the brand shows the closed figures, restated ones say so
    f = api.Filters(MONTH, rules.month_end(MONTH), frozenset({BRAND}), None, "brand")
    view = reads.overview_closing(books.engine, f, scope=None)
    assert view is not None and view.mode == "closed"
    tiles = {r["metric"]: r["value"] for r in view.overlay(api.kpis(books.gw, f, scope=None)).iter_rows(named=True)}
    assert tiles["chargebacks"] == float(doc["metrics"]["chargebacks"]["brand"]) != _live(books, "chargebacks")
    assert any(line.startswith(f"Chargebacks restated +{chargeback['amount']:,.2f} GBP") for line in view.lines())
    # a range beyond the month is read live, under a banner naming the restatements
    wider = api.Filters(MONTH, dt.date(2026, 11, 15), frozenset({BRAND}), None, "brand")
    assert reads.overview_closing(books.engine, wider, scope=None).mode == "banner"

    # the database keeps it that way whoever asks: a closed month and its restatements are append-only
    with pytest.raises(Exception, match="append-only"):
        books.execute("UPDATE month_closes SET figures = '{}' WHERE id = :i", i=closed["id"])


def test_reconcile_reports_restatements_without_failing(books: Books, monkeypatch, capsys):
    from app import cli
    from app.settings import get_settings

    close_month(books.engine, books.actors["admin"], books.gw, brand_id=BRAND, month=MONTH, request_id="close-cli-1")
    books.late_chargeback(OCT_20)
    books.ingest()
    monkeypatch.setenv("PITBOSS_DATABASE_URL", books.url)
    monkeypatch.setenv("PITBOSS_WAREHOUSE", str(books.warehouse))
    monkeypatch.setenv("PITBOSS_DATA_DIR", str(books.warehouse.parent))
    get_settings.cache_clear()
    try:
        assert cli.main(["reconcile", "--json"]) == 0  # restatements alone do not fail reconcile
        report = json.loads(capsys.readouterr().out)
        assert report["ok"] is True and report["restatements"]["checked"] == 1
        assert {(x["metric"], x["currency"]) for x in report["restatements"]["new"]} >= {("chargebacks", "GBP")}
        assert cli.main(["reconcile"]) == 0
        text = capsys.readouterr().out
        assert "restatements of closed months" in text and "crown 2026-10 chargebacks GBP" in text
    finally:
        get_settings.cache_clear()


def _refused(books: Books, error, actor: str, **kw) -> dict:
    before = books.scalar("SELECT count(*) FROM month_closes")
    with pytest.raises(error) as caught:
        close_month(books.engine, books.actors[actor], books.gw, request_id=kw.pop("rid", None), **kw)
    assert books.scalar("SELECT count(*) FROM month_closes") == before  # nothing changed
    last = books.rows("SELECT * FROM audit_log WHERE action = 'month.close' ORDER BY seq DESC LIMIT 1")[0]
    assert last["outcome"] == ("denied" if error is Denied else "failed")
    assert last["detail"]["error"] == caught.value.message
    return {"message": caught.value.message, "audit": last}


def test_refusals_are_audited_and_change_nothing(books: Books):
    close_month(
        books.engine, books.actors["finance"], books.gw, brand_id=BRAND, month="2026-10", request_id="rid-oct-1"
    )
    twice = _refused(books, AlreadyDone, "admin", brand_id=BRAND, month="2026-10")
    assert "already closed" in twice["message"] and "Fc_Finance" in twice["message"]
    today = books.scalar("SELECT (now() AT TIME ZONE 'UTC')::date")
    current = _refused(books, Invalid, "finance", brand_id=BRAND, month=today.replace(day=1))
    assert "is the current month" in current["message"]
    future = _refused(books, Invalid, "finance", brand_id=BRAND, month=rules.next_month(today.replace(day=1)))
    assert "is a future month" in future["message"]
    assert "not a month" in _refused(books, Invalid, "finance", brand_id=BRAND, month="October")["message"]
    for role in ("manager", "analyst", "compliance", "support"):
        assert "may not close month" in _refused(books, Denied, role, brand_id=BRAND, month="2026-09")["message"]
    out = _refused(books, Denied, "finance_harbour", brand_id=BRAND, month="2026-09")
    assert "brand scope" in out["message"] and out["audit"]["operator_id"] == BRAND
    # the same request id with another payload is refused (not answered with the first close)
    assert (
        "different" in _refused(books, Invalid, "finance", brand_id=BRAND, month="2026-09", rid="rid-oct-1")["message"]
    )


def test_a_month_whose_reconciliation_fails_is_not_closed(books: Books):
    books.backdated_bet(dt.datetime(2026, 9, 12, tzinfo=dt.UTC), "25.00")  # in the source, not yet in the warehouse
    out = _refused(books, Invalid, "finance", brand_id=BRAND, month="2026-09")
    assert "does not reconcile" in out["message"] and "Handle (turnover): source" in out["message"]
    assert "python -m app ingest" in out["message"]
    books.ingest()
    assert close_month(books.engine, books.actors["finance"], books.gw, brand_id=BRAND, month="2026-09",
                       request_id="sep-after-ingest").result["month"] == "2026-09-01"  # fmt: skip


def test_a_month_the_warehouse_does_not_cover_is_not_closed(books: Books, tmp_path):
    stale = tmp_path / "stale.duckdb"
    stale.write_bytes(books.warehouse.read_bytes())
    con = duckdb.connect(str(stale))
    con.execute("UPDATE meta.snapshot SET source_as_of = TIMESTAMP '2026-10-31 23:00:00'")
    con.close()
    books.gw = Gateway(stale)
    out = _refused(books, Invalid, "finance", brand_id=BRAND, month="2026-10")
    assert "before October 2026 ended" in out["message"]
    books.gw = Gateway(tmp_path / "missing.duckdb")  # no warehouse at all: a clear refusal, not a crash
    assert (
        "the warehouse cannot be read"
        in _refused(books, Invalid, "finance", brand_id=BRAND, month="2026-10")["message"]
    )

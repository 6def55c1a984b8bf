"""The month-close rules without a database: months, stored figures, restatement detection and reasons, and what
the Overview shows for a closed month."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest

from app.services.core import Invalid
from app.services.finance import rules

D = dt.date


def _doc(ngr: str, ngr_eur: str, chargebacks: str = "0.00", active: int = 10, version: str = "v2") -> dict:
    money = {"unit": "money", "version": "v1", "label": "x"}
    return {
        "currency": "GBP",
        "metrics": {
            "ngr": {"unit": "money", "version": version, "label": "NGR", "brand": ngr, "eur": ngr_eur},
            "chargebacks": money | {"brand": chargebacks, "eur": chargebacks},
            "active_players": {"unit": "count", "version": "v1", "label": "Active players", "value": active},
            "hold_pct": {"unit": "ratio", "version": "v1", "label": "Hold %", "value": 0.05},
        },
    }


def test_months():
    assert rules.parse_month("2026-10") == D(2026, 10, 1) == rules.parse_month(D(2026, 10, 17))
    assert rules.parse_month("2026-10-31") == D(2026, 10, 1)
    for bad in ("October", "2026-13", "", None, "2026/10"):
        with pytest.raises(Invalid, match="not a month"):
            rules.parse_month(bad)
    assert rules.month_end(D(2028, 2, 1)) == D(2028, 2, 29) and rules.next_month(D(2026, 12, 1)) == D(2027, 1, 1)
    rules.refuse_unclosable(D(2026, 11, 1), D(2026, 12, 1))  # ended yesterday: fine
    with pytest.raises(Invalid, match="current month"):
        rules.refuse_unclosable(D(2026, 12, 1), D(2026, 12, 31))
    with pytest.raises(Invalid, match="future month"):
        rules.refuse_unclosable(D(2027, 1, 1), D(2026, 12, 31))
    rules.refuse_uncovered(D(2026, 10, 1), dt.datetime(2026, 11, 1))
    with pytest.raises(Invalid, match="before October 2026 ended"):
        rules.refuse_uncovered(D(2026, 10, 1), dt.datetime(2026, 10, 31, 23, 59))
    with pytest.raises(Invalid, match="no data"):
        rules.refuse_uncovered(D(2026, 10, 1), None)


def test_stored_figures_and_values():
    ngr = {"metric": "ngr", "label": "NGR", "unit": "money", "version": "v2", "currency": "GBP", "value": 10.5}
    ftds = {"metric": "ftds", "label": "FTDs", "unit": "count", "version": "v2", "currency": None, "value": 3.0}
    brand = [ngr, ftds]
    eur = [{**brand[0], "currency": "EUR", "value": 12.25}, brand[1]]
    doc = rules.figures_doc(brand, eur)
    assert doc == {
        "currency": "GBP",
        "metrics": {
            "ngr": {"label": "NGR", "unit": "money", "version": "v2", "brand": "10.50", "eur": "12.25"},
            "ftds": {"label": "FTDs", "unit": "count", "version": "v2", "value": 3},
        },
    }
    assert rules.values(doc) == {("ngr", "GBP"): Decimal("10.50"), ("ngr", "EUR"): Decimal("12.25"),
                                 ("ftds", None): Decimal("3.00")}  # fmt: skip


def test_reconcile_lines_name_the_figure_and_both_values():
    figures = {"handle": {"unit": "money", "brand": "100.00"}, "ftds": {"unit": "count", "value": 2}}
    doc = {"currency": "GBP", "metrics": figures}
    source = {"handle": Decimal("125.00"), "ftds": 2}
    assert rules.reconcile_lines(doc, source) == [
        "Handle (turnover): source 125.00 GBP, warehouse 100.00 GBP (difference -25.00)"
    ]


def test_changes_are_measured_from_the_last_known_value():
    closed = rules.values(_doc("100.00", "115.00", "0.00"))
    now = rules.values(_doc("50.00", "57.50", "50.00"))
    first = rules.changes(closed, {}, now)
    assert [(c.metric, c.currency, c.previous, c.current, c.difference) for c in first] == [
        ("chargebacks", "EUR", Decimal("0.00"), Decimal("50.00"), Decimal("50.00")),
        ("chargebacks", "GBP", Decimal("0.00"), Decimal("50.00"), Decimal("50.00")),
        ("ngr", "EUR", Decimal("115.00"), Decimal("57.50"), Decimal("-57.50")),
        ("ngr", "GBP", Decimal("100.00"), Decimal("50.00"), Decimal("-50.00")),
    ]
    known = {(c.metric, c.currency): c.current for c in first}
    assert rules.changes(closed, known, now) == []  # recorded once
    back = rules.changes(closed, known, closed)  # moved back: a new line, difference 0
    assert {c.difference for c in back} == {Decimal("0.00")}


def test_reasons():
    closed, current = _doc("100.00", "115.00"), _doc("50.00", "57.50", "50.00")
    change = rules.FigureChange("chargebacks", "GBP", Decimal("0"), Decimal("0"), Decimal("50.00"))
    causes = {"late_chargebacks": (1, Decimal("50.00")), "backdated_bets": (0, Decimal("0"))}
    why = rules.explain(change, causes, brand_currency="GBP", closed_doc=closed, current_doc=current,
                        brand_changed=True)  # fmt: skip
    assert why == "late chargeback dated in the closed month (1 recorded after the close, 50.00 GBP)"
    fx = rules.FigureChange("ngr", "EUR", Decimal("115"), Decimal("115"), Decimal("116"))
    assert rules.explain(fx, {}, brand_currency="GBP", closed_doc=closed, current_doc=closed,
                         brand_changed=False) == rules.FX_TEXT  # fmt: skip
    version = rules.explain(rules.FigureChange("ngr", "GBP", Decimal("1"), Decimal("1"), Decimal("2")), {},
                            brand_currency="GBP", closed_doc=closed, current_doc=_doc("2", "2", version="v3"),
                            brand_changed=True)  # fmt: skip
    assert version.startswith("the definition changed (ngr v2 → v3)")
    unknown = rules.FigureChange("active_players", None, Decimal("10"), Decimal("10"), Decimal("9"))
    assert rules.explain(unknown, {}, brand_currency="GBP", closed_doc=closed, current_doc=closed,
                         brand_changed=True) == rules.UNKNOWN_TEXT  # fmt: skip


def _closed(brand_id: int, month: dt.date, doc: dict, restated=None) -> rules.ClosedMonth:
    return rules.ClosedMonth(brand_id, f"B{brand_id}", month, dt.datetime(2026, 11, 2), "Fiona", doc, restated or {})


def test_the_overview_shows_a_closed_month_as_signed():
    oct1, oct31 = D(2026, 10, 1), D(2026, 10, 31)
    restated = {("ngr", "EUR"): (Decimal("-57.50"), "late chargeback dated in the closed month")}
    one, two = _closed(1, oct1, _doc("100.00", "115.00"), restated), _closed(2, oct1, _doc("10.00", "12.00"))
    assert rules.overview_mode(oct1, oct31, countries=False, brands=[1, 2], closes=[one, two]) == "closed"
    assert rules.overview_mode(oct1, oct31, countries=False, brands=[1, 2, 3], closes=[one, two]) == "banner"
    assert rules.overview_mode(oct1, oct31, countries=True, brands=[1], closes=[one]) == "banner"
    assert rules.overview_mode(oct1, D(2026, 10, 30), countries=False, brands=[2], closes=[two]) is None
    assert rules.overview_mode(oct1, oct31, countries=False, brands=[1], closes=[]) is None
    view = rules.OverviewClosing("closed", (one, two), "EUR")
    kpis = pl.DataFrame(
        {
            "metric": ["ngr", "active_players", "arpu", "ftd_conversion"],
            "value": [1.0, 5.0, 0.2, 0.3],
            "previous": [100.0, 10.0, 1.0, 0.1],
            "change": [None, None, None, None],
        },
        schema={"metric": pl.String, "value": pl.Float64, "previous": pl.Float64, "change": pl.Float64},
    )
    out = {r["metric"]: r for r in view.overlay(kpis).iter_rows(named=True)}
    assert out["ngr"]["value"] == 127.0 and out["ngr"]["change"] == pytest.approx(0.27)
    assert out["active_players"]["value"] == 20.0 and out["arpu"]["value"] == 6.35
    assert out["ftd_conversion"]["value"] == 0.3  # a cohort's conversion stays live
    assert view.restated() == {
        "ngr": (Decimal("-57.50"), ["B1 October 2026: late chargeback dated in the closed month"])
    }
    assert view.lines() == [
        "NGR restated −57.50 EUR since the close — B1 October 2026: late chargeback dated in the closed month"
    ]

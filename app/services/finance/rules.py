"""Month-end close, the pure rules: which months may be closed, what a close stores, when a later change is a
restatement and how it is explained, and how the Overview shows a closed month. No database.

What a finance team signs: a closed month's figures are the ones stored at the close (every Overview figure of the
brand-month, in the brand's currency and in EUR, each with its definition version) and they are never rewritten.
A later source change that would alter one of them (a chargeback dated in the month but recorded after the close,
a bet settled in the month but written later — a backdated correction —, a payment or bonus conversion of the month
changed afterwards, an earlier month's loss carried into this month's duty, a changed FX or duty rate, a new
version of a definition) becomes a restatement line: which figure, its closed and current value, the difference,
and why.

The Overview shows a closed month as signed: when its range is exactly one calendar month that every selected
brand has closed (and no country filter), the tiles show the closed figures and each figure restated since the
close says so on its tile ("restated +x": the current figure is the closed one plus x), with the reasons beneath.
Any other range that touches a closed month with restatements shows the live figures under a banner naming them.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

import polars as pl

from app.services.errors import Invalid
from warehouse import metrics

CENT = Decimal("0.01")
MAX_NOTE = 2000

# The figures compared for restatements: every additive money figure and count of the Overview. Ratios (hold %,
# ARPU, ARPPU) follow from them; FTD conversion is a cohort's conversion up to now and keeps moving by nature.
COMPARED = (
    "handle",
    "real_wins",
    "ggr",
    *metrics.NGR_DEDUCTIONS,
    "ngr",
    "deposits",
    "withdrawals",
    "net_deposits",
    "ftds",
    "ftds_charged_back",
    "active_players",
    "depositing_players",
    "registrations",
)
# The figures checked against the source before a close (the month's reconciliation), in the brand's currency.
RECONCILED = ("handle", "real_wins", "deposits", "withdrawals", "bonus_cost", "chargebacks", "registrations", "ftds")

# What can move each figure after the close (the causes `reads.causes_since` counts in the source).
_BETS = ("backdated_bets",)
_PAY = ("late_payments",)
_CARRY = ("backdated_bets", "earlier_bets")
METRIC_CAUSES: dict[str, tuple[str, ...]] = {
    "handle": _BETS,
    "real_wins": _BETS,
    "ggr": _BETS,
    "jackpot_contributions": _BETS,
    "active_players": _BETS,
    "provider_fees": _CARRY,
    "gaming_duty": _CARRY,
    "bonus_cost": ("late_bonuses",),
    "chargebacks": ("late_chargebacks",),
    "payment_fees": ("late_chargebacks", "late_payments"),
    "deposits": _PAY,
    "withdrawals": _PAY,
    "net_deposits": _PAY,
    "ftds": _PAY,
    "depositing_players": _PAY,
    "registrations": (),
    "ftds_charged_back": ("ftd_chargebacks",),
    "ngr": ("late_chargebacks", "backdated_bets", "earlier_bets", "late_payments", "late_bonuses"),
}
CAUSE_TEXT = {
    "late_chargebacks": "late chargeback dated in the closed month ({n} recorded after the close, {amount})",
    "backdated_bets": "backdated correction: {n} bet(s) settled in the closed month written after the close "
    "(GGR {amount})",
    "late_payments": "{n} payment(s) of the closed month recorded or changed after the close ({amount})",
    "late_bonuses": "{n} bonus conversion(s) dated in the closed month recorded after the close ({amount})",
    "ftd_chargebacks": "{n} FTD(s) of the month charged back after the close (this figure counts chargebacks up "
    "to now)",
    "earlier_bets": "{n} bet(s) of earlier months written after the close: the loss carried forward into this "
    "month changed",
}
RATE_TEXT = "a duty or game-provider fee rate for the month changed"
FX_TEXT = "the EUR rate of the month's days changed (fx_rates); the brand-currency figure is unchanged"
UNKNOWN_TEXT = (
    "source data of the closed month changed after the close (cause not identified: e.g. a deleted row or a "
    "changed test-account flag)"
)

Key = tuple[str, str | None]  # (metric, currency code; None for a count)


# --------------------------------------------------------------------------- months


def parse_month(value: object) -> dt.date:
    """A month as its first day, from a date or 'YYYY-MM' (or 'YYYY-MM-DD'); Invalid otherwise."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.replace(day=1)
    text = str(value or "").strip()
    try:
        if len(text) == 7:
            return dt.date.fromisoformat(f"{text}-01")
        return dt.date.fromisoformat(text).replace(day=1)
    except ValueError:
        raise Invalid(f"not a month: {text[:20]!r} (use YYYY-MM, e.g. 2026-10)") from None


def month_end(month: dt.date) -> dt.date:
    """The month's last day."""
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def next_month(month: dt.date) -> dt.date:
    return month_end(month) + dt.timedelta(days=1)


def month_label(month: dt.date) -> str:
    return f"{calendar.month_name[month.month]} {month.year}"


def refuse_unclosable(month: dt.date, today: dt.date) -> None:
    """Invalid for the current month or a later one: a month is closed only once it has ended (UTC)."""
    current = today.replace(day=1)
    if month == current:
        raise Invalid(
            f"{month_label(month)} is the current month: a month can be closed only after it has ended "
            f"(from {next_month(month)} UTC)"
        )
    if month > current:
        raise Invalid(f"{month_label(month)} is a future month: a month can be closed only after it has ended")


def refuse_uncovered(month: dt.date, data_as_of: dt.datetime | None) -> None:
    """Invalid when the served warehouse's data does not reach the month's end (ingest after the month ended)."""
    end = dt.datetime.combine(next_month(month), dt.time())
    seen = None if data_as_of is None else data_as_of.replace(tzinfo=None)
    if seen is None or seen < end:
        when = "no data" if seen is None else f"data up to {seen:%Y-%m-%d %H:%M} UTC"
        raise Invalid(
            f"the warehouse has {when}, before {month_label(month)} ended: run an ingest "
            "(python -m app ingest), then close the month"
        )


def clean_note(note: str | None) -> str | None:
    text = (note or "").strip()
    if len(text) > MAX_NOTE:
        raise Invalid(f"the note is too long ({len(text)} characters; at most {MAX_NOTE})")
    if "\x00" in text:
        raise Invalid("the note contains a NUL character")
    return text or None


# --------------------------------------------------------------------------- figures


def to_decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return None


def figures_doc(brand_rows: Iterable[Mapping[str, Any]], eur_rows: Iterable[Mapping[str, Any]]) -> dict:
    """The stored figures from the `kpis` rows of the month read in the brand's currency and in EUR:
    {"currency": code, "metrics": {name: {label, unit, version, brand, eur} (money) or {…, value}}}."""
    eur = {r["metric"]: r for r in eur_rows}
    out: dict[str, dict] = {}
    currency = None
    for r in brand_rows:
        entry: dict[str, Any] = {"label": r["label"], "unit": r["unit"], "version": r["version"]}
        if r["unit"] == "money":
            currency = currency or r["currency"]
            entry["brand"] = _jsonable(r["value"])
            entry["eur"] = _jsonable(eur[r["metric"]]["value"]) if r["metric"] in eur else None
        elif r["unit"] == "count":
            entry["value"] = None if r["value"] is None else int(r["value"])
        else:
            entry["value"] = r["value"]
        out[r["metric"]] = entry
    return {"currency": currency, "metrics": out}


def _jsonable(value: Any) -> str | None:
    d = to_decimal(value)
    return None if d is None else str(d)


def values(doc: Mapping[str, Any], only: Iterable[str] = COMPARED) -> dict[Key, Decimal]:
    """The compared figures of a stored (or current) figures doc, keyed (metric, currency code or None)."""
    code = doc.get("currency")
    found: dict[Key, Decimal] = {}
    for name in only:
        entry = doc.get("metrics", {}).get(name)
        if not entry:
            continue
        if entry.get("unit") == "money":
            for key, cur in (("brand", code), ("eur", "EUR")):
                v = to_decimal(entry.get(key))
                if v is not None and cur is not None:
                    found[(name, cur)] = v
        else:
            v = to_decimal(entry.get("value"))
            if v is not None:
                found[(name, None)] = v
    return found


def reconcile_lines(doc: Mapping[str, Any], source: Mapping[str, Any]) -> list[str]:
    """One line per figure of RECONCILED whose warehouse value (brand currency) differs from the source's."""
    wh = values(doc, RECONCILED)
    code = doc.get("currency")
    lines = []
    for name in RECONCILED:
        unit = metrics.BY_NAME[name].unit
        w = wh.get((name, code if unit == "money" else None), Decimal("0.00"))
        s = to_decimal(source.get(name)) or Decimal("0.00")
        if w != s:
            label = metrics.BY_NAME[name].label
            cur = f" {code}" if unit == "money" and code else ""
            lines.append(f"{label}: source {s}{cur}, warehouse {w}{cur} (difference {w - s:+})")
    return lines


@dataclass(frozen=True)
class FigureChange:
    """A compared figure whose current value differs from the last one known (the closed or last restated)."""

    metric: str
    currency: str | None
    closed: Decimal
    previous: Decimal
    current: Decimal

    @property
    def difference(self) -> Decimal:
        """Current − closed: the restatement to date."""
        return self.current - self.closed


def changes(closed: Mapping[Key, Decimal], known: Mapping[Key, Decimal], current: Mapping[Key, Decimal]):
    """The figures that changed since the last detection, in COMPARED order (a figure missing now: unchanged)."""
    out = []
    for key, closed_value in closed.items():
        previous = known.get(key, closed_value)
        now = current.get(key)
        if now is not None and now != previous:
            out.append(FigureChange(key[0], key[1], closed_value, previous, now))
    order = {name: i for i, name in enumerate(COMPARED)}
    return sorted(out, key=lambda c: (order.get(c.metric, 99), c.currency or ""))


def explain(
    change: FigureChange,
    causes: Mapping[str, tuple[int, Decimal]],
    *,
    brand_currency: str | None,
    closed_doc: Mapping[str, Any],
    current_doc: Mapping[str, Any],
    brand_changed: bool,
) -> str:
    """Why a closed figure moved: the definition's new version, the source changes found after the close that can
    move this figure, an FX rate (EUR only, the brand figure unchanged), a rate change (duty, provider fees)."""
    reasons = []
    before = closed_doc.get("metrics", {}).get(change.metric, {}).get("version")
    after = current_doc.get("metrics", {}).get(change.metric, {}).get("version")
    if before and after and before != after:
        reasons.append(f"the definition changed ({change.metric} {before} → {after})")
    if change.currency == "EUR" and change.currency != brand_currency and not brand_changed:
        reasons.append(FX_TEXT)
        return "; ".join(reasons)
    for cause in METRIC_CAUSES.get(change.metric, ()):
        n, amount = causes.get(cause, (0, Decimal("0")))
        if n:
            text = f"{to_decimal(amount)} {brand_currency}" if brand_currency else str(to_decimal(amount))
            reasons.append(CAUSE_TEXT[cause].format(n=n, amount=text))
    if not reasons and change.metric in ("gaming_duty", "provider_fees", "ngr"):
        reasons.append(RATE_TEXT)
    return "; ".join(reasons) or UNKNOWN_TEXT


def signed(value: Decimal | float, unit: str = "money") -> str:
    """A difference with its sign: +12.50, −3 (a count)."""
    d = Decimal(str(value))
    text = f"{abs(d):,.2f}" if unit == "money" else f"{abs(d):,.0f}"
    return f"{'−' if d < 0 else '+'}{text}"


# --------------------------------------------------------------------------- the Overview


@dataclass(frozen=True)
class ClosedMonth:
    """One brand's closed month as the Overview needs it: the stored figures and the restatements to date
    (per (metric, currency): the latest difference from the closed value and its reason)."""

    brand_id: int
    brand: str
    month: dt.date
    closed_at: dt.datetime
    closed_by: str
    figures: dict
    restated: dict[Key, tuple[Decimal, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class OverviewClosing:
    """How the Overview shows a range touching closed months: `closed` (the tiles show the closed figures, see the
    module docstring) or a banner only; `currency` is the code of the tiles' money figures."""

    mode: Literal["closed", "banner"]
    closes: tuple[ClosedMonth, ...]
    currency: str

    def _key(self, name: str, cm: ClosedMonth) -> Key:
        unit = metrics.BY_NAME[name].unit
        if unit != "money":
            return (name, None)
        return (name, "EUR" if self.currency == "EUR" else cm.figures.get("currency"))

    def closed_values(self) -> dict[str, Decimal]:
        """The compared figures as closed, summed over the brands (in the tiles' currency)."""
        out: dict[str, Decimal] = {}
        for name in COMPARED:
            total = Decimal("0.00")
            for cm in self.closes:
                total += values(cm.figures, (name,)).get(self._key(name, cm), Decimal("0.00"))
            out[name] = total
        return out

    def restated(self) -> dict[str, tuple[Decimal, list[str]]]:
        """Per figure restated since the close: the summed difference and the reasons (brand-prefixed)."""
        out: dict[str, tuple[Decimal, list[str]]] = {}
        for name in COMPARED:
            diff, why = Decimal("0.00"), []
            for cm in self.closes:
                hit = cm.restated.get(self._key(name, cm))
                if hit and hit[0] != 0:
                    diff += hit[0]
                    why.append(f"{cm.brand} {month_label(cm.month)}: {hit[1]}")
            if diff != 0 or why:
                out[name] = (diff, why)
        return out

    def lines(self) -> list[str]:
        """One line per restated figure: 'NGR restated −50.00 EUR since the close (reasons)'."""
        out = []
        for name, (diff, why) in self.restated().items():
            m = metrics.BY_NAME[name]
            cur = f" {self.currency}" if m.unit == "money" else ""
            out.append(f"{m.label} restated {signed(diff, m.unit)}{cur} since the close — {'; '.join(why)}")
        return out

    def overlay(self, kpis: pl.DataFrame) -> pl.DataFrame:
        """The `kpis` frame with the closed figures as `value` (ratios recomputed from them; FTD conversion stays
        live) and `change` against the (live) previous period."""
        closed = self.closed_values()
        ratio = {
            "hold_pct": _ratio(closed["ggr"], closed["handle"]),
            "arpu": _per(closed["ngr"], closed["active_players"]),
            "arppu": _per(closed["ngr"], closed["depositing_players"]),
        }
        rows = []
        for r in kpis.iter_rows(named=True):
            name = r["metric"]
            if name in closed:
                r = {**r, "value": float(closed[name])}
            elif name in ratio:
                r = {**r, "value": ratio[name]}
            else:
                rows.append(r)
                continue
            prev = r["previous"]
            r["change"] = None if prev in (None, 0) or r["value"] is None else (r["value"] - prev) / abs(prev)
            rows.append(r)
        return pl.DataFrame(rows, schema=kpis.schema)


def _ratio(num: Decimal, den: Decimal) -> float | None:
    return float(num / den) if den else None


def _per(num: Decimal, den: Decimal) -> float | None:
    return float((num / den).quantize(CENT, rounding=ROUND_HALF_UP)) if den else None


def overview_mode(
    start: dt.date, end: dt.date, *, countries: bool, brands: Iterable[int], closes: Iterable[ClosedMonth]
) -> Literal["closed", "banner"] | None:
    """`closed` when the range is exactly one calendar month every brand of the selection closed (no country
    filter); `banner` when it touches a closed month with a restatement; None otherwise."""
    closes = list(closes)
    if not closes:
        return None
    whole_month = start.day == 1 and end == month_end(start)
    closed_brands = {c.brand_id for c in closes if c.month == start}
    if whole_month and not countries and set(brands) and set(brands) <= closed_brands:
        return "closed"
    if any(any(d != 0 for d, _ in c.restated.values()) for c in closes):
        return "banner"
    return None

"""The shared filter bar of the analytics pages, kept in the URL so a link reproduces the view.

Date range (presets today / yesterday / last 7 / last 30 days / month to date / quarter to date / custom;
UTC days), brands (within the user's scope; none selected = every brand in scope), countries, and the
currency shown (EUR, or the brands' own currency when the selection has one currency).

Every value lives in `st.query_params` (`period`, `from`, `to`, `brand`, `country`, `cur` and page-specific
keys); a new tab opened on the URL starts from it. Within a session the values also follow the user from
page to page (kept in session state).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from app.ui import data
from auth.identity import Actor
from warehouse.api import Filters

PRESETS: dict[str, str] = {
    "today": "Today",
    "yesterday": "Yesterday",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "mtd": "Month to date",
    "qtd": "Quarter to date",
    "custom": "Custom range",
}
DEFAULT_PRESET = "30d"
CURRENCIES = ("EUR", "brand")
_PERSIST = "pitboss_filters"  # qp name → raw value, carried from page to page in this session
_W = "pf_"  # widget key prefix


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def preset_range(preset: str, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The inclusive UTC date range of a preset (ValueError for an unknown one or `custom`)."""
    t = today or today_utc()
    if preset == "today":
        return t, t
    if preset == "yesterday":
        y = t - dt.timedelta(days=1)
        return y, y
    if preset == "7d":
        return t - dt.timedelta(days=6), t
    if preset == "30d":
        return t - dt.timedelta(days=29), t
    if preset == "mtd":
        return t.replace(day=1), t
    if preset == "qtd":
        return dt.date(t.year, 3 * ((t.month - 1) // 3) + 1, 1), t
    raise ValueError(f"unknown date preset {preset!r}")


# --------------------------------------------------------------------------- URL-bound widget state


def _persisted() -> dict[str, str]:
    return st.session_state.setdefault(_PERSIST, {})


def _raw(qp: str) -> str | None:
    value = st.query_params.get(qp)
    return value if value not in (None, "") else _persisted().get(qp)


def bind(key: str, qp: str, default: Any, parse: Callable[[str], Any]) -> None:
    """Give widget `key` its first value from the URL (`qp`), else from this session, else `default`."""
    if key in st.session_state:
        return
    raw = _raw(qp)
    value = default
    if raw:
        try:
            value = parse(raw)
        except (ValueError, TypeError):
            value = default
    st.session_state[key] = value


def publish(qp: str, raw: str | None) -> None:
    """Write one value to the URL and to this session (None or '' removes it)."""
    if raw:
        _persisted()[qp] = raw
        if st.query_params.get(qp) != raw:
            st.query_params[qp] = raw
    else:
        _persisted().pop(qp, None)
        if qp in st.query_params:
            del st.query_params[qp]


def _split(raw: str) -> list[str]:
    return [part for part in (p.strip() for p in raw.split(",")) if part]


def _join(values: Sequence[Any]) -> str:
    return ",".join(str(v) for v in values)


# --------------------------------------------------------------------------- the selection


@dataclass(frozen=True)
class Selection:
    """What the filter bar selected; `filters()` is the warehouse API's Filters."""

    preset: str
    start: dt.date
    end: dt.date
    brands: frozenset[int] | None
    brand_codes: tuple[str, ...]
    countries: frozenset[str] | None
    currency: str  # "EUR" or "brand"
    currency_code: str  # what money is shown in

    def filters(self) -> Filters:
        return Filters(self.start, self.end, self.brands, self.countries, self.currency)  # type: ignore[arg-type]

    def period(self) -> str:
        label = PRESETS.get(self.preset, "Custom range")
        span = f"{self.start:%d %b %Y}" if self.start == self.end else f"{self.start:%d %b %Y} – {self.end:%d %b %Y}"
        return f"{label} ({span}, UTC)"

    def describe(self) -> str:
        brands = ", ".join(self.brand_codes) if self.brand_codes else "all brands"
        countries = ", ".join(sorted(self.countries)) if self.countries else "all countries"
        return f"{self.period()} · {brands} · {countries} · money in {self.currency_code}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "brands": list(self.brand_codes) or "all",
            "countries": sorted(self.countries) if self.countries else "all",
            "currency": self.currency_code,
        }


def _brand_options(actor: Actor) -> dict[str, dict]:
    brands = data.read("brands_list", scope=actor.brand_scope)
    return {row["code"]: row for row in brands.iter_rows(named=True)}


def brand_select(actor: Actor, column: Any = st) -> tuple[frozenset[int] | None, tuple[str, ...], list[dict]]:
    """Brand multiselect (URL `brand` = codes); returns (ids or None for all, codes, the chosen brand rows)."""
    options = _brand_options(actor)
    key = _W + "brand"
    bind(key, "brand", [], lambda raw: [c for c in _split(raw) if c in options])
    st.session_state[key] = [c for c in st.session_state[key] if c in options]
    chosen = column.multiselect(
        "Brands",
        list(options),
        key=key,
        format_func=lambda c: f"{options[c]['name']} ({options[c]['currency']})",
        placeholder="All brands" if actor.brand_scope is None else "All my brands",
    )
    publish("brand", _join(chosen))
    if not chosen:
        return None, (), list(options.values())
    return frozenset(int(options[c]["brand_id"]) for c in chosen), tuple(chosen), [options[c] for c in chosen]


def country_select(actor: Actor, column: Any = st) -> frozenset[str] | None:
    """Country multiselect (URL `country` = ISO codes); None = every country."""
    countries = data.read("countries_list", scope=actor.brand_scope)
    names = dict(zip(countries["country_code"].to_list(), countries["name"].to_list(), strict=True))
    key = _W + "country"
    bind(key, "country", [], lambda raw: [c for c in _split(raw.upper()) if c in names])
    st.session_state[key] = [c for c in st.session_state[key] if c in names]
    chosen = column.multiselect(
        "Countries", list(names), key=key, format_func=lambda c: f"{names[c]} ({c})", placeholder="All countries"
    )
    publish("country", _join(chosen))
    return frozenset(chosen) if chosen else None


def period_select(column: Any = st, *, key_prefix: str = "") -> tuple[str, dt.date, dt.date]:
    """Preset select plus a date range for `custom` (URL `period`, `from`, `to`)."""
    pkey, rkey = _W + key_prefix + "period", _W + key_prefix + "range"
    bind(pkey, key_prefix + "period", DEFAULT_PRESET, lambda raw: raw if raw in PRESETS else DEFAULT_PRESET)
    preset = column.selectbox("Period", list(PRESETS), key=pkey, format_func=PRESETS.get)
    if preset != "custom":
        start, end = preset_range(preset)
        publish(key_prefix + "period", preset if preset != DEFAULT_PRESET else None)
        publish(key_prefix + "from", None)
        publish(key_prefix + "to", None)
        st.session_state.pop(rkey, None)
        return preset, start, end
    initial = st.session_state.get(rkey)
    if initial is None:  # first render: from the URL (never written to session state: no duplicate default)
        initial = preset_range(DEFAULT_PRESET)
        try:
            start = dt.date.fromisoformat(_raw(key_prefix + "from") or "")
            end = dt.date.fromisoformat(_raw(key_prefix + "to") or "")
            if start <= end:
                initial = (start, end)
        except ValueError:
            pass
    picked = column.date_input(
        "From – to (UTC)", value=initial, key=rkey, max_value=today_utc() + dt.timedelta(days=1), format="YYYY-MM-DD"
    )
    dates = tuple(picked) if isinstance(picked, list | tuple) else (picked,)
    start = dates[0] if dates else today_utc()
    end = dates[1] if len(dates) > 1 else start
    publish(key_prefix + "period", "custom")
    publish(key_prefix + "from", start.isoformat())
    publish(key_prefix + "to", end.isoformat())
    return preset, start, end


def currency_select(chosen: list[dict], column: Any = st) -> tuple[str, str]:
    """EUR or the brand currency (only when the chosen brands share one); URL `cur`."""
    codes = sorted({b["currency"] for b in chosen})
    single = codes[0] if len(codes) == 1 else None
    key = _W + "currency"
    bind(key, "cur", "EUR", lambda raw: raw if raw in CURRENCIES else "EUR")
    label = {"EUR": "EUR (reporting)", "brand": f"Brand currency ({single})" if single else "Brand currency"}
    currency = column.selectbox(
        "Currency",
        CURRENCIES,
        key=key,
        format_func=label.get,
        help="Money is converted to EUR with the daily fx rate; brand currency needs brands with one currency.",
    )
    publish("cur", currency if currency != "EUR" else None)
    if currency == "brand" and single is None:
        column.caption(":orange[Pick brands with one currency — shown in EUR.]")
        return "EUR", "EUR"
    return currency, single if currency == "brand" else "EUR"


def render_filters(actor: Actor, *, countries: bool = True, currency: bool = True) -> Selection:
    """The filter bar (period, brands, countries, currency) above a page's content."""
    with st.container(border=True):
        cols = st.columns([1.5, 1.1, 2.2, 2.2, 1.6] if currency else [1.5, 1.1, 2.5, 2.5])
        preset, start, end = period_select(cols[0])
        partial = ", today so far" if end >= today_utc() else ""  # SPEC §3: today is partial
        cols[1].caption(f"**{start:%d %b %Y}** – **{end:%d %b %Y}**  \nUTC days, {(end - start).days + 1} d{partial}")
        brand_ids, codes, chosen = brand_select(actor, cols[2])
        country_ids = country_select(actor, cols[3]) if countries else None
        cur, code = currency_select(chosen, cols[4]) if currency else ("EUR", "EUR")
    return Selection(preset, start, end, brand_ids, codes, country_ids, cur, code)

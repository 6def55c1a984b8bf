"""The shared parts of the warehouse reads: the `Filters` of a page, the errors, the brand-scope and
selection conditions, the currency of money figures and the money/ratio helpers every read module uses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from warehouse.gateway import Gateway, GatewayError, in_list

Currency = Literal["EUR", "brand"]
CENT = Decimal("0.01")


class ScopeError(GatewayError):
    """The filters ask for brands outside the caller's scope."""


class FilterError(ValueError):
    """The filters are not usable; the message says what to change."""


@dataclass(frozen=True)
class Filters:
    """What a page asks for: an inclusive UTC date range, optional brand and country selections, and the
    currency of money figures ("EUR", or "brand" = the brands' own currency when the selection has one)."""

    start: dt.date
    end: dt.date
    brands: frozenset[int] | None = None
    countries: frozenset[str] | None = None
    currency: Currency = "EUR"

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise FilterError(f"the date range ends ({self.end}) before it starts ({self.start})")
        if (self.end - self.start).days > 3660:
            raise FilterError("the date range is longer than ten years")
        if self.currency not in ("EUR", "brand"):
            raise FilterError("currency must be 'EUR' or 'brand'")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Filters:
        """The period of equal length just before this one."""
        return replace(self, start=self.start - dt.timedelta(days=self.days), end=self.start - dt.timedelta(days=1))


def _money(expr: str) -> str:
    return f"CAST(round({expr}, 2) AS DOUBLE)"


def _money_cols(names: tuple[str, ...], expr: str, alias: str = "{n}") -> str:
    """`round(expr, 2) AS alias` for each name (expr and alias are templates on {n})."""
    return ", ".join(f"{_money(expr.format(n=n))} AS {alias.format(n=n)}" for n in names)


def _first_in_window(kind: str, start: str = "$start", also: str = "true") -> str:
    """Distinct players with an active (real-money bet) / deposit day in the window, as a filtered count over
    mart.player_day: each player is counted on their first qualifying day in the window (see the mart).
    `also`: a further condition on the row (e.g. the window's last day cut at a time of day)."""
    flag, prev = {"active": ("real_rounds", "prev_active_day"), "deposit": ("deposit_count", "prev_deposit_day")}[kind]
    return f"count(*) FILTER (WHERE {flag} > 0 AND ({prev} IS NULL OR {prev} < {start}) AND ({also}))"


def _brand_selection(brands: frozenset[int] | None, scope: frozenset[int] | None) -> list[int] | None:
    """The brand ids to filter on (None: every brand the scope allows); refuses brands outside scope."""
    if scope is not None and not isinstance(scope, frozenset):
        raise ScopeError("scope must be a frozenset of brand ids or None")
    if brands is None:
        return None
    if scope is not None and not brands <= scope:
        outside = ", ".join(str(b) for b in sorted(brands - scope))
        raise ScopeError(f"brand(s) {outside} are outside your brand scope")
    return sorted(int(b) for b in brands)


def _and_in(
    cond: str, params: dict[str, Any], column: str, name: str, values: frozenset[Any]
) -> tuple[str, dict[str, Any]]:
    sql, bound = in_list(column, name, sorted(values))
    return f"{cond} AND {sql}", params | bound


def _where(
    brands: frozenset[int] | None,
    countries: frozenset[str] | None,
    scope: frozenset[int] | None,
    *,
    prefix: str = "",
    country_col: str | None = "country_code",
) -> tuple[str, dict[str, Any]]:
    """SQL conditions (starting with AND) for the brand and country selections, and their parameters."""
    sql, params = "", {}
    selected = _brand_selection(brands, scope)
    if selected is not None:
        cond, values = in_list(f"{prefix}brand_id", "brands", selected)
        sql += f" AND {cond}"
        params |= values
    if countries is not None and country_col is not None:
        cond, values = in_list(f"{prefix}{country_col}", "countries", sorted(countries))
        sql += f" AND {cond}"
        params |= values
    return sql, params


def resolve_currency(gw: Gateway, f: Filters, *, scope: frozenset[int] | None) -> tuple[str, str]:
    """(column suffix, currency code) of money figures: ('_eur', 'EUR') or ('', the single brand currency)."""
    if f.currency == "EUR":
        return "_eur", "EUR"
    cond, params = _where(f.brands, None, scope, country_col=None)
    df = gw.query(f"SELECT DISTINCT currency FROM {{brands}} WHERE true {cond}", params, brands=scope)
    codes = df["currency"].to_list()
    if len(codes) != 1:
        raise FilterError(
            "brand currency needs a selection of brands with one currency "
            f"(this one has {', '.join(sorted(codes)) or 'none'}); choose EUR or a single brand"
        )
    return "", codes[0]


def _round(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _ratio(num: Decimal | int | None, den: Decimal | int | None) -> float | None:
    if num is None or not den:
        return None
    return float(Decimal(num) / Decimal(den))

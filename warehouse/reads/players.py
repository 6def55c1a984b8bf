"""Players reads: the filtered, searchable Players list and its streamed export (masking in the query itself)."""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import polars as pl

from warehouse.gateway import STREAM_MAX_ROWS, Gateway, Stream
from warehouse.reads.common import FilterError, _and_in, _money, _where


@dataclass(frozen=True)
class PlayerFilters:
    """Filters of the Players list (all optional)."""

    brands: frozenset[int] | None = None
    countries: frozenset[str] | None = None
    statuses: frozenset[str] | None = None
    kyc_statuses: frozenset[str] | None = None
    registered_from: dt.date | None = None
    registered_to: dt.date | None = None
    min_deposits_eur: float | None = None
    max_deposits_eur: float | None = None
    min_risk: int | None = None
    max_risk: int | None = None
    affiliate_ids: frozenset[int] | None = None
    include_test: bool = False


_MASKED_COLUMNS = ("email", "phone", "first_name", "last_name", "date_of_birth")


def _players_where(
    pf: PlayerFilters, scope: frozenset[int] | None, search: str | None, mask_personal: bool
) -> tuple[str, dict[str, Any]]:
    """The Players filters and search as SQL conditions (starting with AND) and their parameters."""
    cond, params = _where(pf.brands, pf.countries, scope)
    if pf.statuses is not None:
        cond, params = _and_in(cond, params, "account_status", "statuses", pf.statuses)
    if pf.kyc_statuses is not None:
        cond, params = _and_in(cond, params, "kyc_status", "kyc", pf.kyc_statuses)
    if pf.affiliate_ids is not None:
        cond, params = _and_in(cond, params, "affiliate_id", "affiliates", pf.affiliate_ids)
    for key, col, op in (
        ("registered_from", "reg_date", ">="),
        ("registered_to", "reg_date", "<="),
        ("min_deposits_eur", "lifetime_deposits_eur", ">="),
        ("max_deposits_eur", "lifetime_deposits_eur", "<="),
        ("min_risk", "risk_score", ">="),
        ("max_risk", "risk_score", "<="),
    ):
        value = getattr(pf, key)
        if value is not None:
            cond += f" AND {col} {op} ${key}"
            params[key] = value
    if not pf.include_test:
        cond += " AND NOT is_test"
    if search:
        text = search.strip().lower()
        if len(text) > 200:
            raise FilterError("the search text is longer than 200 characters")
        by_email = "" if mask_personal else " OR contains(lower(email), $q)"
        cond += f" AND (CAST(player_id AS VARCHAR) = $q OR contains(lower(username), $q){by_email})"
        params["q"] = text
    return cond, params


def _players_columns(mask_personal: bool) -> str:
    """The Players columns; with `mask_personal`, personal data masked in the query itself."""
    if mask_personal:
        personal = """
            regexp_replace(email, '^(.).*(@.*)$', '\\1***\\2') AS email,
            CASE WHEN phone IS NULL THEN NULL ELSE '***' || right(phone, 2) END AS phone,
            left(first_name, 1) || '***' AS first_name, left(last_name, 1) || '***' AS last_name,
            CAST(NULL AS DATE) AS date_of_birth"""
    else:
        personal = ", ".join(_MASKED_COLUMNS)
    return f"""player_id, brand_id, brand_code, currency, username, {personal}, country_code, registered_at,
           account_status, kyc_status, risk_score, affiliate_id, affiliate, channel, is_test,
           {_money("cash_balance")} AS cash_balance, {_money("bonus_balance")} AS bonus_balance,
           CAST(deposit_count AS BIGINT) AS deposit_count,
           {_money("lifetime_deposits")} AS lifetime_deposits,
           {_money("lifetime_deposits_eur")} AS lifetime_deposits_eur,
           {_money("lifetime_withdrawals")} AS lifetime_withdrawals,
           {_money("lifetime_withdrawals_eur")} AS lifetime_withdrawals_eur,
           {_money("lifetime_ngr")} AS lifetime_ngr, {_money("lifetime_ngr_eur")} AS lifetime_ngr_eur,
           ftd_at, last_bet_at, last_login_at, last_activity_at"""


def players_list(
    gw: Gateway,
    pf: PlayerFilters,
    *,
    scope: frozenset[int] | None,
    search: str | None = None,
    limit: int = 500,
    mask_personal: bool,
) -> pl.DataFrame:
    """Players matching the filters and the free-text search (id, username or email; case-insensitive
    substring; the text is data, never SQL), most recently registered first, at most `limit` rows.
    With `mask_personal`, personal data is masked in the query itself (it never leaves the warehouse) and
    the search matches the player id and the username only: a masked viewer probing e-mail substrings
    (or phone digits) would otherwise rebuild what the mask hides (SPEC §5)."""
    cond, params = _players_where(pf, scope, search, mask_personal)
    params["limit"] = int(limit)
    sql = f"""
    SELECT {_players_columns(mask_personal)}
    FROM {{players}}
    WHERE player_id IN (  -- pick the page of ids first: a top-N carrying every wide column is 5x slower
        SELECT player_id FROM {{players}} WHERE true {cond}
        ORDER BY registered_at DESC, player_id DESC LIMIT $limit
    )
    ORDER BY registered_at DESC, player_id DESC
    """
    return gw.query(sql, params, brands=scope, limit=limit)


def players_export(
    gw: Gateway,
    pf: PlayerFilters,
    *,
    scope: frozenset[int] | None,
    search: str | None = None,
    mask_personal: bool,
    columns: tuple[str, ...] | None = None,
    chunk_rows: int = 50_000,
    max_rows: int = STREAM_MAX_ROWS,
) -> AbstractContextManager[Stream]:
    """Every player matching the filters and the search (the whole set behind `players_list`, with the same
    masking and search rules), counted, then read in chunks through `Gateway.stream` (at most `max_rows`).
    `columns` picks and orders the columns (names of `players_list`'s columns). The rows come in player id
    order (the mart's storage order), so DuckDB streams them without sorting the whole set in memory."""
    cond, params = _players_where(pf, scope, search, mask_personal)
    inner = f"SELECT {_players_columns(mask_personal)} FROM {{players}} WHERE true {cond}"
    if columns is None:
        sql = inner
    else:
        bad = [c for c in columns if not c.isidentifier()]
        if bad or not columns:
            raise FilterError("unknown export columns")
        sql = f"SELECT {', '.join(columns)} FROM ({inner}) AS p"
    return gw.stream(sql, params, brands=scope, chunk_rows=chunk_rows, max_rows=max_rows)

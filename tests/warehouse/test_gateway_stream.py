"""Gateway.stream, the bounded whole-set read path of exports: counted first, chunked, brand scope and the
gateway's SQL rules as for `query`, an explicit row cap (refused before any row is read), a time budget."""

from __future__ import annotations

import polars as pl
import pytest

from warehouse import api
from warehouse import gateway as gateway_module
from warehouse.gateway import GatewayError, QueryTimeout, RowLimitExceeded


def test_a_stream_is_counted_then_read_in_chunks(gw):
    with gw.stream("SELECT * FROM {player_day} ORDER BY player_id, day", brands=None, chunk_rows=5) as s:
        assert s.rows == 16 and "brand_id" in s.columns
        chunks = list(s)
    assert [c.height for c in chunks] == [5, 5, 5, 1]
    whole = pl.concat(chunks)
    assert whole.equals(gw.query("SELECT * FROM {player_day} ORDER BY player_id, day", brands=None))
    with pytest.raises(GatewayError, match="only once"):
        list(s)


def test_a_stream_keeps_the_brand_scope(gw):
    sneaky = "SELECT * FROM {player_day} WHERE brand_id = 1 OR true"
    with gw.stream(sneaky, brands=frozenset({2}), chunk_rows=3) as s:
        rows = pl.concat(list(s))
    assert set(rows["brand_id"]) == {2} and s.rows == rows.height
    with pytest.raises(GatewayError, match="frozenset"):
        gw.stream("SELECT 1 AS x", brands={1}).__enter__()  # type: ignore[arg-type]


def test_a_stream_follows_the_gateway_sql_rules(gw):
    for sql in ("SELECT * FROM mart.players", "SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM {nope}"):
        with pytest.raises(GatewayError), gw.stream(sql, brands=None):
            pass
    with pytest.raises(GatewayError, match="reserved"), gw.stream("SELECT 1 AS x", {"__scope": [1]}, brands=None):
        pass
    hostile = "1); DROP TABLE mart.players; --"
    with gw.stream("SELECT * FROM {players} WHERE username = $u", {"u": hostile}, brands=None) as s:
        assert s.rows == 0 and list(s) == []


def test_the_row_cap_refuses_before_reading(gw, monkeypatch):
    with (
        pytest.raises(RowLimitExceeded, match="16 rows match; at most 3"),
        gw.stream("SELECT * FROM {player_day}", brands=None, max_rows=3),
    ):
        pass
    monkeypatch.setattr(gateway_module, "STREAM_MAX_ROWS", 10)  # the hard cap wins over a larger max_rows
    with (
        pytest.raises(RowLimitExceeded, match="at most 10"),
        gw.stream("SELECT * FROM range(20)", brands=None, max_rows=10**9),
    ):
        pass
    with gw.stream("SELECT * FROM range(10)", brands=None) as s:
        assert s.rows == 10
    assert gateway_module.DEFAULT_MAX_ROWS == 100_000  # the interactive limit is unchanged


def test_a_stream_has_a_time_budget(gw):
    slow = "SELECT a.range AS x FROM range(200000) a, range(200000) b WHERE a.range + b.range = -1"
    with pytest.raises(QueryTimeout), gw.stream(slow, brands=None, timeout_s=0.3):
        pass


def test_players_export_is_the_whole_filtered_set_masked_in_the_query(gw):
    pf = api.PlayerFilters(include_test=True)
    everyone = api.players_list(gw, pf, scope=None, mask_personal=False)
    with api.players_export(gw, pf, scope=None, mask_personal=True, chunk_rows=2) as s:
        masked = pl.concat(list(s))
    assert s.rows == masked.height == everyone.height
    assert all(e is None or "***@" in e for e in masked["email"])
    assert masked["date_of_birth"].null_count() == masked.height
    with api.players_export(gw, pf, scope=frozenset({2}), mask_personal=False, columns=("player_id", "email")) as s:
        scoped = pl.concat(list(s))
    assert scoped.columns == ["player_id", "email"]
    assert sorted(scoped["player_id"]) == sorted(everyone.filter(pl.col("brand_id") == 2)["player_id"])
    first = everyone["email"].drop_nulls()[0]
    with api.players_export(gw, pf, scope=None, search=first, mask_personal=True) as s:
        assert s.rows == 0  # a masked viewer cannot search by e-mail, in the export either
    with pytest.raises(api.FilterError), api.players_export(gw, pf, scope=None, mask_personal=True,
                                                            columns=("email; DROP",)):  # fmt: skip
        pass

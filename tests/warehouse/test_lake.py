"""DuckLake mode, the read side: `PITBOSS_WAREHOUSE=ducklake:…` parsing, and the gateway over a real lake
(catalog in the test PostgreSQL, Parquet files in a temp directory) — the same answers as the file, the brand
scope, the limits, snapshot pinning, and clear, credential-free errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from app.settings import SettingsError, load_settings
from pipelines.ingest.lake_publish import open_writer, publish_file
from tests.conftest import local_lake
from warehouse import api
from warehouse.gateway import (
    TABLES,
    Gateway,
    GatewayError,
    QueryTimeout,
    RowLimitExceeded,
    WarehouseUnavailable,
    WarehouseUnreachable,
)
from warehouse.lake import LakeConfig, LakeSettingError, parse_setting
from warehouse.lake_gateway import LakeGateway

FULL = api.Filters(dt.date(2026, 1, 1), dt.date(2026, 1, 4))
SECRET = "s3cr3t-Pa55 'word"
ESCAPED = SECRET.replace("'", "\\'")  # as a quoted libpq value


# --------------------------------------------------------------------------- settings


def test_setting_names_the_catalog_and_the_data_path(tmp_path):
    lake = parse_setting("ducklake:", {}, tmp_path)
    assert (lake.catalog_database, lake.catalog_dsn, lake.s3) == ("pitboss_lake", None, None)
    assert lake.data_path == str(tmp_path.resolve() / "lake") + "/"
    assert parse_setting("ducklake:analytics", {}, tmp_path).catalog_database == "analytics"
    on = parse_setting("ducklake:analytics", {}, tmp_path).on_server("host=/tmp/sock user=postgres dbname=pitboss")
    assert on.catalog_parts() == {"host": "/tmp/sock", "user": "postgres", "dbname": "analytics"}

    url = parse_setting("ducklake:postgresql://lake:pw%20x@db.internal:5433/cat", {}, tmp_path)
    assert url.catalog_parts() == {"user": "lake", "password": "pw x", "host": "db.internal", "port": "5433",
                                   "dbname": "cat"}  # fmt: skip
    dsn = parse_setting(f"ducklake:postgres:dbname=cat host=h password='{ESCAPED}'", {}, tmp_path)
    assert dsn.catalog_parts()["password"] == SECRET
    for shown in (repr(dsn), dsn.key, dsn.describe()):
        assert SECRET not in shown

    env = {
        "PITBOSS_LAKE_DATA_PATH": "s3://bucket/some/prefix",
        "PITBOSS_S3_ENDPOINT": "http://127.0.0.1:9000",
        "PITBOSS_S3_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "PITBOSS_S3_SECRET_ACCESS_KEY": SECRET,
    }
    s3 = parse_setting("ducklake:", env, tmp_path)
    assert s3.data_path == "s3://bucket/some/prefix/" and s3.bucket == "bucket"
    assert (s3.s3.endpoint, s3.s3.use_ssl, s3.s3.url_style, s3.s3.region) == (
        "127.0.0.1:9000",
        False,
        "path",
        "us-east-1",
    )
    assert SECRET not in repr(s3) and SECRET not in s3.describe()
    assert SECRET not in s3.scrub(f"failed with secret {SECRET} and SECRET '{SECRET}'")


@pytest.mark.parametrize(
    "setting, env",
    [
        ("ducklake:sqlite:/tmp/x.db", {}),
        ("ducklake:my lake", {}),
        ("ducklake:", {"PITBOSS_LAKE_DATA_PATH": "gs://bucket/x"}),
        ("ducklake:", {"PITBOSS_LAKE_DATA_PATH": "s3://"}),
        ("ducklake:", {"PITBOSS_LAKE_DATA_PATH": "s3://b/p", "PITBOSS_S3_URL_STYLE": "virtual"}),
    ],
)
def test_unusable_settings_are_refused_with_a_reason(tmp_path, setting, env):
    with pytest.raises(LakeSettingError):
        parse_setting(setting, env, tmp_path)
    with pytest.raises(SettingsError):
        load_settings({"PITBOSS_DATA_DIR": str(tmp_path), "PITBOSS_WAREHOUSE": setting, **env}, secrets_file=None)


def test_settings_in_lake_mode_keep_a_working_file_and_default_mode_is_unchanged(tmp_path):
    plain = load_settings({"PITBOSS_DATA_DIR": str(tmp_path)}, secrets_file=None)
    assert plain.lake is None and plain.warehouse_target() == tmp_path.resolve() / "warehouse.duckdb"
    lake = load_settings({"PITBOSS_DATA_DIR": str(tmp_path), "PITBOSS_WAREHOUSE": "ducklake:"}, secrets_file=None)
    assert lake.lake is not None and lake.lake.setting == "ducklake:"
    assert lake.warehouse_path == tmp_path.resolve() / "lake-ingest.duckdb"
    # an ingest started from System health stays in lake mode (not a plain file run on the working file)
    from app.services.health.writes import _child_env

    assert _child_env(lake)["PITBOSS_WAREHOUSE"] == "ducklake:"
    assert _child_env(plain)["PITBOSS_WAREHOUSE"] == str(plain.warehouse_path)


# --------------------------------------------------------------------------- a real lake


def publish(built: Path, lake: LakeConfig, run_id: str = "run") -> int:
    writer = open_writer(lake, "postgresql://unused")  # a resolved catalog needs no server URL
    try:
        return publish_file(writer, built, run_id, None)
    finally:
        writer.close()


@pytest.fixture
def lake(catalog, fixture_warehouse, tmp_path) -> LakeConfig:
    cfg = local_lake(catalog(), tmp_path / "lake")
    publish(fixture_warehouse, cfg)
    return cfg


def test_the_read_api_answers_the_same_over_the_lake(lake, gw):
    lgw = LakeGateway(lake)
    try:
        assert lgw.snapshot().snapshot_id == gw.snapshot().snapshot_id
        for scope in (None, frozenset({1}), frozenset({2})):
            f = FULL if scope is None else api.Filters(FULL.start, FULL.end, brands=scope, currency="brand")
            for read in (api.kpis, api.daily_trend, api.operators_table, api.top_games):
                assert_frame_equal(read(lgw, f, scope=scope), read(gw, f, scope=scope), check_exact=True)
    finally:
        lgw.close()


def test_the_brand_scope_holds_on_every_mart_of_the_lake(lake):
    lgw = LakeGateway(lake)
    try:
        for table in sorted(t for t, col in TABLES.items() if col):
            assert set(lgw.query(f"SELECT DISTINCT brand_id FROM {{{table}}}", brands=None)["brand_id"]) == {1, 2}
            scoped = lgw.query(f"SELECT DISTINCT brand_id FROM {{{table}}} WHERE brand_id = 1 OR true",
                               brands=frozenset({2}))  # fmt: skip
            assert set(scoped["brand_id"]) == {2}, table
    finally:
        lgw.close()


def test_limits_and_refusals_hold_on_the_lake(lake):
    lgw = LakeGateway(lake, max_rows=5)
    try:
        with pytest.raises(RowLimitExceeded):
            lgw.query("SELECT * FROM {calendar}", brands=None)
        with pytest.raises(QueryTimeout):
            lgw.query("SELECT sum(a.range * b.range) AS s FROM range(100000) a, range(100000) b", brands=None,
                      timeout_s=0.2)  # fmt: skip
        alias = lgw._current().alias
        for sql in (
            "SELECT * FROM mart.players",
            f"SELECT * FROM __ducklake_metadata_{alias}.ducklake_snapshot",
            f"SELECT * FROM {alias}.snapshots()",
            f"SELECT * FROM postgres_query('__ducklake_metadata_{alias}', 'SELECT 1')",
            "SELECT * FROM ducklake_snapshots('lake_probe')",
            "SELECT * FROM lake_probe.main.x",
            "SELECT * FROM glob('/etc/*')",
        ):
            with pytest.raises(GatewayError):
                lgw.query(sql, brands=None)
        # bound parameters, as with the file
        df = lgw.query("SELECT count(*) AS n FROM {players} WHERE brand_id = $b", {"b": 1}, brands=None)
        assert df["n"][0] > 0
    finally:
        lgw.close()


def test_a_new_snapshot_is_served_and_a_stream_stays_on_its_own(lake, warehouse_factory):
    lgw = LakeGateway(lake)
    try:
        key = lgw.snapshot_key()
        before = api.kpis(lgw, FULL, scope=None)
        assert before.filter(pl.col("metric") == "deposits")["value"][0] == 461.00
        with lgw.stream("SELECT * FROM {player_day}", brands=None, chunk_rows=2) as stream:
            counted = stream.rows
            extra = """
                INSERT INTO raw.payments VALUES (99, 1, 1, 'deposit', 9.00, 'EUR', 'card', 'c', 0, 'approved',
                                                 '2026-01-04 12:00', '2026-01-04 12:00', NULL, 0);
                INSERT INTO raw.players SELECT * REPLACE (999 AS id) FROM raw.players WHERE id = 1;
                UPDATE meta.snapshot SET snapshot_id = 'snap-2', built_at = '2026-01-06';
            """
            publish(warehouse_factory(extra), lake, "run-2")  # ingest commits meanwhile
            assert sum(chunk.height for chunk in stream) == counted  # the stream's own snapshot
        assert lgw.snapshot_key() != key
        assert lgw.snapshot().snapshot_id == "snap-2"
        after = api.kpis(lgw, FULL, scope=None)
        assert after.filter(pl.col("metric") == "deposits")["value"][0] == 470.00
    finally:
        lgw.close()


def test_a_lake_without_a_warehouse_or_catalog_is_unavailable_without_credentials(catalog, tmp_path):
    empty = local_lake(catalog(), tmp_path / "empty")
    with pytest.raises(WarehouseUnavailable, match="run `python -m app ingest`") as err:
        LakeGateway(empty).query("SELECT 1 AS x FROM {calendar}", brands=None)
    assert str(err.value).count("python -m app ingest") == 1, err.value  # said once (System health shows it)
    assert not isinstance(err.value, WarehouseUnreachable)  # the page says: no warehouse data yet

    unreachable = parse_setting(
        f"ducklake:postgres:host=127.0.0.1 port=1 dbname=cat user=lake password='{ESCAPED}' connect_timeout=3",
        {"PITBOSS_LAKE_DATA_PATH": str(tmp_path / "x")},
        tmp_path,
    )
    with pytest.raises(WarehouseUnreachable) as err:  # the page says: cannot be reached right now
        LakeGateway(unreachable).snapshot()
    message = str(err.value)
    assert "cannot be reached" in message and "127.0.0.1" in message
    assert "ingest" not in message  # an ingest cannot help: it would not reach the catalog either
    assert SECRET not in message and "Pa55" not in message


def test_the_file_gateway_is_untouched_by_lake_mode(fixture_warehouse):
    from warehouse.gateway import open_gateway

    assert type(open_gateway(fixture_warehouse)) is Gateway

import pytest

from app.settings import SettingsError, load_settings


def test_defaults_are_demo_with_embedded_server(tmp_path):
    s = load_settings({"PITBOSS_DATA_DIR": str(tmp_path)})
    assert s.env == "demo"
    assert s.database_url is None
    assert s.embedded_pg_dir == tmp_path / "pg"
    assert s.warehouse_path == tmp_path / "warehouse.duckdb"


def test_database_url_and_warehouse_from_environment(tmp_path):
    s = load_settings(
        {"PITBOSS_DATABASE_URL": "postgresql://u:p@db/x", "PITBOSS_WAREHOUSE": str(tmp_path / "w.duckdb")}
    )
    assert s.database_url == "postgresql://u:p@db/x"
    assert s.warehouse_path == tmp_path / "w.duckdb"


def test_unknown_environment_is_refused():
    with pytest.raises(SettingsError, match="PITBOSS_ENV"):
        load_settings({"PITBOSS_ENV": "staging"})


@pytest.mark.parametrize("key", [None, "short", "some_signature_key", "a" * 40])
def test_production_refuses_weak_cookie_keys(key):
    env = {"PITBOSS_ENV": "production"}
    if key:
        env["PITBOSS_COOKIE_KEY"] = key
    settings = load_settings(env, secrets_file=None)
    with pytest.raises(SettingsError, match="refuses to start"):
        settings.check_production()


def test_production_accepts_a_random_key():
    import secrets

    settings = load_settings({"PITBOSS_ENV": "production", "PITBOSS_COOKIE_KEY": secrets.token_urlsafe(48)})
    settings.check_production()

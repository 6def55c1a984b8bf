import pytest

from app.settings import DEMO_AUDIT_KEY, SettingsError, load_settings


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


@pytest.mark.parametrize(
    "value", ["duklake:pitboss_lake", "ducklak:postgresql://lake:Hunter2pw@h/db", "postgresql://u:Hunter2pw@h/db"]
)
def test_a_warehouse_that_starts_like_a_scheme_is_refused_not_taken_for_a_file(tmp_path, monkeypatch, value):
    monkeypatch.chdir(tmp_path)  # it would have become a DuckDB file here
    with pytest.raises(SettingsError, match="mistyped") as err:
        load_settings({"PITBOSS_DATA_DIR": str(tmp_path), "PITBOSS_WAREHOUSE": value}, secrets_file=None)
    assert "Hunter2pw" not in str(err.value) and "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())


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

    settings = load_settings(
        {
            "PITBOSS_ENV": "production",
            "PITBOSS_COOKIE_KEY": secrets.token_urlsafe(48),
            "PITBOSS_AUDIT_KEY": secrets.token_urlsafe(48),
        },
        secrets_file=None,
    )
    settings.check_production()
    assert settings.effective_audit_key() == settings.audit_key.encode()


@pytest.mark.parametrize("key", [None, "short", DEMO_AUDIT_KEY, "ab" * 20])
def test_production_refuses_a_missing_or_weak_audit_key(key):
    import secrets

    env = {"PITBOSS_ENV": "production", "PITBOSS_COOKIE_KEY": secrets.token_urlsafe(48)}
    if key:
        env["PITBOSS_AUDIT_KEY"] = key
    settings = load_settings(env, secrets_file=None)
    with pytest.raises(SettingsError, match="audit key|PITBOSS_AUDIT_KEY"):
        settings.check_production()
    with pytest.raises(SettingsError, match="refuses to write or verify the audit log"):
        settings.effective_audit_key()  # never written or checked with a weak key, even if started anyway


def test_audit_key_from_secrets_file_and_demo_fallback(tmp_path):
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text('audit_key = "from-the-secrets-file-0123456789abcdef"\n')
    assert load_settings({}, secrets_file=secrets_file).audit_key == "from-the-secrets-file-0123456789abcdef"
    assert load_settings(
        {"PITBOSS_AUDIT_KEY": "env-wins-0123456789abcdefghijklmnop"}, secrets_file=secrets_file
    ).audit_key == ("env-wins-0123456789abcdefghijklmnop")
    demo = load_settings({}, secrets_file=None)
    assert demo.audit_key is None and demo.effective_audit_key() == DEMO_AUDIT_KEY.encode()

"""Tracking configurations and postback actions through the audited service layer."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from app.services.core import Denied, Invalid, Stale
from app.services.tracking import reads as reads
from app.services.tracking import worker as worker
from app.services.tracking import writes as tracking
from app.services.tracking.rules import TrackingValidationError, fingerprint, mask, validate
from tests.services.tracking.trk_helpers import add_player, add_postback, add_staff, seed_basics

TOKEN = "EAABsbCS1iHgBAKZCZ" + "q" * 20 + "Wx9z"
META = {"pixel_id": "123456789012", "access_token": TOKEN}


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        ids = seed_basics(conn)
        ids["admin"] = add_staff(conn, "admin1", ["admin"])
        ids["manager"] = add_staff(conn, "mgr1", ["manager"], [ids["harbour"]])
        ids["analyst"] = add_staff(conn, "ana1", ["analyst"])
    return ids


def _audit(engine, action):
    with engine.connect() as conn:
        return (
            conn.execute(sa.text("SELECT * FROM audit_log WHERE action = :a ORDER BY seq"), {"a": action})
            .mappings()
            .all()
        )


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("platform", "values", "bad"),
    [
        ("meta", {"pixel_id": "12ab", "access_token": TOKEN}, "pixel_id"),
        ("meta", {"pixel_id": "123456789"}, "access_token"),
        (
            "google_ads",
            {
                "customer_id": "123-456-789",
                "conversion_action_id": "1",
                "developer_token": "d" * 20,
                "oauth_client_secret": "s" * 20,
            },
            "customer_id",
        ),
        ("tiktok", {"pixel_code": "lower_case_x", "access_token": TOKEN}, "pixel_code"),
        ("appsflyer", {"app_id": "123", "dev_key": "k" * 20}, "app_id"),
    ],
)
def test_validation_names_the_bad_field(platform, values, bad):
    with pytest.raises(TrackingValidationError) as err:
        validate(platform, "x", values)
    assert bad in err.value.errors and set(err.value.errors) == {bad}


def test_validation_accepts_each_platform_and_splits_secrets():
    name, settings, secrets = validate(
        "google_ads",
        " Google main ",
        {
            "customer_id": "123-456-7890",
            "conversion_action_id": "987",
            "developer_token": "d" * 22,
            "oauth_client_secret": "s" * 24,
        },
    )
    assert name == "Google main" and settings == {"customer_id": "1234567890", "conversion_action_id": "987"}
    assert set(secrets) == {"developer_token", "oauth_client_secret"}
    assert validate("appsflyer", "af", {"app_id": "id123456789", "dev_key": "k" * 20})[1] == {"app_id": "id123456789"}
    assert validate("tiktok", "tt", {"pixel_code": "C4ABCDEF123456", "access_token": TOKEN})[2] == {
        "access_token": TOKEN
    }
    assert mask(TOKEN) == "••••Wx9z" and mask("abc") == "••••"


# --------------------------------------------------------------------------- tracking configs


def test_add_config_masks_secret_and_audits_only_a_fingerprint(engine, world, caplog):
    caplog.set_level("DEBUG")
    res = tracking.add_config(engine, world["admin"], platform="meta", name="Meta main", values=META)
    configs = reads.list_configs(engine, world["admin"])
    assert [c["name"] for c in configs] == ["Meta main"]
    assert configs[0]["secrets_masked"] == {"access_token": "••••Wx9z"}
    assert configs[0]["settings"] == {"pixel_id": "123456789012"}
    (row,) = _audit(engine, "tracking.add")
    assert row["outcome"] == "ok" and row["target_id"] == str(res.result["id"])
    assert row["after"]["secret_fingerprint"] == fingerprint(json.dumps({"access_token": TOKEN}, sort_keys=True))
    with engine.connect() as conn:
        dump = json.dumps([dict(r) for r in conn.execute(sa.text("SELECT * FROM audit_log")).mappings()], default=str)
    assert TOKEN not in dump and TOKEN[-12:] not in dump
    assert TOKEN not in caplog.text


def test_invalid_config_changes_nothing_and_is_audited_as_failed(engine, world):
    with pytest.raises(Invalid) as err:
        tracking.add_config(engine, world["admin"], platform="meta", name="", values={"pixel_id": "x"})
    assert "name" in err.value.detail["errors"] and "access_token" in err.value.detail["errors"]
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM tracking_configs")) == 0
    assert [r["outcome"] for r in _audit(engine, "tracking.add")] == ["failed"]


def test_permissions_and_brand_scope(engine, world):
    with pytest.raises(Denied):
        tracking.add_config(engine, world["analyst"], platform="meta", name="m", values=META)
    with pytest.raises(Denied):  # manager scoped to harbour cannot create an all-brand config
        tracking.add_config(engine, world["manager"], platform="meta", name="m", values=META)
    res = tracking.add_config(
        engine, world["manager"], platform="meta", name="m", values=META, operator_id=world["harbour"]
    )
    assert res.result["id"]
    with pytest.raises(Denied):
        tracking.add_config(
            engine, world["manager"], platform="meta", name="m2", values=META, operator_id=world["crown"]
        )
    assert [r["outcome"] for r in _audit(engine, "tracking.add")] == ["denied", "denied", "ok", "denied"]


def test_edit_keeps_secret_when_blank_and_refuses_stale_forms(engine, world):
    cid = tracking.add_config(engine, world["admin"], platform="meta", name="Meta", values=META).result["id"]
    res = tracking.edit_config(
        engine,
        world["admin"],
        config_id=cid,
        name="Meta EU",
        values={"pixel_id": "999999999", "access_token": ""},
        expected_version=1,
    )
    (cfg,) = reads.list_configs(engine, world["admin"])
    assert cfg["name"] == "Meta EU" and cfg["secrets_masked"] == {"access_token": "••••Wx9z"}
    assert res.result["version"] == 2
    with pytest.raises(Stale):
        tracking.set_enabled(engine, world["admin"], config_id=cid, enabled=False, expected_version=1)
    tracking.set_enabled(engine, world["admin"], config_id=cid, enabled=False, expected_version=2)
    assert reads.list_configs(engine, world["admin"])[0]["enabled"] is False
    (row,) = [r for r in _audit(engine, "tracking.disable") if r["outcome"] == "ok"]
    assert row["before"]["enabled"] is True and row["after"]["enabled"] is False


# --------------------------------------------------------------------------- postbacks


def test_list_filters_and_brand_scope(engine, world):
    with engine.begin() as conn:
        ph = add_player(conn, world["harbour"], "p1")
        pc = add_player(conn, world["crown"], "p2")
        add_postback(conn, ph, world["harbour"], "h-reg", "http://x/1", affiliate_id=world["affiliate"])
        add_postback(conn, ph, world["harbour"], "h-ftd", "http://x/2", event_type="ftd", status="delivered")
        add_postback(conn, pc, world["crown"], "c-reg", "http://x/3", created_at="2025-01-01")
    admin, manager = world["admin"], world["manager"]
    assert set(reads.list_postbacks(engine, admin)["event_id"]) == {"h-reg", "h-ftd", "c-reg"}
    assert set(reads.list_postbacks(engine, manager)["event_id"]) == {"h-reg", "h-ftd"}
    flt = reads.PostbackFilter
    assert reads.list_postbacks(engine, admin, flt(event_type="ftd"))["event_id"].to_list() == ["h-ftd"]
    assert reads.list_postbacks(engine, admin, flt(status="pending", affiliate_id=world["affiliate"]))[
        "event_id"
    ].to_list() == ["h-reg"]
    old = reads.list_postbacks(engine, admin, flt(date_from=dt.date(2024, 12, 31), date_to=dt.date(2025, 1, 1)))
    assert old["event_id"].to_list() == ["c-reg"]
    assert reads.list_postbacks(engine, admin, flt(search="h-"))["event_id"].len() == 2
    with pytest.raises(Invalid):
        reads.list_postbacks(engine, admin, flt(status="bogus"))
    assert reads.status_counts(engine, manager)["delivered"] == 1


def test_retry_now_and_replay_are_audited_and_resend(engine, world, partner):
    with engine.begin() as conn:
        p = add_player(conn, world["harbour"], "p1")
        bad = add_postback(conn, p, world["harbour"], "ev-bad", partner.url("/bad"))
        ok = add_postback(conn, p, world["harbour"], "ev-ok", partner.url("/ok"))
    worker.run_until_idle(engine, timeout=2)
    assert partner.hits == {"ev-bad": 1, "ev-ok": 1}
    with pytest.raises(Denied):
        tracking.replay(engine, world["analyst"], postback_id=ok)
    res = tracking.replay(engine, world["manager"], postback_id=ok, reason="partner lost it")
    assert res.message == "queued for replay"
    tracking.retry_now(engine, world["admin"], postback_id=bad)
    worker.run_until_idle(engine, timeout=2)
    assert partner.hits == {"ev-bad": 2, "ev-ok": 2}
    (replayed,) = [r for r in _audit(engine, "postback.replay") if r["outcome"] == "ok"]
    assert replayed["before"]["status"] == "delivered" and replayed["after"]["status"] == "pending"
    assert replayed["after"]["attempts"] == 0 and replayed["reason"] == "partner lost it"
    assert [r["outcome"] for r in _audit(engine, "postback.retry_now")] == ["ok"]
    with pytest.raises(Exception, match="use replay"):
        tracking.retry_now(engine, world["admin"], postback_id=ok)


def test_edit_request_id_is_bound_to_the_fields_asked_for(engine, world):
    """Same request id and form version, another field (or another secret): refused and audited, the first edit
    stands; not answered "already done". Neither the refusal nor the request row carries the secret."""
    cid = tracking.add_config(engine, world["admin"], platform="meta", name="Meta", values=META).result["id"]
    other_token = "EAABsbCS1iHgBAKZCZ" + "r" * 20 + "Zz01"

    def edit(name, values):
        return tracking.edit_config(engine, world["admin"], config_id=cid, name=name, values=values,
                                    expected_version=1, request_id="tracking-edit-bound")  # fmt: skip

    edit("Meta EU", {"pixel_id": "999999999", "access_token": ""})
    assert edit("Meta EU", {"pixel_id": "999999999", "access_token": ""}).replayed
    (saved,) = reads.list_configs(engine, world["admin"])
    for name, values in (
        ("Meta EU", {"pixel_id": "888888888", "access_token": ""}),
        ("Meta US", {"pixel_id": "999999999", "access_token": ""}),
        ("Meta EU", {"pixel_id": "999999999", "access_token": other_token}),
    ):
        with pytest.raises(Invalid, match="already used for a different request"):
            edit(name, values)
    assert reads.list_configs(engine, world["admin"]) == [saved]
    assert saved["name"] == "Meta EU" and saved["version"] == 2
    rows = _audit(engine, "tracking.edit")
    assert [r["outcome"] for r in rows] == ["ok", "failed", "failed", "failed"]
    with engine.connect() as conn:
        dump = json.dumps([dict(r) for r in conn.execute(sa.text("SELECT * FROM action_requests")).mappings()],
                          default=str)  # fmt: skip
    assert other_token not in json.dumps([dict(r) for r in rows], default=str) and other_token not in dump

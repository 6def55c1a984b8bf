"""Per-rule recipients (validated e-mail addresses, webhook on/off) edited by an admin through the audited
rule update; what viewers see of them and of deliveries; the delivery settings production refuses."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.services.alerts import delivery, reads, writes
from app.services.alerts.rules import MAX_RECIPIENTS, Finding, clean_recipients
from app.services.core import Denied, Invalid
from app.settings import SettingsError, load_settings
from tests.services.conftest import World


def rule(w: World, code: str) -> dict:
    return w.rows("SELECT * FROM alert_rules WHERE code = :c", c=code)[0]


def audit_rows(w: World) -> list[dict]:
    return w.rows("SELECT action, outcome, detail FROM audit_log WHERE action = 'alert.rule_update' ORDER BY seq")


def test_recipients_are_validated_normalized_and_deduplicated():
    got = clean_recipients(" Ops@Pitboss.EXAMPLE.com \n\nrisk@pitboss.example.com, ops@pitboss.example.com")
    assert got == ["Ops@pitboss.example.com", "risk@pitboss.example.com"]
    for bad in ("not-an-address", "a@b@c.test", "x@localhost", "evil@pitboss.example.com\r\nBcc: all@x.test"):
        with pytest.raises(Invalid) as err:
            clean_recipients(["ok@pitboss.example.com", bad])
        assert "recipient 2 is not a valid e-mail address" in err.value.message
    with pytest.raises(Invalid, match="at most"):
        clean_recipients([f"u{i}@pitboss.example.com" for i in range(MAX_RECIPIENTS + 1)])


def test_an_admin_sets_a_rules_recipients_and_webhook_audited(world: World):
    before = rule(world, "failed_logins")
    writes.update_rule(world.engine, world.actors["admin"], code="failed_logins",
                       recipients="oncall@pitboss.example.com\nrisk@pitboss.example.com", webhook=False,
                       expected_version=before["version"], reason="on-call rota")  # fmt: skip
    after = rule(world, "failed_logins")
    assert (
        after["email_recipients"] == ["oncall@pitboss.example.com", "risk@pitboss.example.com"]
        and after["webhook"] is False
    )
    (row,) = audit_rows(world)
    assert row["outcome"] == "ok"


def test_a_bad_address_is_refused_audited_and_changes_nothing(world: World):
    before = rule(world, "failed_logins")
    with pytest.raises(Invalid):
        writes.update_rule(
            world.engine, world.actors["admin"], code="failed_logins",
            recipients=["oncall@pitboss.example.com", "oops"], expected_version=before["version"],
        )  # fmt: skip
    assert rule(world, "failed_logins") == before
    (row,) = audit_rows(world)
    assert row["outcome"] == "failed" and "recipient 2" in row["detail"]["error"]


def test_only_an_admin_edits_recipients(world: World):
    before = rule(world, "failed_logins")
    with pytest.raises(Denied):
        writes.update_rule(world.engine, world.actors["manager"], code="failed_logins",
                           recipients=["me@pitboss.example.com"], expected_version=before["version"])  # fmt: skip
    assert rule(world, "failed_logins") == before
    assert audit_rows(world)[0]["outcome"] == "denied"


def test_masked_viewers_see_recipients_masked(world: World):
    world.execute("UPDATE alert_rules SET email_recipients = ARRAY['oncall.person@pitboss.example.com']"
                  " WHERE code = 'failed_logins'")  # fmt: skip
    with world.engine.begin() as conn:
        r = conn.execute(sa.text(f"SELECT {delivery.RULE_COLUMNS} FROM alert_rules WHERE code = 'failed_logins'")).one()
        alert = delivery.open_alert(conn, r, Finding("brand:1:x", "many failed logins", world.brands["alpha"]),
                                    load_settings({}, secrets_file=None))  # fmt: skip
    by_code = {r["code"]: r for r in reads.list_rules(world.engine, world.actors["analyst"])}
    assert "oncall.person@pitboss.example.com" not in str(by_code["failed_logins"]["email_recipients"])
    seen = reads.deliveries_for(world.engine, world.actors["analyst"], [alert.id])
    assert seen[alert.id][0].status == "pending" and "oncall.person" not in seen[alert.id][0].recipient
    admin = reads.deliveries_for(world.engine, world.actors["admin"], [alert.id])
    assert admin[alert.id][0].recipient == "oncall.person@pitboss.example.com"
    assert reads.deliveries_for(world.engine, world.actors["support_beta"], [alert.id]) == {}  # no alert access


STRONG = "whsec-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"PITBOSS_ALERT_WEBHOOK_URL": "https://hooks.example.com/x"}, "without PITBOSS_ALERT_WEBHOOK_SECRET"),
        ({"PITBOSS_ALERT_WEBHOOK_URL": "https://hooks.example.com/x", "PITBOSS_ALERT_WEBHOOK_SECRET": "short"},
         "at least 32"),
        ({"PITBOSS_ALERT_WEBHOOK_URL": "http://hooks.example.com/x", "PITBOSS_ALERT_WEBHOOK_SECRET": STRONG},
         "https://"),
        ({"PITBOSS_SMTP_HOST": "smtp.example.com", "PITBOSS_SMTP_TLS": "none", "PITBOSS_SMTP_USER": "u",
          "PITBOSS_SMTP_PASSWORD": "p" * 20}, "in clear"),
        ({"PITBOSS_SMTP_HOST": "smtp.example.com", "PITBOSS_SMTP_USER": "u"}, "together"),
    ],
)  # fmt: skip
def test_production_refuses_weak_or_missing_delivery_secrets(env: dict, why: str):
    base = {"PITBOSS_ENV": "production", "PITBOSS_COOKIE_KEY": "c" * 8 + STRONG, "PITBOSS_AUDIT_KEY": "a" * 8 + STRONG}
    with pytest.raises(SettingsError, match=why) as err:
        load_settings({**base, **env}, secrets_file=None).check_production()
    assert "p" * 20 not in str(err.value)
    ok = {
        "PITBOSS_ALERT_WEBHOOK_URL": "https://hooks.example.com/x",
        "PITBOSS_ALERT_WEBHOOK_SECRET": STRONG,
        "PITBOSS_SMTP_HOST": "smtp.example.com",
        "PITBOSS_SMTP_USER": "u",
        "PITBOSS_SMTP_PASSWORD": "p" * 20,
    }
    load_settings({**base, **ok}, secrets_file=None).check_production()


def test_bad_smtp_settings_are_named():
    with pytest.raises(SettingsError, match="PITBOSS_SMTP_TLS"):
        load_settings({"PITBOSS_SMTP_TLS": "tls1"}, secrets_file=None)
    with pytest.raises(SettingsError, match="PITBOSS_SMTP_PORT"):
        load_settings({"PITBOSS_SMTP_PORT": "99999"}, secrets_file=None)
    assert load_settings({"PITBOSS_SMTP_TLS": "ssl"}, secrets_file=None).smtp_port == 465

"""Alert rules raised at the moment of the action (`alerts/actions.py`, hooked into `core.perform` after the
commit): a role granted, a second factor reset, a large adjustment approved; and self_exclusion_ended in the
evaluator. The action never waits for a mail server or a webhook, and a failing rule never breaks the action."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from app.services import core
from app.services.alerts import actions, channels, delivery, evaluate
from app.services.core import Change, Denied
from app.services.payments import writes as adjustments
from app.services.staff import writes as staff
from app.settings import Settings, get_settings
from auth.permissions import Permission
from tests.services.alerts.receivers import blackhole
from tests.services.conftest import World


@pytest.fixture
def env_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Settings]]:
    """Set PITBOSS_* variables for this test and return the settings the app reads from them."""

    def apply(**env: object) -> Settings:
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        get_settings.cache_clear()
        return get_settings()

    get_settings.cache_clear()
    yield apply
    get_settings.cache_clear()


def alerts(w: World, code: str) -> list[dict]:
    return w.rows("SELECT * FROM alerts WHERE rule_code = :c ORDER BY id", c=code)


def deliveries(w: World) -> list[dict]:
    return w.rows("SELECT * FROM alert_deliveries ORDER BY id")


def set_rule(w: World, code: str, **cols: object) -> None:
    if "params" in cols:
        cols["params"] = json.dumps(cols["params"])
    sets = ", ".join(f"{k} = CAST(:{k} AS jsonb)" if k == "params" else f"{k} = :{k}" for k in cols)
    w.execute(f"UPDATE alert_rules SET {sets} WHERE code = :code", code=code, **cols)


def version_of(w: World, staff_id: int) -> int:
    return int(w.scalar("SELECT version FROM staff_users WHERE id = :i", i=staff_id))


def grant(w: World, username: str, roles: list[str], *, rid: str | None = None, by: str = "admin"):
    sid = w.actors[username].staff_id
    return staff.set_access(w.engine, w.actors[by], staff_id=sid, roles=roles, brand_scope=None,
                            reason="new duties", expected_version=version_of(w, sid), request_id=rid)  # fmt: skip


# --------------------------------------------------------------------------- role granted


def test_a_granted_role_raises_a_critical_alert_at_once_with_its_deliveries(world: World, env_settings):
    env_settings()
    set_rule(world, "role_granted", email_recipients=["security@pitboss.test"])
    result = grant(world, "support", ["support", "admin"], rid="grant-support-admin-1")
    (alert,) = alerts(world, "role_granted")  # no ingestion, no evaluation: raised by the action itself
    sid = world.actors["support"].staff_id
    assert alert["subject"] == f"staff:{sid}:audit:{result.audit_seq}" and alert["severity"] == "critical"
    assert alert["title"].startswith("admin granted admin to staff support")
    assert alert["detail"]["roles_added"] == ["admin"] and alert["operator_id"] is None
    (d,) = deliveries(world)
    assert (d["alert_id"], d["channel"], d["recipient"], d["status"]) == (alert["id"], "email", "security@pitboss.test",
                                                                         "pending")  # fmt: skip
    # the same request again is a replay: nothing applied, no second alert
    again = staff.set_access(world.engine, world.actors["admin"], staff_id=sid, roles=["support", "admin"],
                             brand_scope=None, reason="new duties", expected_version=version_of(world, sid) - 1,
                             request_id="grant-support-admin-1")  # fmt: skip
    assert again.replayed and len(alerts(world, "role_granted")) == 1


def test_removing_a_role_or_a_refused_grant_raises_nothing(world: World, env_settings):
    env_settings()
    grant(world, "compliance", ["compliance", "support"])
    assert len(alerts(world, "role_granted")) == 1
    grant(world, "compliance", ["compliance"])  # removal only
    with pytest.raises(Denied):
        grant(world, "support", ["support", "admin"], by="manager")  # not allowed: refused, audited, no alert
    assert len(alerts(world, "role_granted")) == 1


def test_admin_only_fires_for_a_granted_admin_role_and_a_new_account_counts(world: World, env_settings):
    env_settings()
    set_rule(world, "role_granted", params={"admin_only": 1})
    grant(world, "support", ["support", "compliance"])
    assert alerts(world, "role_granted") == []
    staff.add_staff(world.engine, world.actors["admin"], username="newadmin", display_name="New Admin",
                    email="newadmin@staff.test", password="a-long-enough-Passw0rd!", roles=["admin"],
                    brand_scope=None)  # fmt: skip
    (alert,) = alerts(world, "role_granted")
    assert alert["detail"]["username"] == "newadmin" and alert["detail"]["roles_added"] == ["admin"]


def test_a_disabled_rule_raises_nothing(world: World, env_settings):
    env_settings()
    set_rule(world, "role_granted", enabled=False)
    grant(world, "support", ["support", "admin"])
    assert alerts(world, "role_granted") == []


# --------------------------------------------------------------------------- second factor reset


def test_a_second_factor_reset_raises_an_alert_keyed_on_the_action_name(world: World, env_settings):
    env_settings()
    target = world.actors["compliance"].staff_id
    result = core.perform(
        world.engine, world.actors["admin"], action="staff.2fa_reset", permission=Permission.MANAGE_STAFF,
        request_id="reset-2fa-compliance", target_type="staff_user", target_id=target, any_brand=True,
        apply=lambda uow, t: Change(before={"username": "compliance", "totp": "bound"},
                                    after={"username": "compliance", "totp": "none"}),
    )  # fmt: skip
    (alert,) = alerts(world, "staff_2fa_reset")
    assert alert["subject"] == f"staff:{target}:audit:{result.audit_seq}"
    assert alert["title"] == "Second factor of staff compliance reset by admin" and alert["severity"] == "critical"


# --------------------------------------------------------------------------- large adjustment approved


def request(w: World, amount: str, by: str = "support"):
    return adjustments.request_adjustment(
        w.engine, w.actors[by], player_id=w.players[0], direction="credit", amount=amount, reason_code="goodwill",
        note="as agreed", request_id=None,
    )  # fmt: skip


def approve(w: World, adjustment_id: int, by: str = "manager"):
    version = w.scalar("SELECT version FROM balance_adjustments WHERE id = :a", a=adjustment_id)
    return adjustments.approve_adjustment(w.engine, w.actors[by], adjustment_id=adjustment_id, reason="checked",
                                          expected_version=version, request_id=None)  # fmt: skip


def test_an_adjustment_approved_above_the_brand_threshold_raises_an_alert(world: World, env_settings):
    env_settings()
    big = request(world, "150.00")  # alpha's threshold is 100: pending, four eyes
    assert big.result["status"] == "pending"
    assert alerts(world, "large_adjustment_approved") == []  # requested is not approved
    approve(world, big.result["adjustment_id"])
    (alert,) = alerts(world, "large_adjustment_approved")
    assert alert["operator_id"] == world.brands["alpha"]
    assert alert["detail"]["amount"] == "150.00" and alert["detail"]["threshold"] == "100.00"
    assert "approved by manager" in alert["title"]


def test_an_approval_within_the_threshold_or_its_multiple_raises_nothing(world: World, env_settings):
    env_settings()
    request(world, "80.00")  # applied at once
    small = request(world, "80.00")  # pending: the requester's day total passes the threshold
    assert small.result["status"] == "pending"
    approve(world, small.result["adjustment_id"])  # 80 ≤ 100
    set_rule(world, "large_adjustment_approved", params={"threshold_multiple": 2})
    big = request(world, "150.00", by="compliance")
    approve(world, big.result["adjustment_id"])  # 150 ≤ 200
    assert alerts(world, "large_adjustment_approved") == []


# --------------------------------------------------------------------------- self-exclusion ended (evaluator)


def test_a_self_exclusion_that_reached_its_end_raises_an_alert_in_the_evaluator(world: World, env_settings):
    env_settings()
    ended, running, long_ago = world.players
    world.execute("UPDATE players SET self_excluded_until = now() - interval '2 days' WHERE id = :p", p=ended)
    world.execute("UPDATE players SET account_status = 'self_excluded', self_excluded_until = now() + interval"
                  " '30 days' WHERE id = :p", p=running)  # fmt: skip
    world.execute("UPDATE players SET self_excluded_until = now() - interval '40 days' WHERE id = :p", p=long_ago)
    opened = evaluate.evaluate_alerts(world.engine)
    fired = [a for a in opened if a.rule_code == "self_exclusion_ended"]
    assert [a.detail["player_id"] for a in fired] == [ended]
    assert fired[0].severity == "critical" and fired[0].title.startswith(f"Self-exclusion of player #{ended} ended")
    assert not [a for a in evaluate.evaluate_alerts(world.engine) if a.rule_code == "self_exclusion_ended"]
    # the action-time rules are not evaluated after ingestion
    assert not {a.rule_code for a in opened} & {"role_granted", "staff_2fa_reset", "large_adjustment_approved"}


# --------------------------------------------------------------------------- the action never waits


def test_an_action_returns_at_once_while_the_smtp_server_hangs(world: World, env_settings, monkeypatch):
    """No network call inside perform: the alert and its deliveries are only queued; the worker then meets the
    hung server (time-out) and leaves the delivery pending for a retry."""
    connects: list[object] = []
    real_connect = socket.socket.connect

    def spy(self, address):  # any TCP connection made from Python (the database driver is libpq, not this)
        if self.family in (socket.AF_INET, socket.AF_INET6):
            connects.append(address)
        return real_connect(self, address)

    with blackhole() as port:
        s = env_settings(PITBOSS_SMTP_HOST="127.0.0.1", PITBOSS_SMTP_PORT=port, PITBOSS_SMTP_TLS="none",
                         PITBOSS_ALERT_WEBHOOK_URL=f"https://127.0.0.1:{port}/hook",
                         PITBOSS_ALERT_WEBHOOK_SECRET="whsec-0123456789abcdefghijklmnopqrstuvwxyz",
                         PITBOSS_POSTBACK_ALLOW_HOSTS="127.0.0.1")  # fmt: skip
        set_rule(world, "role_granted", email_recipients=["security@pitboss.test", "cto@pitboss.test"])
        monkeypatch.setattr(socket.socket, "connect", spy)
        started = time.monotonic()
        grant(world, "support", ["support", "admin"])
        elapsed = time.monotonic() - started
        monkeypatch.setattr(socket.socket, "connect", real_connect)
        assert connects == [] and elapsed < 2.0
        assert sorted((d["channel"], d["status"]) for d in deliveries(world)) == [
            ("email", "pending"), ("email", "pending"), ("webhook", "pending")]  # fmt: skip
        report = delivery.run_until_idle(world.engine, settings=s, timeout=0.5)
    assert report.retry == 3
    for d in deliveries(world):
        assert d["status"] == "pending" and d["attempts"] == 1 and d["next_retry_at"] is not None


def test_a_failing_alert_rule_never_breaks_the_action(world: World, env_settings, monkeypatch, caplog):
    env_settings()

    def broken(*args, **kwargs):
        raise RuntimeError("rule exploded")

    monkeypatch.setattr(actions, "open_alert", broken)
    result = grant(world, "support", ["support", "admin"])
    assert result.message.startswith("access of support changed")
    assert "admin" in world.scalar("SELECT roles FROM staff_users WHERE id = :i", i=world.actors["support"].staff_id)
    assert world.scalar("SELECT outcome FROM audit_log WHERE seq = :s", s=result.audit_seq) == "ok"
    assert alerts(world, "role_granted") == [] and "rule exploded" in caplog.text
    monkeypatch.setattr(actions, "on_action", broken)  # even the hook itself failing
    assert grant(world, "support", ["support"]).audit_seq > result.audit_seq


def test_the_action_rules_never_send(world: World, env_settings, monkeypatch):
    env_settings(PITBOSS_SMTP_HOST="127.0.0.1")
    set_rule(world, "role_granted", email_recipients=["security@pitboss.test"])

    def forbidden(*args, **kwargs):
        raise AssertionError("sent from inside the action")

    monkeypatch.setattr(channels, "send_email", forbidden)
    monkeypatch.setattr(channels, "send_webhook", forbidden)
    grant(world, "support", ["support", "admin"])
    assert [d["status"] for d in deliveries(world)] == ["pending"]

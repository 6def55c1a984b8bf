"""Payment search: every filter, brand scope, strict amounts, and the audited export of the whole filtered set."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.services.core import Denied, Invalid
from app.services.payments.search import PaymentFilters, export_payments, search_payments
from tests.services.payments.conftest import audit, deposit, withdraw

F = PaymentFilters


@pytest.fixture
def payments(pw):
    p1, p2, p3 = pw.players
    ids = {
        "d1": deposit(pw, p1, "25.00", method="card", ago=dt.timedelta(days=3)),
        "d2": deposit(pw, p2, "300.00", method="ewallet", status="declined", ago=dt.timedelta(days=40)),
        "w1": withdraw(pw, p1, "120.00"),
        "b1": deposit(pw, p3, "75.00", ago=dt.timedelta(days=1)),  # brand beta
    }
    return pw, ids


def _ids(world, who="finance", **kw) -> set[int]:
    return set(search_payments(world.engine, world.actors[who], F(**kw))["id"].to_list())


def test_filters(payments):
    world, ids = payments
    p1, p2, _ = world.players
    assert _ids(world, payment_id=ids["w1"]) == {ids["w1"]}
    assert _ids(world, player=str(p1)) == {ids["d1"], ids["w1"]}
    assert _ids(world, player="p2") == {ids["d2"]}
    assert _ids(world, kind="withdrawal") == {ids["w1"]}
    assert _ids(world, method="ewallet") == {ids["d2"]}
    assert _ids(world, status="declined") == {ids["d2"]}
    assert _ids(world, min_amount="50", max_amount="200.00") == {ids["w1"], ids["b1"]}
    today = dt.datetime.now(dt.UTC).date()
    assert _ids(world, date_from=today - dt.timedelta(days=45), date_to=today - dt.timedelta(days=30)) == {ids["d2"]}
    assert _ids(world, date_from=today - dt.timedelta(days=2)) == {ids["w1"], ids["b1"]}
    row = search_payments(world.engine, world.actors["finance"], F(payment_id=ids["d1"])).row(0, named=True)
    assert (row["brand"], row["player"], row["amount"], row["currency"]) == ("alpha", "p1", Decimal("25.00"), "EUR")
    assert "account_ref" not in search_payments(world.engine, world.actors["finance"], F()).columns


def test_brand_scope_and_permissions(payments):
    world, ids = payments
    assert _ids(world, who="finance_beta") == {ids["b1"]}
    assert _ids(world, who="finance_beta", payment_id=ids["d1"]) == set()  # another brand's payment: not found
    assert _ids(world, who="compliance") == set(ids.values())
    for who in ("support", "analyst", "manager"):
        with pytest.raises(Denied):
            search_payments(world.engine, world.actors[who], F())


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"min_amount": "1,000"}, "ambiguous"),
        ({"min_amount": "10", "max_amount": "5"}, "minimum amount is above"),
        ({"status": "lost"}, "status must be one of"),
        ({"date_from": dt.date(2026, 5, 2), "date_to": dt.date(2026, 5, 1)}, "start date is after"),
    ],
)
def test_bad_filters_are_refused_clearly(payments, kw, message):
    world, _ = payments
    with pytest.raises(Invalid, match=message):
        search_payments(world.engine, world.actors["finance"], F(**kw))


def test_export_is_the_whole_filtered_set_and_audited(payments):
    world, ids = payments
    data = export_payments(world.engine, world.actors["finance"], F(kind="deposit"), request_id="pay-export-1")
    lines = data.decode().strip().splitlines()
    assert lines[0].startswith("id,created_at,brand,player_id,player,kind")
    assert {int(x.split(",")[0]) for x in lines[1:]} == {ids["d1"], ids["d2"], ids["b1"]}
    (row,) = audit(world, "export")
    assert row["outcome"] == "ok" and row["actor_name"] == "finance"
    assert row["detail"]["name"] == "payments" and row["detail"]["rows"] == 3
    assert row["detail"]["filters"] == {"kind": "deposit"}
    # a compliance officer may export; support may neither search nor export
    export_payments(world.engine, world.actors["compliance"], F(), request_id="pay-export-2")
    with pytest.raises(Denied):
        export_payments(world.engine, world.actors["support"], F(), request_id="pay-export-3")

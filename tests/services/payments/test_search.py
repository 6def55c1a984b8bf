"""Payment search: every filter, brand scope, strict amounts, and the streamed, audited export of the whole
filtered set (`export_source` through `exports.stream`)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from decimal import Decimal

import pytest

from app.services.core import Denied, Invalid, Stale
from app.services.exports import stream
from app.services.payments import search
from app.services.payments.search import COLUMNS, PaymentFilters, export_source, filters_for_audit, search_payments
from auth.identity import Actor
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


def _export(world, who, filters, *, fmt="csv", rid=None, tmp=None, chunk_rows=2) -> stream.ExportFile:
    """Count, then stream, as the page's `export_whole` does (two rows per chunk: several chunks)."""
    actor, source = world.actors[who], export_source(world.engine, filters, chunk_rows=chunk_rows)
    audit_filters = filters_for_audit(filters)
    rows = stream.count_export(world.engine, actor, source, name="payments", filters=audit_filters, fmt=fmt)
    return stream.export_stream(world.engine, actor, source, name="payments", filters=audit_filters, fmt=fmt,
                                confirmed_rows=rows, request_id=rid, directory=tmp)  # fmt: skip


def _csv(file: stream.ExportFile) -> list[dict]:
    return list(csv.DictReader(io.StringIO(file.path.read_bytes().decode("utf-8"), newline="")))


def test_export_is_the_whole_filtered_set_streamed_and_audited(payments, tmp_path, monkeypatch):
    world, ids = payments
    monkeypatch.setattr(search, "MAX_ROWS", 1)  # the screen's row limit does not cut the export
    progress: list[int] = []
    actor, source = world.actors["finance"], export_source(world.engine, F(kind="deposit"), chunk_rows=2)
    rows = stream.count_export(world.engine, actor, source, name="payments", filters={"kind": "deposit"}, fmt="csv")
    assert rows == 3
    file = stream.export_stream(world.engine, actor, source, name="payments", filters={"kind": "deposit"},
                                fmt="csv", confirmed_rows=rows, request_id="pay-export-1", directory=tmp_path,
                                progress=lambda done, total: progress.append(done))  # fmt: skip
    got = _csv(file)
    assert list(got[0]) == list(COLUMNS)
    assert [int(r["id"]) for r in got] == [ids["b1"], ids["d1"], ids["d2"]]  # newest first, all brands
    assert progress == [2, 3]  # streamed in chunks
    (row,) = audit(world, "export")
    assert row["outcome"] == "ok" and row["actor_name"] == "finance" and row["target_id"] == "payments"
    assert row["detail"]["name"] == "payments" and row["detail"]["rows"] == 3 and row["detail"]["whole_set"]
    assert row["detail"]["filters"] == {"kind": "deposit"} and row["detail"]["columns"] == list(COLUMNS)


def test_export_in_xlsx_holds_every_row(payments, tmp_path):
    world, ids = payments
    file = _export(world, "compliance", F(), fmt="xlsx", tmp=tmp_path)
    with zipfile.ZipFile(file.path) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert file.rows == len(ids) and sheet.count("<row ") == len(ids) + 1  # the header and every payment


def test_export_keeps_to_the_brand_scope(payments, tmp_path):
    world, ids = payments
    got = _csv(_export(world, "finance_beta", F(), tmp=tmp_path))
    assert [int(r["id"]) for r in got] == [ids["b1"]]
    other_brand = export_source(world.engine, F(payment_id=ids["d1"]))  # an alpha payment: not in beta's set
    actor = world.actors["finance_beta"]
    assert stream.count_export(world.engine, actor, other_brand, name="payments", filters={}, fmt="csv") == 0
    with pytest.raises(Invalid, match="no rows match"):
        stream.export_stream(world.engine, actor, other_brand, name="payments", filters={}, fmt="csv",
                             confirmed_rows=1, request_id=None, directory=tmp_path)  # fmt: skip
    assert [r["outcome"] for r in audit(world, "export")] == ["ok", "failed"]
    assert len(list(tmp_path.glob("pitboss_*"))) == 1  # the beta export's file only


def test_export_scope_is_the_actor_s_at_export_time(payments, tmp_path):
    """A finance person narrowed to brand beta after counting gets beta's rows only (the count changed: refused)."""
    world, ids = payments
    actor = world.actors["finance_beta"]
    wide = Actor(staff_id=actor.staff_id, username=actor.username, roles=actor.roles, brand_scope=None)
    source = export_source(world.engine, F())
    assert stream.count_export(world.engine, wide, source, name="payments", filters={}, fmt="csv") == len(ids)
    with pytest.raises(Stale):  # the same source opened by the narrower actor: 1 row, not 4
        stream.export_stream(world.engine, actor, source, name="payments", filters={}, fmt="csv",
                             confirmed_rows=len(ids), request_id=None, directory=tmp_path)  # fmt: skip
    assert not list(tmp_path.glob("pitboss_*"))


def test_export_never_holds_account_refs_and_is_formula_safe(payments, tmp_path):
    world, ids = payments
    p1 = world.players[0]
    ref_pay = withdraw(world, p1, "10.00", account_ref="DE89370400440532013000")
    world.execute("UPDATE players SET username = :u WHERE id = :p", u='=HYPERLINK("http://evil.test")', p=p1)
    file = _export(world, "finance", F(player=str(p1)), tmp=tmp_path)
    raw = file.path.read_bytes().decode()
    assert "DE89370400440532013000" not in raw and "account_ref" not in raw
    got = {int(r["id"]): r for r in _csv(file)}
    assert set(got) == {ids["d1"], ids["w1"], ref_pay}
    assert {r["player"] for r in got.values()} == {'\'=HYPERLINK("http://evil.test")'}  # neutralised


def test_masked_viewers_get_personal_columns_masked(payments, monkeypatch):
    """No column of the search is personal today; were one added (an account ref), a masked viewer's export
    would hold it masked, as the Players export does."""
    world, ids = payments
    monkeypatch.setattr(search, "_select", lambda where: f"SELECT x.id, x.account_ref FROM payments x WHERE {where}")
    pay = withdraw(world, world.players[0], "10.00", account_ref="DE89370400440532013000")
    filters = F(payment_id=pay)
    with search.export_chunks(world.engine, world.actors["finance"], filters) as chunks:
        assert next(iter(chunks))["account_ref"].to_list() == ["DE89370400440532013000"]
    monkeypatch.setattr(search.masking, "masks_personal_data", lambda actor: True)
    with search.export_chunks(world.engine, world.actors["finance"], filters) as chunks:
        assert chunks.rows == 1 and next(iter(chunks))["account_ref"].to_list() == ["***00"]


@pytest.mark.parametrize("who", ["support", "analyst", "manager"])
def test_roles_that_may_not_search_payments_cannot_export_them_audited(payments, who, tmp_path):
    world, _ = payments
    source = export_source(world.engine, F())
    with pytest.raises(Denied):
        stream.count_export(world.engine, world.actors[who], source, name="payments", filters={}, fmt="csv")
    with pytest.raises(Denied):
        stream.export_stream(world.engine, world.actors[who], source, name="payments", filters={}, fmt="csv",
                             confirmed_rows=4, request_id=None, directory=tmp_path)  # fmt: skip
    rows = audit(world, "export")
    assert [r["outcome"] for r in rows] == ["denied", "denied"] and not list(tmp_path.glob("pitboss_*"))
    assert all(r["actor_name"] == who for r in rows)


def test_a_bad_filter_refuses_the_export_clearly_and_audited(payments):
    world, _ = payments
    source = export_source(world.engine, F(min_amount="1,000"))
    with pytest.raises(Invalid, match="ambiguous"):
        stream.count_export(world.engine, world.actors["finance"], source, name="payments", filters={}, fmt="csv")
    (row,) = audit(world, "export")
    assert row["outcome"] == "failed" and "ambiguous" in row["detail"]["error"]

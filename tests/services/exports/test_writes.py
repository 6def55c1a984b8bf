"""Audited exports: permission, audit row with who/what/filters/rows, formula-safe CSV and XLSX."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile

import polars as pl
import pytest

from app.services.core import Denied, Invalid, ServiceError
from app.services.exports.writes import export_table, neutralise

DANGEROUS = ['=HYPERLINK("http://x")', "+1+2", "-3+4", "@SUM(A1)", "\tTAB", "\rCR", "plain", "a=b"]


def test_neutralise():
    assert [neutralise(v) for v in DANGEROUS] == [
        "'=HYPERLINK(\"http://x\")", "'+1+2", "'-3+4", "'@SUM(A1)", "'\tTAB", "'\rCR", "plain", "a=b"]  # fmt: skip
    assert neutralise(-5) == -5 and neutralise(None) is None


def test_csv_export_is_formula_safe_and_audited(world):
    df = pl.DataFrame({"name": DANGEROUS, "amount": [-1.5, 2, 3, 4, 5, 6, 7, 8]})
    data = export_table(world.engine, world.actors["analyst"], df, name="players", filters={"brand": "alpha"})
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == ["name", "amount"]
    assert [r[0] for r in rows[1:]] == [neutralise(v) for v in DANGEROUS]
    assert rows[1][1] == "-1.5"  # numbers are not touched
    audit = world.rows("SELECT actor_name, action, outcome, target_id, detail FROM audit_log")[-1]
    assert (audit["actor_name"], audit["action"], audit["outcome"], audit["target_id"]) == (
        "analyst", "export", "ok", "players")  # fmt: skip
    assert audit["detail"]["rows"] == 8 and audit["detail"]["filters"] == {"brand": "alpha"}
    assert audit["detail"]["columns"] == ["name", "amount"] and audit["detail"]["format"] == "csv"


def test_xlsx_export_holds_no_formulas(world):
    df = pl.DataFrame({"name": DANGEROUS})
    data = export_table(world.engine, world.actors["manager"], df, name="x", filters={}, fmt="xlsx")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
        strings = z.read("xl/sharedStrings.xml").decode()
    assert "<f>" not in sheet  # no formula cells
    assert "&apos;=HYPERLINK" in strings or "'=HYPERLINK" in strings


def test_support_may_not_export_and_is_audited(world):
    with pytest.raises(Denied):
        export_table(world.engine, world.actors["support"], pl.DataFrame({"a": [1]}), name="x", filters={})
    assert world.rows("SELECT outcome, action FROM audit_log")[-1] == {"outcome": "denied", "action": "export"}


def test_unknown_format_is_refused(world):
    with pytest.raises(Invalid, match="csv or xlsx"):
        export_table(world.engine, world.actors["admin"], pl.DataFrame({"a": [1]}), name="x", filters={}, fmt="pdf")


def test_no_file_without_its_audit_row(world):
    world.execute("REVOKE INSERT ON audit_log FROM pitboss_app")
    try:
        with pytest.raises(ServiceError):
            export_table(world.engine, world.actors["admin"], pl.DataFrame({"a": [1]}), name="x", filters={})
    finally:
        world.execute("GRANT INSERT ON audit_log TO pitboss_app")


def test_export_accepts_list_of_dicts_with_nested_values(world):
    rows = [{"seq": 1, "detail": {"cmd": "=cmd"}, "who": "@me"}]
    data = export_table(world.engine, world.actors["admin"], rows, name="audit", filters={}).decode()
    assert "'@me" in data and '{""cmd"": ""=cmd""}' in data


# --------------------------------------------------------------------------- request id bound to the export


def _exports(world) -> list[dict]:
    return world.rows("SELECT seq, outcome, request_id, detail FROM audit_log WHERE action = 'export' ORDER BY seq")


def test_a_request_id_reused_for_another_frame_is_refused_and_audited(world):
    """It used to return the bytes of the other frame, with no audit row for them."""
    first = export_table(world.engine, world.actors["analyst"], pl.DataFrame({"a": [1, 2]}), name="players",
                         filters={"brand": "alpha"}, request_id="export-000001")  # fmt: skip
    other = pl.DataFrame({"email": ["vip@example.com"]})
    with pytest.raises(Invalid, match="different request"):
        export_table(world.engine, world.actors["analyst"], other, name="players", filters={"brand": "alpha"},
                     request_id="export-000001")  # fmt: skip
    with pytest.raises(Invalid, match="different request"):  # the same frame with other filters
        export_table(world.engine, world.actors["analyst"], pl.DataFrame({"a": [1, 2]}), name="players",
                     filters={"brand": "beta"}, request_id="export-000001")  # fmt: skip
    rows = _exports(world)
    assert [r["outcome"] for r in rows] == ["ok", "failed", "failed"]
    assert rows[0]["detail"]["content_sha256"] == hashlib.sha256(first).hexdigest()


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_replayed_export_returns_the_same_content_with_its_own_audit_row(world, fmt):
    df = pl.DataFrame({"a": [1, 2], "b": ["=x", "y"]})
    first = export_table(world.engine, world.actors["manager"], df, name="t", filters={}, fmt=fmt,
                         request_id=f"replay-{fmt}-01")  # fmt: skip
    again = export_table(world.engine, world.actors["manager"], df.clone(), name="t", filters={}, fmt=fmt,
                         request_id=f"replay-{fmt}-01")  # fmt: skip
    if fmt == "csv":
        assert again == first
    rows = _exports(world)
    assert [r["outcome"] for r in rows] == ["ok", "ok"]  # handing the file out again is audited
    assert rows[1]["detail"]["replay_of"] == rows[0]["seq"] and rows[1]["request_id"] == f"replay-{fmt}-01"
    assert world.scalar("SELECT count(*) FROM action_requests") == 1

"""Whole exports (app/services/exports/stream.py): the whole filtered set, streamed, audited first, masked as on
screen, formula-safe in CSV and XLSX, refused past the cap, failures recorded, request ids bound to the payload."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree

import duckdb
import polars as pl
import pytest

from app.services.audit import reads as audit_reads
from app.services.audit.chain import write_audit
from app.services.core import Denied, Invalid, ServiceError, Stale
from app.services.exports import sources, stream
from bench.exports import COLUMNS, make_players_warehouse
from warehouse import gateway as gateway_module
from warehouse.api import PlayerFilters
from warehouse.gateway import Gateway

ROWS = 1_200  # more than the Players page shows (500)
DANGEROUS = {1: '=HYPERLINK("http://evil.test")', 2: "+1+2", 3: "-3+4", 4: "@SUM(A1)", 5: "\tTAB", 6: "\rCR"}
MASKED_EMAIL = re.compile(r"^.\*\*\*@example\.com$")


@pytest.fixture(scope="module")
def players_gw(tmp_path_factory) -> Gateway:
    path = make_players_warehouse(tmp_path_factory.mktemp("export") / "players.duckdb", ROWS)
    con = duckdb.connect(str(path))
    for pid, text in DANGEROUS.items():
        con.execute("UPDATE mart.players SET username = $t WHERE player_id = $p", {"t": text, "p": pid})
    con.close()
    return Gateway(path)


def _export(world, who, source, *, fmt="csv", filters=None, rid=None, tmp=None, **kw) -> stream.ExportFile:
    actor = world.actors[who]
    rows = stream.count_export(world.engine, actor, source, name="players", filters=filters or {}, fmt=fmt)
    return stream.export_stream(world.engine, actor, source, name="players", filters=filters or {}, fmt=fmt,
                                confirmed_rows=rows, request_id=rid, directory=tmp, **kw)  # fmt: skip


def _csv(file: stream.ExportFile) -> list[dict]:
    return list(csv.DictReader(io.StringIO(file.path.read_bytes().decode("utf-8"), newline="")))


def _xlsx(file: stream.ExportFile) -> tuple[str, list[list[str]]]:
    with zipfile.ZipFile(file.path) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    rows = []
    for row in ElementTree.fromstring(sheet).iterfind(".//m:sheetData/m:row", ns):
        rows.append(["".join(c.itertext()) for c in row.iterfind("m:c", ns)])
    return sheet, rows


def _exports(world) -> list[dict]:
    return world.rows("SELECT seq, outcome, actor_name, request_id, detail FROM audit_log WHERE action = 'export'"
                      " ORDER BY seq")  # fmt: skip


def _files(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("pitboss_*"))


def test_an_analyst_exports_every_row_masked_as_on_screen(world, players_gw, tmp_path):
    source = sources.players(players_gw, PlayerFilters(), columns=COLUMNS, chunk_rows=250)
    file = _export(world, "analyst", source, tmp=tmp_path)
    rows = _csv(file)
    assert len(rows) == file.rows == ROWS and list(rows[0]) == list(COLUMNS)
    assert all(MASKED_EMAIL.match(r["email"]) or r["email"] == "***" for r in rows)  # a formula without @: ***
    assert all(re.fullmatch(r"\*\*\*\d\d", r["phone"]) for r in rows)
    text = file.path.read_text()
    assert "player.7@example.com" not in text and "+49151120000007" not in text
    manager = _export(world, "manager", source, tmp=tmp_path)
    assert "player.7@example.com" in manager.path.read_text()


def test_masking_follows_the_actor_not_the_caller(world, players_gw, tmp_path):
    """A source built for a manager's page still masks for an analyst (masking is decided per actor)."""
    source = sources.players(players_gw, PlayerFilters(), columns=("player_id", "email", "phone"))
    file = _export(world, "analyst", source, tmp=tmp_path)
    assert all(r["email"].startswith("p***@") or r["email"] == "***" for r in _csv(file))


def test_formula_cells_are_neutralised_in_csv(world, players_gw, tmp_path):
    file = _export(world, "manager", sources.players(players_gw, PlayerFilters(), columns=COLUMNS), tmp=tmp_path)
    by_id = {int(r["player_id"]): r for r in _csv(file)}
    for pid, text in DANGEROUS.items():
        assert by_id[pid]["username"] == "'" + text
    assert by_id[97]["email"] == "'" + '=HYPERLINK("http://x.test")'
    assert by_id[7]["cash_balance"] == "7.0" and by_id[7]["username"] == "user7"  # numbers and plain text untouched


def test_formula_cells_are_neutralised_in_xlsx(world, players_gw, tmp_path):
    file = _export(world, "manager", sources.players(players_gw, PlayerFilters(), columns=COLUMNS), fmt="xlsx",
                   tmp=tmp_path)  # fmt: skip
    sheet, rows = _xlsx(file)
    assert "<f>" not in sheet and len(rows) == ROWS + 1  # no formula cell; a header and every row
    header = rows[0]
    by_id = {int(r[0]): dict(zip(header, r, strict=False)) for r in rows[1:]}
    for pid, text in DANGEROUS.items():
        assert by_id[pid]["username"].replace("_x000D_", "\r") == "'" + text
    assert by_id[97]["email"].startswith("'=HYPERLINK")


def test_the_audit_row_is_written_first_and_names_filter_and_count(world, players_gw, tmp_path):
    seen: list[list[dict]] = []

    def progress(done: int, total: int) -> None:
        seen.append(_exports(world))  # what the audit log holds while rows are being written

    pf = PlayerFilters(brands=frozenset({2}))
    source = sources.players(players_gw, pf, columns=COLUMNS, chunk_rows=100)
    file = _export(world, "analyst", source, filters={"brands": ["brand2"], "masked": True}, rid="whole-00001",
                   tmp=tmp_path, progress=progress)  # fmt: skip
    assert file.rows == ROWS // 4 and len(seen) == 3  # one progress call per chunk
    assert all(len(s) == 1 and s[0]["outcome"] == "ok" for s in seen)  # audited before the first chunk
    (row,) = _exports(world)
    assert row["actor_name"] == "analyst" and row["request_id"] == "whole-00001"
    d = row["detail"]
    assert d["rows"] == ROWS // 4 and d["filters"] == {"brands": ["brand2"], "masked": True}
    assert d["format"] == "csv" and d["whole_set"] is True and d["columns"] == list(COLUMNS)


def test_brand_scope_holds_in_the_export(world, players_gw, tmp_path):
    """Scope comes from the actor: an out-of-scope brand filter is refused; the scope limits the set."""
    world.actors["scoped"] = replace(world.actors["manager"], brand_scope=frozenset({3}))
    file = _export(world, "scoped", sources.players(players_gw, PlayerFilters(), columns=("player_id", "brand_code")),
                   tmp=tmp_path)  # fmt: skip
    assert {r["brand_code"] for r in _csv(file)} == {"brand3"}


def test_more_rows_than_the_cap_are_refused_and_audited(world, players_gw, tmp_path, monkeypatch):
    source = sources.players(players_gw, PlayerFilters(), columns=COLUMNS)
    monkeypatch.setattr(stream, "MAX_ROWS", 1_000)
    with pytest.raises(Invalid, match=r"1,200 rows match; at most 1,000 rows can be exported"):
        stream.count_export(world.engine, world.actors["manager"], source, name="players", filters={}, fmt="csv")
    with pytest.raises(Invalid, match="at most 1,000"):  # a forged confirmation is refused too
        stream.export_stream(world.engine, world.actors["manager"], source, name="players", filters={}, fmt="csv",
                             confirmed_rows=ROWS, request_id=None, directory=tmp_path)  # fmt: skip
    monkeypatch.setattr(stream, "MAX_ROWS", 2_000)
    monkeypatch.setattr(gateway_module, "STREAM_MAX_ROWS", 1_000)  # the gateway's own bound refuses too
    with pytest.raises(Invalid, match=r"1,200 rows match; at most 1,000 can be read"):
        stream.count_export(world.engine, world.actors["manager"], source, name="players", filters={}, fmt="csv")
    rows = _exports(world)
    assert [r["outcome"] for r in rows] == ["failed"] * 3
    assert "at most 1,000" in rows[0]["detail"]["error"] and not _files(tmp_path)


def test_support_may_not_export_and_is_audited(world, players_gw, tmp_path):
    source = sources.players(players_gw, PlayerFilters(), columns=COLUMNS)
    with pytest.raises(Denied):
        stream.count_export(world.engine, world.actors["support"], source, name="players", filters={}, fmt="csv")
    with pytest.raises(Denied):
        stream.export_stream(world.engine, world.actors["support"], source, name="players", filters={}, fmt="csv",
                             confirmed_rows=ROWS, request_id=None, directory=tmp_path)  # fmt: skip
    assert [r["outcome"] for r in _exports(world)] == ["denied", "denied"] and not _files(tmp_path)


class Broken(OSError):
    pass


class Interrupted(BaseException):  # like Streamlit's StopException when the viewer leaves the page
    pass


@pytest.mark.parametrize("error", [Broken("disk full"), Interrupted()])
def test_a_failure_while_streaming_is_audited_and_leaves_no_file(world, tmp_path, error):
    class Failing:
        rows, columns = 30, ["n"]

        def __iter__(self):
            yield pl.DataFrame({"n": list(range(10))})
            raise error

    @contextmanager
    def source(actor):
        yield Failing()

    with pytest.raises(ServiceError if isinstance(error, Exception) else Interrupted) as caught:
        _export(world, "admin", source, tmp=tmp_path)
    if isinstance(error, Exception):
        assert "failed after 10 of 30 rows" in caught.value.message
    started, failed = _exports(world)
    assert (started["outcome"], failed["outcome"]) == ("ok", "failed")
    assert failed["detail"]["export_seq"] == started["seq"] and failed["detail"]["rows_written"] == 10
    assert failed["detail"]["error"] == type(error).__name__
    assert not _files(tmp_path)


def test_a_request_id_is_bound_to_filters_format_and_count(world, players_gw, tmp_path):
    source = sources.players(players_gw, PlayerFilters(), columns=("player_id",))
    first = _export(world, "manager", source, filters={"q": None}, rid="whole-bound-1", tmp=tmp_path)
    with pytest.raises(Invalid, match="different request"):
        _export(world, "manager", source, filters={"q": "other"}, rid="whole-bound-1", tmp=tmp_path)
    with pytest.raises(Invalid, match="different request"):
        _export(world, "manager", source, filters={"q": None}, fmt="xlsx", rid="whole-bound-1", tmp=tmp_path)
    again = _export(world, "manager", source, filters={"q": None}, rid="whole-bound-1", tmp=tmp_path)
    assert again.sha256 == first.sha256
    rows = _exports(world)
    assert [r["outcome"] for r in rows] == ["ok", "failed", "failed", "ok"]
    assert rows[3]["detail"]["replay_of"] == rows[0]["seq"]  # handing the set out again is audited


def _audit_rows(world, n: int, action: str = "demo.action") -> None:
    with world.engine.begin() as conn:
        for i in range(n):
            write_audit(conn, actor=world.actors["admin"], action=action, outcome="ok", target_type="thing",
                        target_id=f"=cmd|{i}", reason=f"+reason {i}")  # fmt: skip


def test_the_whole_audit_log_is_exported_in_chunks_newest_first(world, tmp_path):
    _audit_rows(world, 23)
    filters = audit_reads.AuditFilters(action="demo.action")
    source = lambda who: audit_reads.export_chunks(world.engine, who, filters, chunk_rows=5)  # noqa: E731
    calls: list[int] = []
    file = _export(world, "compliance", source, filters=filters.as_dict(), tmp=tmp_path,
                   progress=lambda done, total: calls.append(done))  # fmt: skip
    rows = _csv(file)
    assert len(rows) == 23 and calls == [5, 10, 15, 20, 23]
    seqs = [int(r["seq"]) for r in rows]
    assert seqs == sorted(seqs, reverse=True)
    assert rows[0]["target_id"] == "'=cmd|22" and rows[0]["reason"] == "'+reason 22"
    (row,) = _exports(world)
    assert row["detail"]["rows"] == 23 and row["detail"]["filters"] == {"action": "demo.action"}


def test_a_count_that_changed_before_the_export_is_refused(world, tmp_path):
    _audit_rows(world, 3)
    filters = audit_reads.AuditFilters(action="demo.action")
    source = lambda who: audit_reads.export_chunks(world.engine, who, filters)  # noqa: E731
    actor = world.actors["compliance"]
    rows = stream.count_export(world.engine, actor, source, name="audit_log", filters={}, fmt="csv")
    _audit_rows(world, 2)
    with pytest.raises(Stale, match=r"3 → 5 rows"):
        stream.export_stream(world.engine, actor, source, name="audit_log", filters={}, fmt="csv",
                             confirmed_rows=rows, request_id=None, directory=tmp_path)  # fmt: skip
    (row,) = _exports(world)
    assert row["outcome"] == "failed" and "confirm the new count" in row["detail"]["error"]
    assert not _files(tmp_path)


def test_a_role_without_the_audit_log_cannot_export_it(world):
    source = lambda who: audit_reads.export_chunks(world.engine, who, audit_reads.AuditFilters())  # noqa: E731
    with pytest.raises(Denied):
        stream.count_export(world.engine, world.actors["analyst"], source, name="audit_log", filters={}, fmt="csv")

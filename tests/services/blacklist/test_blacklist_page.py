"""The Blacklist page (Streamlit AppTest): tabs, manual add, CSV dry run + confirmed commit, end, access."""

from __future__ import annotations

from tests.services.blacklist.conftest import entries, page_text
from tests.services.conftest import World


def button(at, label: str):
    return next(b for b in at.button if b.label.startswith(label))


def test_tabs_and_manual_add(ui, world: World) -> None:
    at = ui("blacklist", "compliance")
    assert not at.exception, at.exception
    assert [t.label for t in at.tabs] == [
        "Email (0)",
        "Phone (0)",
        "IP or CIDR (0)",
        "Device (0)",
        "Document number (0)",
        "Payment account (0)",
    ]
    at.text_input(key="bl:add:phone:value").input("0044 7400 900123")
    at.text_input(key="bl:add:phone:reason").input("multi-accounting")
    at = button(at.tabs[1], "Add to blacklist").click().run()
    assert not at.exception, at.exception
    (row,) = entries(world)
    assert (row["category"], row["normalized_value"], row["operator_id"]) == ("phone", "+447400900123", None)
    assert "Phone (1)" in [t.label for t in at.tabs]
    at.text_input(key="bl:add:ip:value").input("203.0.113.7/24")
    at.text_input(key="bl:add:ip:reason").input("proxy")
    at = button(at.tabs[2], "Add to blacklist").click().run()
    assert "host bits set; did you mean 203.0.113.0/24" in page_text(at)
    assert len(entries(world)) == 1


def test_csv_upload_preview_then_confirmed_commit(ui, world: World) -> None:
    at = ui("blacklist", "compliance")
    bad = b"category,value,reason\nemail,ok@example.com,r\nemail,not-an-email,r\n"
    at.file_uploader[0].set_value(("bad.csv", bad, "text/csv"))
    at = at.run()
    assert "2 rows: 1 new, 0 duplicate, 1 invalid" in page_text(at)
    assert "Nothing was added" in page_text(at)
    assert not [b for b in at.button if b.label == "Commit upload"]
    good = b"category,value,reason,brand\nemail,ok@example.com,r,alpha\ndevice,DEV-9,r,\n"
    at.file_uploader[0].set_value(("good.csv", good, "text/csv"))
    at = at.run()
    assert "2 rows: 2 new, 0 duplicate, 0 invalid" in page_text(at)
    commit = button(at, "Commit upload")
    assert commit.disabled  # not confirmed yet
    assert entries(world) == []
    at.checkbox[0].check()
    at = at.run()
    at = button(at, "Commit upload").click().run()
    assert not at.exception, at.exception
    assert sorted(e["normalized_value"] for e in entries(world)) == ["dev-9", "ok@example.com"]
    at = at.run()  # a rerun (or a late second click) does not add again
    assert len(entries(world)) == 2
    assert world.scalar("SELECT count(*) FROM audit_log WHERE action = 'blacklist.upload' AND outcome = 'ok'") == 1


def test_rejected_file_gets_a_clear_message(ui, world: World) -> None:
    at = ui("blacklist", "compliance")
    at.file_uploader[0].set_value(("utf16.csv", "category,value,reason\n".encode("utf-16"), "text/csv"))
    at = at.run()
    assert "The file was not accepted: the file is UTF-16 encoded" in page_text(at)


def test_entry_detail_end_and_matching_players(ui, ident_world: World) -> None:
    world = ident_world
    world.execute(
        "INSERT INTO blacklist_entries (category, value, normalized_value, reason, source)"
        " VALUES ('device', 'dev-shared', 'dev-shared', 'ring', 'manual')"
    )
    at = ui("blacklist", "compliance")
    eid = entries(world)[0]["id"]
    at.selectbox(key="bl:pick:device").set_value(eid)
    at = at.run()
    assert not at.exception, at.exception
    assert "Existing players this entry matches** (2)" in page_text(at)
    assert at.data_editor  # the block selection table
    at.text_input(key=f"bl:end:{eid}:1:reason").input("false positive")
    at = button(at, "End entry").click().run()
    assert not at.exception, at.exception
    assert entries(world)[0]["removal_reason"] == "false positive"


def test_support_cannot_open_the_page(ui, world: World) -> None:
    at = ui("blacklist", "support")
    assert "You do not have access to this page." in page_text(at)
    assert not at.tabs

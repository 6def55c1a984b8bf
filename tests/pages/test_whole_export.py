"""The whole-export widget (app/ui/export.py) on the Audit log page: count → confirm → file; a set that changed
between the count and the confirmation is refused (audited) and shown again with its new count; cancel and a
format change drop what was prepared."""

from __future__ import annotations

from app.services.audit.chain import write_audit

KEY = "pitboss_export:audit_log"


def _texts(at) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "warning", "error", "info") for e in getattr(at, kind))


def _rows(world, n: int) -> None:
    with world.engine.begin() as conn:
        for i in range(n):
            write_audit(conn, actor=world.actors["admin"], action="demo.action", outcome="ok", target_type="thing",
                        target_id=str(i))  # fmt: skip


def _exports(world) -> list[dict]:
    return world.rows("SELECT outcome, detail FROM audit_log WHERE action = 'export' ORDER BY seq")


def test_a_set_that_changed_after_the_count_is_confirmed_again(ui, world):
    _rows(world, 3)
    at = ui("audit_log", "compliance")
    at.selectbox(key="audit_action").set_value("demo.action").run()  # not the export rows themselves
    at.button(key=f"{KEY}:go").click().run()
    assert "Export 3 rows as CSV?" in _texts(at) and _exports(world) == []  # counting is not exporting
    _rows(world, 2)
    at.button(key=f"{KEY}:confirm").click().run()
    assert not at.exception, at.exception
    assert "(3 → 5 rows); confirm the new count" in _texts(at) and "Export 5 rows as CSV?" in _texts(at)
    assert [r["outcome"] for r in _exports(world)] == ["failed"]  # the refusal is audited
    at.button(key=f"{KEY}:confirm").click().run()
    assert not at.exception, at.exception
    refused, done = _exports(world)
    assert done["outcome"] == "ok" and done["detail"]["rows"] == 5 and done["detail"]["whole_set"] is True
    file = at.session_state[KEY]["file"]
    assert file.rows == 5 and file.path.exists()
    at.selectbox(key=f"{KEY}:fmt").set_value("xlsx").run()  # another format: the prepared file is dropped
    assert KEY not in at.session_state and not file.path.exists()


def test_cancel_drops_the_confirmation(ui, world):
    _rows(world, 2)
    at = ui("audit_log", "admin")
    at.button(key=f"{KEY}:go").click().run()
    assert "Export 2 rows as CSV?" in _texts(at)
    at.button(key=f"{KEY}:cancel").click().run()
    assert not at.exception and KEY not in at.session_state and "rows as CSV?" not in _texts(at)
    assert _exports(world) == []

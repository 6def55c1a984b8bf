"""Alerts raised after each ingestion: open / acknowledged / resolved, acknowledge and resolve (audited), and
the rules with their thresholds (an admin can change them)."""

import json

import streamlit as st

from app.services.alerts import reads as alerts
from app.services.alerts import rules as alert_rules
from app.services.alerts import writes as alert_writes
from app.services.core import ServiceError
from app.ui import fmt, state
from app.ui.forms import flash, request_id, rotate_request_id, show_flash
from app.ui.guard import guard_page
from app.ui.table import show_table
from auth.permissions import Permission, has_permission

actor = guard_page(__file__)
engine = state.engine()
st.title("Alerts")
show_flash()
may_act = has_permission(actor, alert_rules.ACT_PERMISSION)
SEVERITY_ICON = {"critical": ":material/error:", "warning": ":material/warning:", "info": ":material/info:"}


def act(kind: str, alert_id: int, note: str) -> None:
    key = f"alert_{kind}_{alert_id}"
    fn = alert_writes.acknowledge if kind == "ack" else alert_writes.resolve
    try:
        res = fn(engine, actor, alert_id=alert_id, note=note, request_id=request_id(key))
    except ServiceError as exc:
        st.error(exc.message, icon=":material/error:")
    else:
        rotate_request_id(key)
        flash(f"Alert #{alert_id}: {res.message}")
        st.rerun()


def render(status: str) -> None:
    rows = alerts.list_alerts(engine, actor, statuses=(status,), limit=300)
    if not rows:
        st.info(f"No {status} alerts.", icon=":material/notifications_off:")
        return
    for a in rows:
        with st.container(border=True):
            st.markdown(f"**{fmt.plain(a.title)}**")
            st.caption(
                f"#{a.id} · rule `{a.rule_code}` · {a.severity} · brand {a.brand or 'all'} · opened "
                f"{a.opened_at:%Y-%m-%d %H:%M} UTC · seen {a.occurrences}×"
            )
            with st.expander("Details"):
                st.code(json.dumps(a.detail, indent=2, default=str), language="json")
                history = alerts.alert_history(engine, actor, a.id) or {}
                if history.get("acknowledged_at"):
                    st.write(
                        f"Acknowledged by {fmt.plain(history['ack_by'])} at {fmt.when(history['acknowledged_at'])}"
                    )
                if history.get("resolved_at"):
                    st.write(f"Resolved by {fmt.plain(history['resolved_by'])} at {fmt.when(history['resolved_at'])}")
                if history.get("note"):
                    st.text(f"Note: {history['note']}")
            if not may_act or status == "resolved":
                continue
            note = st.text_input("Note", key=f"alert_note_{a.id}", placeholder="required to resolve")
            c1, c2, _ = st.columns([1, 1, 3])
            if status == "open" and c1.button("Acknowledge", key=f"alert_ack_{a.id}", icon=":material/visibility:"):
                act("ack", a.id, note)
            if c2.button("Resolve", key=f"alert_res_{a.id}", icon=":material/task_alt:"):
                act("res", a.id, note)


counts = {s: len(alerts.list_alerts(engine, actor, statuses=(s,), limit=5000)) for s in ("open", "acknowledged")}
tab_open, tab_ack, tab_resolved, tab_rules = st.tabs(
    [f"Open ({counts['open']})", f"Acknowledged ({counts['acknowledged']})", "Resolved", "Rules"]
)
with tab_open:
    render("open")
with tab_ack:
    render("acknowledged")
with tab_resolved:
    render("resolved")
with tab_rules:
    st.caption("Rules run after every ingestion. Thresholds are editable by an admin (audited).")
    rules = alerts.list_rules(engine)
    show_table(
        [
            {
                "rule": r["name"],
                "code": r["code"],
                "enabled": r["enabled"],
                "severity": r["severity"],
                "thresholds": ", ".join(f"{k}={v}" for k, v in r["params"].items()),
                "what": r["description"],
            }
            for r in rules
        ],
        hide_index=True,
        width="stretch",
    )
    if has_permission(actor, Permission.MANAGE_STAFF):
        by_code = {r["code"]: r for r in rules}
        code = st.selectbox("Edit rule", list(by_code), format_func=lambda c: by_code[c]["name"])
        rule = by_code[code]
        with st.form(f"rule_{code}_{rule['version']}"):
            params = {
                k: st.number_input(k, value=float(v), min_value=float(alert_rules.PARAM_BOUNDS[code][k][0]))
                for k, v in rule["params"].items()
                if k in alert_rules.PARAM_BOUNDS[code]
            }
            c1, c2 = st.columns(2)
            enabled = c1.checkbox("Enabled", value=rule["enabled"])
            severity = c2.selectbox(
                "Severity",
                ["info", "warning", "critical"],
                index=["info", "warning", "critical"].index(rule["severity"]),
            )
            reason = st.text_input("Reason for the change")
            if st.form_submit_button("Save rule"):
                key = f"rule_{code}_{rule['version']}"
                try:
                    res = alert_writes.update_rule(
                        engine,
                        actor,
                        code=code,
                        params={k: (int(v) if float(v).is_integer() else v) for k, v in params.items()},
                        enabled=enabled,
                        severity=severity,
                        expected_version=rule["version"],
                        reason=reason,
                        request_id=request_id(key),
                    )
                except ServiceError as exc:
                    st.error(exc.message)
                else:
                    flash(res.message)
                    st.rerun()

"""Alerts raised after each ingestion or at the moment of a critical action: open / acknowledged / resolved,
acknowledge and resolve (audited), how each critical alert was delivered (e-mail, webhook), and the rules with
their thresholds and recipients (an admin can change them)."""

import json

import streamlit as st

from app.services.alerts import reads as alerts
from app.services.alerts import rules as alert_rules
from app.services.alerts import writes as alert_writes
from app.ui import fmt, state
from app.ui.forms import action_form, flash, show_flash
from app.ui.guard import guard_page
from app.ui.table import show_table
from auth.permissions import Permission, has_permission

actor = guard_page(__file__)
engine = state.engine()
st.title("Alerts")
show_flash()
may_act = has_permission(actor, alert_rules.ACT_PERMISSION)
SEVERITY_ICON = {"critical": ":material/error:", "warning": ":material/warning:", "info": ":material/info:"}
DELIVERY_ICON = {"sent": "✓", "pending": "…", "failed": "✗"}


def show_deliveries(items: list[alerts.Delivery]) -> None:
    """One line per alert saying where it was sent; the details (attempts, next retry, last error) below."""
    if not items:
        return
    st.caption(
        "Delivery: "
        + " · ".join(f"{DELIVERY_ICON[d.status]} {d.channel} {fmt.plain(d.recipient)} ({d.status})" for d in items)
    )
    with st.expander("Delivery details"):
        show_table(
            [
                {
                    "channel": d.channel,
                    "recipient": d.recipient,
                    "status": d.status,
                    "attempts": d.attempts,
                    "next retry": d.next_retry_at if d.status == "pending" else None,
                    "sent": d.sent_at,
                    "last error": d.last_error,
                }
                for d in items
            ],
            hide_index=True,
            width="stretch",
        )


def act_on(a: alerts.Alert) -> None:
    """Acknowledge / resolve one alert: one form per alert, holding the alert's state as it was first shown."""
    form = action_form("alert", f"alert:{a.id}", version=a.version)
    note = st.text_input("Note", key=f"{form.key}:note", placeholder="required to resolve")
    c1, c2, _ = st.columns([1, 1, 3])
    fn = None
    if a.status == "open" and c1.button("Acknowledge", key=f"{form.key}:ack", icon=":material/visibility:"):
        fn = alert_writes.acknowledge
    if c2.button("Resolve", key=f"{form.key}:resolve", icon=":material/task_alt:"):
        fn = alert_writes.resolve
    if fn is not None:
        form.submit(
            lambda rid, version: fn(engine, actor, alert_id=a.id, note=note, expected_version=version, request_id=rid),
            after="flash",  # the alert moves to another tab
            on_success=lambda result: flash(f"Alert #{a.id}: {result.message}"),
        )


def render(status: str) -> None:
    rows = alerts.list_alerts(engine, actor, statuses=(status,), limit=300)
    if not rows:
        st.info(f"No {status} alerts.", icon=":material/notifications_off:")
        return
    sent = alerts.deliveries_for(engine, actor, [a.id for a in rows])
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
            show_deliveries(sent.get(a.id, []))
            if may_act and status != "resolved":
                act_on(a)


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
    st.caption(
        "Rules run after every ingestion; role grants, second-factor resets and large approved adjustments raise"
        " theirs at the moment of the action. A critical alert is also e-mailed to its rule's recipients and posted"
        " to the webhook when the rule has it on. Thresholds and recipients are editable by an admin (audited)."
    )
    rules = alerts.list_rules(engine, actor)
    show_table(
        [
            {
                "rule": r["name"],
                "code": r["code"],
                "enabled": r["enabled"],
                "severity": r["severity"],
                "thresholds": ", ".join(f"{k}={v}" for k, v in r["params"].items()),
                "e-mail to": ", ".join(r["email_recipients"]),
                "webhook": r["webhook"],
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
        form = action_form("alert_rule", f"alert_rule:{code}", version=rule["version"])
        if not form.show_done("Edit again"):
            with st.form(form.key):
                params = {
                    k: st.number_input(
                        k,
                        value=float(v),
                        min_value=float(alert_rules.PARAM_BOUNDS[code][k][0]),
                        key=f"{form.key}:{k}",
                    )
                    for k, v in rule["params"].items()
                    if k in alert_rules.PARAM_BOUNDS[code]
                }
                c1, c2 = st.columns(2)
                enabled = c1.checkbox("Enabled", value=rule["enabled"], key=f"{form.key}:enabled")
                severity = c2.selectbox(
                    "Severity",
                    ["info", "warning", "critical"],
                    index=["info", "warning", "critical"].index(rule["severity"]),
                    key=f"{form.key}:severity",
                )
                recipients = st.text_area(
                    "E-mail recipients of critical alerts (one address per line)",
                    value="\n".join(rule["email_recipients"]),
                    key=f"{form.key}:recipients",
                )
                webhook = st.checkbox(
                    "Post critical alerts to the webhook", value=rule["webhook"], key=f"{form.key}:webhook"
                )
                reason = st.text_input("Reason for the change", key=f"{form.key}:reason")
                if st.form_submit_button("Save rule", key=f"{form.key}:submit"):
                    form.submit(
                        lambda rid, version: alert_writes.update_rule(
                            engine,
                            actor,
                            code=code,
                            params={k: (int(v) if float(v).is_integer() else v) for k, v in params.items()},
                            enabled=enabled,
                            severity=severity,
                            recipients=recipients,
                            webhook=webhook,
                            expected_version=version,
                            reason=reason,
                            request_id=rid,
                        )
                    )

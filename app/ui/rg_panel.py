"""The responsible-gambling tab of Player 360: limits in force and pending, usage this day / week / month,
time-out and self-exclusion, the actions the viewer may take, the interaction log and the history.

Every form carries the player's RG version and a request id (`app.ui.forms`); the services decide.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st
from sqlalchemy.engine import Engine

from app.models import RG_CHANNELS, RG_OUTCOMES
from app.services.rg import reads as rg_reads
from app.services.rg import rules as rg_rules
from app.services.rg import writes as rg_writes
from app.ui import fmt
from app.ui import state as ui_state
from app.ui.forms import action_form
from app.ui.table import show_table
from auth.identity import Actor


def _limit_rows(data: dict) -> list[dict]:
    cur = data["currency"]
    rows = []
    for lim in data["limits"]:
        kind = lim["kind"]
        pending = f"{lim['pending']} from {fmt.when(lim['pending_until'])}" if lim["pending_id"] else None
        rows.append(
            {
                "limit": lim["limit"],
                "in_force": rg_rules.shown(kind, lim["in_force"], cur) if lim["in_force"] is not None else None,
                "since": lim["in_force_since"],
                "pending_change": pending,
                "used_this_period": rg_rules.shown(kind, lim["used"], cur),
                "remaining": None if lim["remaining"] is None else rg_rules.shown(kind, lim["remaining"], cur),
                "period_resets": lim["resets_at"],
            }
        )
    return rows


def render_rg_panel(actor: Actor, player_id: int, engine: Engine | None = None) -> None:
    """The RG tab for `player_id`, limited to what `actor` may see and do."""
    engine = engine or ui_state.engine()
    data = rg_reads.player_rg(engine, actor, player_id)
    if data is None:
        st.info("This player is not visible to you.")
        return
    if data["self_excluded_until"]:
        st.error(f"Self-excluded until {fmt.when(data['self_excluded_until'])}: no play and no deposits.")
    if data["timeout"]:
        st.warning(
            f"In a time-out until {fmt.when(data['timeout']['ends_at'])}: no play and no deposits. "
            "A time-out cannot be lifted before it ends.",
            icon=":material/timer:",
        )
    st.markdown("**Limits**")
    st.caption(
        "Usage is of the current calendar day, week (from Monday) and month, in UTC. A lower limit applies at once; "
        "a higher one or a removal only after a 24 h cooling-off (the limit in force stays until then)."
    )
    show_table(_limit_rows(data), hide_index=True, width="stretch")
    if data["may_lower"]:
        _actions(actor, engine, data)
    else:
        st.caption("Your role does not change responsible-gambling limits.")
    st.markdown("**Interactions**")
    if data["interactions"]:
        show_table(
            [{**i, "channel": rg_rules.CHANNEL_LABELS.get(i["channel"], i["channel"]),
              "outcome": rg_rules.OUTCOME_LABELS.get(i["outcome"], i["outcome"])} for i in data["interactions"]],
            hide_index=True, width="stretch",
        )  # fmt: skip
    else:
        st.caption("No responsible-gambling interactions logged.")
    with st.expander(f"Limit history ({len(data['history'])})"):
        if data["history"]:
            order = ("limit", "value", "status", "source", "requested_at", "effective_at", "requested_by", "reason",
                     "cancelled_at", "cancelled_by", "cancel_reason")  # fmt: skip
            show_table([{k: h[k] for k in order} for h in data["history"]], hide_index=True, width="stretch")
        else:
            st.caption("No limits set yet.")
    with st.expander(f"Time-outs ({len(data['timeouts'])})"):
        if data["timeouts"]:
            show_table(data["timeouts"], hide_index=True, width="stretch")
        else:
            st.caption("No time-outs.")
    with st.expander(f"Limit hits ({len(data['hits'])})"):
        st.caption("Deposits and bets the platform refused because they would pass a limit in force.")
        if data["hits"]:
            show_table(data["hits"], hide_index=True, width="stretch")
        else:
            st.caption("No limit hits.")


def _actions(actor: Actor, engine: Engine, data: dict) -> None:
    pid, cur, version = data["player_id"], data["currency"], data["version"]
    target = f"rg:{pid}"
    full = data["may_set"]
    if not full:
        st.caption(
            "You may lower a limit or add a new one, or set a time-out, when the player asks for it; raising or "
            "removing a limit needs compliance."
        )
    with st.expander("Set or change a limit"):
        form = action_form("rg_limit", target, version=version)
        if not form.show_done("Another limit change"):
            slots = rg_rules.limit_slots()
            with st.form(f"form:{form.key}"):
                slot = st.selectbox("Limit", slots, format_func=lambda s: rg_rules.describe(*s), key=f"{form.key}:slot")
                value = st.text_input(
                    f"New limit ({cur}; minutes per day for session time)", placeholder="e.g. 50.00 or 90",
                    key=f"{form.key}:value",
                )  # fmt: skip
                remove = st.checkbox("Remove this limit (after a 24 h cooling-off)", key=f"{form.key}:remove") if full \
                    else False  # fmt: skip
                asked = st.checkbox("The player asked for this change", key=f"{form.key}:asked")
                reason = st.text_area("Reason (required)", max_chars=2000, key=f"{form.key}:reason")
                if st.form_submit_button("Apply", type="primary", key=f"{form.key}:submit"):
                    kind, period = slot
                    form.submit(
                        lambda rid, v: rg_writes.set_limit(
                            engine, actor, player_id=pid, kind=kind, period=period,
                            value=None if remove else value, reason=reason, expected_version=v, request_id=rid,
                            at_player_request=asked, currency=None if kind == "session_time" else cur,
                        )
                    )  # fmt: skip
    pending = [lim for lim in data["limits"] if lim["pending_id"]]
    if pending and full:
        with st.expander(f"Pending changes ({len(pending)})"):
            for lim in pending:
                _cancel_form(actor, engine, target, version, lim)
    with st.expander("Time-out (24 hours – 6 weeks)"):
        form = action_form("rg_timeout", target, version=version)
        if not form.show_done("Another time-out"):
            with st.form(f"form:{form.key}"):
                hours = st.selectbox(
                    "Length", list(rg_rules.TIMEOUT_CHOICES), format_func=rg_rules.TIMEOUT_CHOICES.get,
                    key=f"{form.key}:hours",
                )  # fmt: skip
                asked = st.checkbox("The player asked for this time-out", key=f"{form.key}:asked")
                reason = st.text_area("Reason (required)", max_chars=2000, key=f"{form.key}:reason")
                st.caption("The player cannot play or deposit until it ends; it cannot be lifted early.")
                if st.form_submit_button("Start time-out", type="primary", key=f"{form.key}:submit"):
                    form.submit(
                        lambda rid, v: rg_writes.set_timeout(
                            engine, actor, player_id=pid, hours=hours, reason=reason, expected_version=v,
                            request_id=rid, at_player_request=asked,
                        )
                    )  # fmt: skip
    with st.expander("Log an interaction"):
        form = action_form("rg_interaction", target)
        if not form.show_done("Another interaction"):
            with st.form(f"form:{form.key}"):
                channel = st.selectbox(
                    "Contact by", RG_CHANNELS, format_func=rg_rules.CHANNEL_LABELS.get, key=f"{form.key}:channel"
                )
                outcome = st.selectbox(
                    "Outcome", RG_OUTCOMES, format_func=rg_rules.OUTCOME_LABELS.get, key=f"{form.key}:outcome"
                )
                note = st.text_area("Note (required)", max_chars=2000, key=f"{form.key}:note")
                follow = st.checkbox("Follow up", key=f"{form.key}:follow")
                today = dt.datetime.now(dt.UTC).date()
                due = st.date_input(
                    "Follow-up due", value=today + dt.timedelta(days=7), min_value=today, format=fmt.DATE_INPUT_FORMAT,
                    key=f"{form.key}:due",
                )  # fmt: skip
                if st.form_submit_button("Log interaction", type="primary", key=f"{form.key}:submit"):
                    form.submit(
                        lambda rid, _v: rg_writes.log_interaction(
                            engine, actor, player_id=pid, channel=channel, outcome=outcome, note=note,
                            follow_up_due=due if follow else None, request_id=rid,
                        )
                    )  # fmt: skip


def _cancel_form(actor: Actor, engine: Engine, target: str, version: int, lim: dict) -> None:
    form = action_form(f"rg_cancel_{lim['pending_id']}", target, version=version)
    if form.show_done("Done"):
        return
    with st.form(f"form:{form.key}"):
        st.markdown(f"**{lim['limit']}**: {fmt.plain(lim['pending'])} from {fmt.when(lim['pending_until'])}")
        reason = st.text_input("Reason (required)", key=f"{form.key}:reason")
        if st.form_submit_button("Cancel the pending change", key=f"{form.key}:submit"):
            form.submit(
                lambda rid, v: rg_writes.cancel_pending(
                    engine, actor, limit_id=lim["pending_id"], reason=reason, expected_version=v, request_id=rid
                )
            )

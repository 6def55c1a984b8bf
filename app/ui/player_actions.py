"""The actions panel of a player (embedded in Player 360): status changes and an adjustment request.

Only the actions the viewer may take are shown; each form carries the player's version and a request id.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st
from sqlalchemy.engine import Engine

from app.models import ADJUSTMENT_REASONS
from app.services.payments import reads as adjustment_reads
from app.services.payments import writes as adjustments
from app.services.players import writes as accounts
from app.ui import state as ui_state
from app.ui.forms import action_form
from auth.identity import Actor
from auth.permissions import Permission, has_permission


def render_player_actions(actor: Actor, player_id: int, engine: Engine | None = None) -> None:
    """Status actions and an adjustment request for `player_id`, limited to what `actor` may do."""
    engine = engine or ui_state.engine()
    player = accounts.player_status(engine, actor, player_id)
    if player is None:
        st.info("This player is not visible to you.")
        return
    until = player["self_excluded_until"]
    status = player["account_status"] + (f" until {until:%Y-%m-%d}" if until else "")
    st.markdown(f"**Account status:** {status} · **version** {player['version']}")
    options = accounts.status_options(actor, player)
    if options:
        render_status_form(actor, engine, player, options)
    if has_permission(actor, Permission.REQUEST_ADJUSTMENT) and actor.sees_brand(player["operator_id"]):
        with st.expander("Request a balance adjustment"):
            render_adjustment_request(actor, engine, adjustment_reads.adjustment_player(engine, actor, player_id))
    if not options and not has_permission(actor, Permission.REQUEST_ADJUSTMENT):
        st.caption("Your role has no actions on this player.")


def render_status_form(actor: Actor, engine: Engine, player: dict, options: list[accounts.StatusOption]) -> None:
    form = action_form("status", f"player:{player['id']}", version=player["version"])
    if form.show_done("Another status change"):
        return
    labels = {o.status: o.label for o in options}
    with st.form(f"form:{form.key}"):
        st.markdown("**Change account status**")
        new_status = st.selectbox("Action", list(labels), format_func=lambda s: f"{labels[s]} ({s})")
        earliest = accounts.min_self_exclusion_end(dt.datetime.now(dt.UTC).date())
        end = st.date_input(
            "Self-exclusion ends on (self-exclusion only, at least 6 months ahead)",
            value=earliest,
            min_value=earliest,
            format="YYYY-MM-DD",
        )
        reason = st.text_area("Reason (required)", max_chars=2000)
        if st.form_submit_button("Apply", type="primary", key=f"{form.key}:submit"):
            form.submit(
                lambda rid, version: accounts.change_status(
                    engine,
                    actor,
                    player_id=player["id"],
                    new_status=new_status,
                    reason=reason,
                    expected_version=version,
                    request_id=rid,
                    self_excluded_until=end if new_status == "self_excluded" else None,
                ),
            )


def render_adjustment_request(actor: Actor, engine: Engine, player: dict | None) -> None:
    """The request form for one player (shared by Player 360 and the Adjustments page)."""
    if player is None:
        st.info("No such player in your brands.")
        return
    form = action_form("adjust", f"player:{player['id']}", version=player["version"])
    st.caption(
        f"{player['username']} · {player['brand']} · cash {player['cash_balance']} {player['currency']} · "
        f"requests above {player['adjustment_threshold']} {player['currency']} need a second person's approval, "
        f"and so do small ones once your total for this player ({player.get('player_window_days', 30)} days) "
        "or for this brand today passes it"
    )
    if form.show_done("Another adjustment"):
        return
    with st.form(f"form:{form.key}"):
        direction = st.radio("Direction", ["credit", "debit"], horizontal=True)
        amount = st.text_input(f"Amount ({player['currency']})", placeholder="e.g. 25.00")
        reason_code = st.selectbox("Reason code", ADJUSTMENT_REASONS)
        note = st.text_area("Note (required)", max_chars=2000)
        if st.form_submit_button("Submit request", type="primary", key=f"{form.key}:submit"):
            form.submit(
                lambda rid, version: adjustments.request_adjustment(
                    engine,
                    actor,
                    player_id=player["id"],
                    direction=direction,
                    amount=amount,
                    reason_code=reason_code,
                    note=note,
                    request_id=rid,
                    expected_version=version,
                ),
            )

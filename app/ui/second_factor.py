"""The second factor in the UI: enrolment (a QR code rendered here, the secret as text beside it, switched on
only by a valid code), the recovery codes shown once, the code step of the sign-in, and "My account"."""

from __future__ import annotations

import io

import segno
import streamlit as st
from sqlalchemy.engine import Engine

from app.services.core import ServiceError
from app.services.staff import second_factor as sf
from app.settings import Settings
from app.ui import fmt, state
from auth.identity import Actor

ENROLMENT_KEY = "pitboss_2fa_enrolment"  # the started enrolment of this tab (its secret, until confirmed)
CODES_KEY = "pitboss_2fa_new_codes"  # recovery codes just issued: shown until the user has saved them


def qr_png(uri: str) -> bytes:
    """The QR code of an `otpauth://` URI as PNG, rendered locally (segno; nothing leaves the server)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="png", scale=5, border=2)
    return buffer.getvalue()


def render_enrolment(engine: Engine, session_id: str, settings: Settings) -> sf.Bound | None:
    """Set up a second factor: start, scan or type the key, confirm with a code. Returns the confirmed binding in
    the run that confirmed it (its recovery codes are then kept for `render_new_recovery_codes`)."""
    enrolment: sf.Enrolment | None = st.session_state.get(ENROLMENT_KEY)
    if enrolment is None:
        if st.button("Set up a second factor", type="primary", icon=":material/qr_code_2:", key="pitboss_2fa_begin"):
            try:
                st.session_state[ENROLMENT_KEY] = sf.begin_enrolment(engine, session_id, settings=settings)
            except ServiceError as exc:
                st.error(exc.message, icon=":material/error:")
                return None
            st.rerun()
        return None
    st.markdown("Scan this QR code with an authenticator app, or type the key into it; then type the code it shows.")
    qr, key = st.columns([1, 2])
    qr.image(qr_png(enrolment.uri), width=220)
    with key:
        st.caption("Key (time-based, 6 digits, 30 seconds)")
        st.code(enrolment.grouped_secret, language=None)
        st.caption("It is shown only while you set up; keep it nowhere else.")
    with st.form("pitboss_2fa_confirm", clear_on_submit=True):
        code = st.text_input("Code the app shows now", max_chars=8, autocomplete="one-time-code")
        submitted = st.form_submit_button("Confirm and switch on", type="primary")
    if st.button("Cancel the set-up", key="pitboss_2fa_cancel"):
        st.session_state.pop(ENROLMENT_KEY, None)
        st.rerun()
    if not submitted:
        return None
    try:
        bound = sf.confirm_enrolment(
            engine, session_id, code, settings=settings, client=state.client_label(), client_ip=state.client_ip()
        )
    except ServiceError as exc:
        st.error(exc.message[:1].upper() + exc.message[1:] + ".", icon=":material/error:")
        return None
    st.session_state.pop(ENROLMENT_KEY, None)
    st.session_state[CODES_KEY] = bound.recovery_codes
    return bound


def render_new_recovery_codes() -> None:
    """The recovery codes just issued, until the user confirms they are saved (they are never shown again)."""
    codes = st.session_state.get(CODES_KEY)
    if not codes:
        return
    with st.container(border=True, key="pitboss_2fa_codes"):
        st.success("Your second factor is on.", icon=":material/verified_user:")
        st.warning(
            "Save these recovery codes now, somewhere safe: each one signs you in once if you lose your phone. "
            "They are not shown again.",
            icon=":material/key:",
        )
        st.code("\n".join(codes), language=None)
        if st.button("I have saved my recovery codes", key="pitboss_2fa_codes_saved"):
            st.session_state.pop(CODES_KEY, None)
            st.rerun()


def render_second_step(engine: Engine, session_id: str, settings: Settings) -> sf.SecondStep | None:
    """The code form after the password; the result of a submitted code (None before that)."""
    st.subheader("Second factor")
    st.caption("Type the 6-digit code from your authenticator app, or one of your recovery codes.")
    with st.form("pitboss_2fa_step", clear_on_submit=True):
        code = st.text_input("Code", max_chars=20, autocomplete="one-time-code")
        submitted = st.form_submit_button("Verify", type="primary")
    if not submitted:
        return None
    return sf.verify_second_step(
        engine, session_id, code, settings=settings, client=state.client_label(), client_ip=state.client_ip()
    )


def render_account_security(engine: Engine, actor: Actor, settings: Settings) -> None:
    """The "My account" section: the second factor's state, and its set-up while it is off."""
    try:
        status = sf.status(engine, actor.session_id, settings=settings)
    except ServiceError as exc:
        st.error(exc.message, icon=":material/error:")
        return
    if status.enabled:
        st.success(
            f"Your second factor is on (since {fmt.when(status.confirmed_at)}).", icon=":material/verified_user:"
        )
        st.write(f"Unused recovery codes: {status.recovery_codes_left}")
        st.caption(
            "Lost your phone? Sign in with a recovery code, then ask an admin to reset your second factor "
            "and set it up again."
        )
        return
    if status.required:
        st.warning("Your role must sign in with a second factor.", icon=":material/gpp_maybe:")
    else:
        st.info("Your second factor is off. Set it up to protect your account.", icon=":material/gpp_maybe:")
    if render_enrolment(engine, actor.session_id or "", settings) is not None:
        st.rerun()

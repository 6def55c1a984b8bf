"""Small helpers for action forms: a request id per form (a double submit applies once) and flash messages."""

from __future__ import annotations

import streamlit as st

from app.services.core import new_request_id

_RID_PREFIX = "pitboss_rid_"
_FLASH_KEY = "pitboss_flash"


def request_id(form: str) -> str:
    """The request id of `form` (stable across reruns until `rotate_request_id`)."""
    key = _RID_PREFIX + form
    if key not in st.session_state:
        st.session_state[key] = new_request_id()
    return st.session_state[key]


def rotate_request_id(form: str) -> None:
    """After a form's action succeeded: the next submit is a new request."""
    st.session_state[_RID_PREFIX + form] = new_request_id()


def flash(message: str) -> None:
    """A success message shown once on the next run (use before st.rerun())."""
    st.session_state[_FLASH_KEY] = message


def show_flash() -> None:
    message = st.session_state.pop(_FLASH_KEY, None)
    if message:
        st.success(message, icon=":material/check_circle:")

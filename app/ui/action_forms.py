"""Form state for audited actions: a request id and the target's version, kept in session state.

A form captures the target's version and a fresh request id when it is first shown. Submitting sends
both: a double click (or a retry) reuses the same request id and is applied once; a target changed by
someone else since the form was shown is refused as stale. After a success the form shows the result
and a "new" button instead of itself, so a queued second click cannot submit again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from app.services.core import ActionResult, ServiceError, Stale, new_request_id

PREFIX = "pitboss_form:"


def form_state(key: str, version: int | None) -> dict[str, Any]:
    """The form's state (created with `version` and a new request id when absent)."""
    skey = PREFIX + key
    if skey not in st.session_state:
        st.session_state[skey] = {"rid": new_request_id(), "version": version, "done": None}
    return st.session_state[skey]


def reset_form(key: str) -> None:
    """Forget the form's state: the next run shows it again with the current version and a new request id."""
    st.session_state.pop(PREFIX + key, None)


def is_done(key: str) -> bool:
    """True when the form has succeeded (and shows its result instead of itself)."""
    return bool((st.session_state.get(PREFIX + key) or {}).get("done"))


def show_done(key: str, new_label: str = "New action") -> bool:
    """When the form already succeeded, show the result and a button to start over; True if shown."""
    state = st.session_state.get(PREFIX + key)
    if not state or not state.get("done"):
        return False
    st.success(state["done"], icon=":material/check_circle:")
    st.button(new_label, key=f"{PREFIX}{key}:new", on_click=reset_form, args=(key,))
    return True


def submit(key: str, action: Callable[[str, int | None], ActionResult]) -> ActionResult | None:
    """Run `action(request_id, expected_version)`; show the outcome; return the result (None when refused)."""
    state = st.session_state[PREFIX + key]
    try:
        result = action(state["rid"], state["version"])
    except Stale as exc:
        reset_form(key)
        st.error(exc.message, icon=":material/sync_problem:")
        return None
    except ServiceError as exc:
        st.error(exc.message, icon=":material/error:")
        return None
    state["done"] = result.message + (" (this request was already applied once)" if result.replayed else "")
    return result

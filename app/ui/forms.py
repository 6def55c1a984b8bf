"""The one form mechanism of the action pages: a form keeps its request id and its target's version.

When a form is FIRST SHOWN it captures the version of its target (as the page read it) and a fresh request id,
kept in session state under (form, target). Every submit sends both, so

- a double click or a retry reuses the request id and is applied once (the service returns the first result);
- a target someone else changed since the form was shown is refused as stale by the service (and audited),
  and keeps being refused until the user reloads the form: re-reading the version when the form is submitted
  would make that check pass on every stale form.

The pair is renewed only after a successful submit (one's own success also renews the other forms on the same
target: one's own change does not make one's other forms stale) or an explicit reload ("Reload" after a stale
refusal, "New …" after a result, or the page calling `renew_target` after an action of its own on the target).
A ServiceError is shown as its message (safe to show); a stale one says the target changed and offers Reload.

After a success the form either
- keeps its result in place of itself (`after="done"`, for forms whose target stays on the page) until the user
  starts a new one, so a queued second click finds no form to submit; or
- is renewed at once and its result is shown once at the top of the page (`after="flash"`, with `show_flash()`
  on the page) — for actions after which the form is no longer shown (an alert moved on, a case was decided).

Usage::

    form = action_form("staff_disable", f"staff:{user['id']}", version=user["version"])
    if not form.show_done("Another change"):
        with st.form(form.key):
            reason = st.text_input("Reason")
            if st.form_submit_button("Disable"):
                form.submit(lambda rid, version: staff.set_disabled(
                    engine, actor, staff_id=user["id"], disabled=True, reason=reason,
                    expected_version=version, request_id=rid))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import streamlit as st

from app.services.core import Invalid, ServiceError, Stale, new_request_id

_STATES = "pitboss_forms"
_FLASH_KEY = "pitboss_flash"


def _states() -> dict[str, dict[str, Any]]:
    if _STATES not in st.session_state:
        st.session_state[_STATES] = {}
    return st.session_state[_STATES]


def form_key(form: str, target: object = None) -> str:
    """The key of `form` on `target` (also usable as the st.form key and as a prefix of its widgets' keys)."""
    return form if target is None else f"{form}:{target}"


def _forget(key: str) -> None:
    """Drop a form's state and the values of its widgets (those keyed `f"{key}:…"`)."""
    _states().pop(key, None)
    for widget in [k for k in st.session_state if isinstance(k, str) and k.startswith(f"{key}:")]:
        del st.session_state[widget]


def reload_form(form: str, target: object = None) -> None:
    """Forget the form's state: the next run shows it again with the current version and a new request id
    (and the widgets keyed `f"{form.key}:…"` with their initial values)."""
    _forget(form_key(form, target))


def renew_target(target: object) -> None:
    """Renew every form on `target` that has not finished (after the page's own action changed the target)."""
    for key in [k for k, s in _states().items() if s["target"] == str(target) and not s["done"]]:
        _forget(key)


def flash(message: str) -> None:
    """A success message shown once on the next run (use before st.rerun())."""
    st.session_state[_FLASH_KEY] = message


def show_flash() -> None:
    message = st.session_state.pop(_FLASH_KEY, None)
    if message:
        st.success(message, icon=":material/check_circle:")


def error_text(exc: ServiceError) -> str:
    """The message of a refusal; an Invalid with per-field errors lists them (each names its field by its label,
    not by its key)."""
    errors = (exc.detail or {}).get("errors") if isinstance(exc, Invalid) else None
    if isinstance(errors, dict) and errors:
        return "Please fix: " + "; ".join(errors.values())
    return exc.message


class ActionForm:
    """One action form on one target (see the module docstring); create it with `action_form`."""

    def __init__(self, form: str, target: object, version: Any) -> None:
        self.form, self.target = form, target
        self.key = form_key(form, target)
        states = _states()
        if self.key not in states:
            states[self.key] = {"target": None if target is None else str(target), "rid": new_request_id(),
                                "version": version, "done": None, "stale": None}  # fmt: skip
        self.state = states[self.key]
        self._notice = st.container()  # messages about the form go above it (outside an st.form)
        self._reload_shown = False
        if not self.state["done"]:
            if self.state["stale"]:
                self._stale(self.state["stale"])
            elif version != self.state["version"]:
                self._stale(
                    "This item changed since you opened this form (someone else acted on it): reload the form "
                    "to see the current state before you submit.",
                    warn=True,
                )

    @property
    def request_id(self) -> str:
        return self.state["rid"]

    @property
    def version(self) -> Any:
        """The target's version when the form was first shown."""
        return self.state["version"]

    def _stale(self, message: str, *, warn: bool = False) -> None:
        (self._notice.warning if warn else self._notice.error)(message, icon=":material/sync_problem:")
        if not self._reload_shown:
            self._reload_shown = True
            self._notice.button(
                "Reload",
                key=f"pitboss_reload:{self.key}",
                icon=":material/refresh:",
                on_click=reload_form,
                args=(self.form, self.target),
            )

    def show_done(self, new_label: str = "New action") -> bool:
        """When the form already succeeded, show its result and a button to start a new one; True if shown."""
        done = self.state["done"]
        if not done:
            return False
        self._notice.success(done, icon=":material/check_circle:")
        self._notice.button(
            new_label, key=f"pitboss_new:{self.key}", on_click=reload_form, args=(self.form, self.target)
        )
        return True

    def submit(
        self,
        action: Callable[[str, Any], Any],
        *,
        after: Literal["done", "flash"] = "done",
        on_success: Callable[[Any], None] | None = None,
        nothing: str | None = None,
        describe: Callable[[Any], str] | None = None,
    ) -> Any:
        """Run `action(request_id, version)` and show its outcome. On success: keep the result or renew (see
        `after`), call `on_success(result)` and rerun the page (so it does not return). Returns None when
        refused, or when the action returned None: it found nothing to do (`nothing` says so); the form stays.
        `describe(result)` words the result (default: its `message`)."""
        try:
            result = action(self.state["rid"], self.state["version"])
        except Stale as exc:
            self.state["stale"] = exc.message
            self._stale(exc.message)
            return None
        except ServiceError as exc:
            self._notice.error(error_text(exc), icon=":material/error:")
            return None
        if result is None:
            if nothing:
                self._notice.info(nothing, icon=":material/info:")
            return None
        message = describe(result) if describe is not None else getattr(result, "message", "done")
        if getattr(result, "replayed", False):
            message += " (this request was already applied once)"
        if after == "flash":
            reload_form(self.form, self.target)
            flash(message)
        else:
            self.state["done"] = message
        if self.target is not None:
            renew_target(self.target)  # the other forms on this target: one's own change does not make them stale
        if on_success is not None:
            on_success(result)
        st.rerun()


def action_form(form: str, target: object = None, *, version: Any = None) -> ActionForm:
    """The action form `form` on `target` (e.g. "staff:5"); `version` is the target's version as read now —
    captured when the form is first shown, compared on later runs (a changed target is announced)."""
    return ActionForm(form, target, version)

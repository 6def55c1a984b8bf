"""The errors of the action path (re-exported by `app.services.core`): a refusal's `message` is safe to show."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An action was refused or failed; `message` is safe to show to the user. Nothing was changed."""

    outcome = "failed"

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class Denied(ServiceError):
    """Not allowed: missing permission, brand outside the actor's scope, ended session, four-eyes rule."""

    outcome = "denied"


class Invalid(ServiceError):
    """The input is wrong (the message says what to fix)."""


class Stale(ServiceError):
    """The target changed since the form was loaded; reload and try again."""


class NotFound(ServiceError):
    """The target does not exist (or is not visible)."""


class AlreadyDone(ServiceError):
    """The target is already in the state this action would put it in (e.g. already decided)."""

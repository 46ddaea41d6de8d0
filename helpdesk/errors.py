"""The one error every action raises when a request makes sense but can't be done."""

from __future__ import annotations


class ActionError(Exception):
    """Shown to the person as it is: pages flash it, the API answers 400 with its code."""

    def __init__(self, message: str, *, code: str = "invalid", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        # The form field the error belongs to, when there is one (pages show it there).
        self.field = field


class ConflictError(ActionError):
    """The request contradicts what is already stored (the API answers 409), e.g. an
    Idempotency-Key resent with a different message."""

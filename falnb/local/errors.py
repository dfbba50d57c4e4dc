"""The local server's own errors (what apps raise to answer is :mod:`falnb.local.apperror`)::

Exception
 └── AppError (falnb.local.apperror)   an app's chosen error answer: status and body
RuntimeError
 └── FaultInjectionDisabledError       a fault rule on a server not started for faults
ValueError
 ├── InvalidJSONError                  a body that is not strict JSON (answered 422)
 └── BodyTooLargeError                 a body over the server's limit (answered 413)
"""

from __future__ import annotations

__all__ = ["BodyTooLargeError", "FaultInjectionDisabledError", "InvalidJSONError"]


class FaultInjectionDisabledError(RuntimeError):
    """A fault rule was added on a server not started with fault injection."""


class InvalidJSONError(ValueError):
    """A body that is not strict JSON; ``error_type`` is the pydantic-style type fal uses."""

    def __init__(self, message: str, error_type: str = "json_invalid") -> None:
        super().__init__(message)
        self.error_type = error_type


class BodyTooLargeError(ValueError):
    """A body larger than the server accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is larger than the limit of {limit} bytes")
        self.limit = limit

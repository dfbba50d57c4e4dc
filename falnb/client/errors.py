"""One error hierarchy for everything the fal protocol can answer.

Every message is one readable line naming the field or the fix. No message, repr or log line
ever contains the key. The tree (``FalError`` and ``MissingCredentialsError`` are defined in
the shared layer, :mod:`falnb._errors`, which the settings see too; the lock's errors,
:mod:`falnb.repro.errors`, hang below :class:`FalError` as well)::

    FalError
     ├── MissingCredentialsError    no key for a target that needs one
     ├── HTTPError                  an error status (request id, error type attached)
     │    ├── ValidationError       422, with ``field_errors``
     │    └── RateLimitedError      429, with ``retry_after``
     ├── ConnectionFailedError      unreachable after retries; also ``httpx.TransportError``
     ├── RequestTimeoutError        the caller's timeout passed (also ``TimeoutError``)
     ├── RequestCancelledError      cancelled by the caller, an interrupt or a timeout
     ├── RequestPendingError        contact lost too long; the request may still run
     ├── StreamError                an error mid-stream
     ├── RealtimeError              a realtime connection failed or the app said ``x-fal-error``
     └── WebhookVerificationError   a webhook's signature, timestamp or headers did not verify
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from falnb._errors import FalError, MissingCredentialsError
from falnb._protocol import describe_field_errors

__all__ = [
    "ConnectionFailedError",
    "FalError",
    "FieldError",
    "HTTPError",
    "MissingCredentialsError",
    "RateLimitedError",
    "RealtimeError",
    "RequestCancelledError",
    "RequestPendingError",
    "RequestTimeoutError",
    "StreamError",
    "ValidationError",
    "WebhookVerificationError",
]

FieldError = dict[str, Any]
"""One entry of a 422 ``detail`` list: ``{"loc": [...], "msg": str, "type": str, ...}``."""


class ConnectionFailedError(FalError, httpx.TransportError):
    """The server could not be reached, or the connection broke, after any retries.

    Also an ``httpx.TransportError``, so code that catches httpx's errors keeps working.
    """


class HTTPError(FalError):
    """The server answered with an error status.

    ``status_code`` is the HTTP status (fal-client's name; ``status`` is the same number),
    ``detail`` is the body's ``detail`` (a string or fal's list of field errors), ``error_type``
    fal's request-error type (``request_timeout``, ``runner_server_error`` ...), ``request_id``
    the ``x-fal-request-id`` header when present.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        url: str = "",
        detail: Any = None,
        error_type: str | None = None,
        request_id: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.url = url
        self.detail = detail
        self.error_type = error_type
        self.request_id = request_id
        self.body = body
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def status(self) -> int:
        """The HTTP status: an alias of :attr:`status_code`."""
        return self.status_code

    @property
    def timeout_type(self) -> str | None:
        return self.headers.get("x-fal-request-timeout-type")

    @property
    def is_user_timeout(self) -> bool:
        """A 504 caused by the caller's own ``start_timeout``: never retried."""
        return self.status_code == 504 and self.timeout_type == "user"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code}, "
            f"error_type={self.error_type!r}, request_id={self.request_id!r})"
        )


class ValidationError(HTTPError):
    """422: the arguments did not validate. ``field_errors`` always holds a list."""

    @property
    def field_errors(self) -> list[FieldError]:
        detail = self.detail
        if isinstance(detail, list):
            return [e if isinstance(e, dict) else {"loc": ["body"], "msg": str(e)} for e in detail]
        return [{"loc": ["body"], "msg": str(detail), "type": "value_error"}]

    def errors_for(self, field: str) -> list[FieldError]:
        """The field errors whose ``loc`` ends with ``field``."""
        return [e for e in self.field_errors if (e.get("loc") or [None])[-1] == field]

    @staticmethod
    def describe(detail: Any) -> str:
        """A 422 ``detail`` as one line (the field names without ``body``)."""
        return describe_field_errors(detail)


class RateLimitedError(HTTPError):
    """429: too many concurrent requests. ``retry_after`` in seconds when the server said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class RequestTimeoutError(FalError, TimeoutError):
    """The request did not finish within the caller's timeout; falnb cancelled it."""

    def __init__(self, message: str, *, timeout: float, request_id: str | None = None) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.request_id = request_id


class RequestCancelledError(FalError):
    """The request was cancelled (by the caller, an interrupt or a timeout)."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class RequestPendingError(FalError):
    """The wait lost the server for too long; the request was not cancelled and may still run.

    Nothing was settled: the request may be done (and paid for) by now. ``request_id`` picks it
    up later (``client.get_handle(endpoint, request_id)``; a ``%%fal`` re-run re-attaches).
    """

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class StreamError(FalError):
    """A streaming endpoint reported an error mid-stream, after its answer had begun.

    fal's apps send only ``data:`` events, so an error after the first event is a data payload
    the app chose (fal's toolkit sends ``{"error": "..."}``): ``detail`` is that error,
    ``error_type`` its type when given, ``payload`` the whole event, ``request_id`` the
    stream's. (A stream that breaks off instead raises ConnectionFailedError.)
    """

    def __init__(
        self,
        message: str,
        *,
        detail: Any = None,
        error_type: str | None = None,
        request_id: str | None = None,
        payload: Any = None,
    ) -> None:
        super().__init__(message)
        self.detail = detail
        self.error_type = error_type
        self.request_id = request_id
        self.payload = payload


class RealtimeError(FalError):
    """A realtime connection failed or the app sent an ``x-fal-error`` message."""

    def __init__(self, error: str, reason: str = "", payload: Any = None) -> None:
        super().__init__(f"{error}: {reason}" if reason else error)
        self.error = error
        self.reason = reason
        self.payload = payload


class WebhookVerificationError(FalError):
    """A webhook's signature, timestamp or headers did not verify."""

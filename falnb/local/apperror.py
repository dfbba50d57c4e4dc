"""How a local app answers with an error of its choosing.

Raise :class:`AppError` from a handler to answer with that status and body; the queue stores
it and its result endpoint replays it, as fal does. Any other exception becomes
``500 {"detail": "<ExcType>: msg", "error_type": "runner_server_error"}``.

Example::

    raise AppError(400, "prompt is empty", error_type="bad_request")
    raise validation_error(("prompt", "field required", "missing"))
"""

from __future__ import annotations

from typing import Any

__all__ = ["AppError", "validation_error"]


class AppError(Exception):
    """An error answer from an app: ``status_code`` with ``{"detail": detail[, "error_type"]}``."""

    def __init__(
        self,
        status_code: int,
        detail: Any,
        error_type: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        if not 400 <= status_code <= 599:
            raise ValueError(f"an AppError status must be 4xx or 5xx, not {status_code}")
        super().__init__(detail if isinstance(detail, str) else f"HTTP {status_code}")
        self.status_code = status_code
        self.detail = detail
        self.error_type = error_type
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.detail}
        if self.error_type:
            body["error_type"] = self.error_type
        return body

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.error_type:
            headers.setdefault("x-fal-error-type", self.error_type)
        return headers

    def message(self) -> str:
        """One line for status bodies and webhooks (``error`` field)."""
        if isinstance(self.detail, str):
            return self.detail
        return f"Invalid status code: {self.status_code}"


def validation_error(*fields: tuple[str, str, str]) -> AppError:
    """A 422 with fal's field-error list, from ``(field, msg, type)`` triples."""
    detail = [{"loc": ["body", name], "msg": msg, "type": kind} for name, msg, kind in fields]
    return AppError(422, detail)

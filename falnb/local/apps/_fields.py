"""Reading a built-in app's arguments so that one 422 names every bad field, as pydantic does.

Each check raises fal's ``AppError(422, [{"loc": ["body", *field], "msg", "type"}])``;
:class:`Fields` runs checks, keeps their field errors and a stand-in value, and
:meth:`Fields.check` raises them all at once. Example::

    fields = Fields(arguments)
    prompt = fields.read(read_prompt, "")
    steps = fields.read(read_integer, 1, "steps", 1, 1, 50)
    fields.check()  # 422 listing prompt and steps if both were bad
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

from falnb.local.apperror import AppError

__all__ = ["Fields", "invalid"]

T = TypeVar("T")
FieldPath = str | tuple[str, ...]


def field_error(field: FieldPath, msg: str, kind: str) -> dict[str, Any]:
    loc = [field] if isinstance(field, str) else list(field)
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


def invalid(field: FieldPath, msg: str, kind: str = "value_error") -> NoReturn:
    """Raise fal's 422 ``{"detail": [{"loc": ["body", *field], "msg", "type"}]}``."""
    raise AppError(422, [field_error(field, msg, kind)])


class Fields:
    """The arguments of one request, read check by check; bad fields are kept, not raised."""

    def __init__(self, arguments: Mapping[str, Any]) -> None:
        self.arguments = arguments
        self.errors: list[dict[str, Any]] = []

    def read(self, check: Callable[..., T], fallback: T, *args: Any, **kwargs: Any) -> T:
        """``check(arguments, *args, **kwargs)``, or ``fallback`` once its field errors are kept."""
        try:
            return check(self.arguments, *args, **kwargs)
        except AppError as exc:
            if exc.status_code != 422 or not isinstance(exc.detail, list):
                raise
            self.errors.extend(exc.detail)
            return fallback

    def invalid(self, field: FieldPath, msg: str, kind: str = "value_error") -> None:
        self.errors.append(field_error(field, msg, kind))

    def check(self) -> None:
        """Raise one 422 listing every bad field read so far (nothing if all were good)."""
        if self.errors:
            raise AppError(422, list(self.errors))

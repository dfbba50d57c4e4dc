"""Reading request bodies: a size limit and strict JSON, for every route that takes JSON.

Python's ``json`` accepts ``NaN``/``Infinity`` (and turns ``1e400`` into infinity), which no
JSON answer can carry back, and recurses once per nesting level. Either used to reach a
handler, a queued job or the journal and fail there as a 500. Here they are refused up front:

* :func:`loads_strict` parses finite numbers and real text only (no lone surrogates, which
  no UTF-8 answer can carry), at most :data:`MAX_DEPTH` levels deep;
* :func:`read_limited` reads at most ``limit`` bytes.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request

from falnb.local.errors import BodyTooLargeError, InvalidJSONError

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_DEPTH",
    "BodyTooLargeError",
    "InvalidJSONError",
    "loads_strict",
    "read_limited",
]

#: Default limit of run, stream and queue bodies (``LocalServer(max_body_bytes=)``).
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
#: Deepest nesting accepted; real inputs are a few levels deep, and far below this every
#: later step (handler, JSON answer, journal copy) stays clear of Python's recursion limit.
MAX_DEPTH = 100


def _no_constant(name: str) -> Any:
    raise InvalidJSONError(f"{name} is not valid JSON: numbers must be finite", "finite_number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJSONError(f"{text} is out of range: numbers must be finite", "finite_number")
    return value


def _check_value(value: Any) -> None:
    """Depth within :data:`MAX_DEPTH`, and text UTF-8 can carry (no lone surrogates)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidJSONError(
                    "a string holds a lone surrogate (\\ud800-\\udfff), which is not text",
                    "string_unicode",
                ) from None
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            raise InvalidJSONError(f"JSON is nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        else:
            stack.extend((child, depth + 1) for child in item)


def loads_strict(raw: bytes | str) -> Any:
    """The JSON value of ``raw``; :class:`InvalidJSONError` for anything not strict JSON."""
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except InvalidJSONError:
        raise
    except RecursionError:
        raise InvalidJSONError(f"JSON is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # includes UnicodeDecodeError and over-long integers
        raise InvalidJSONError(f"Invalid JSON: {exc}") from None
    _check_value(value)
    return value


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or :class:`BodyTooLargeError` as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(limit)
        chunks.append(chunk)
    return b"".join(chunks)

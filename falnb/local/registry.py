"""Endpoints the local server serves: Python callables under fal endpoint ids.

An endpoint id is ``owner/alias[/path]`` as on fal (``local/echo``, ``me/upscale/fast``).
Each endpoint has up to three handlers, all taking ``(arguments, ctx)``:

* ``handler``: returns the output dict (sync or async); serves run and the queue;
* ``stream``: yields partial output dicts (sync or async generator); serves ``/stream``.
  An endpoint with only a stream handler is run/queued by draining it (the last item wins);
* ``realtime``: maps one realtime input dict to one output dict (sync or async).
"""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "CancelFlag",
    "Context",
    "Endpoint",
    "Handler",
    "LogLevel",
    "RealtimeHandler",
    "Registry",
    "StreamHandler",
    "StreamItem",
    "validate_endpoint_id",
]

LogLevel = Literal["STDERR", "STDOUT", "ERROR", "INFO", "WARN", "DEBUG"]
Output = dict[str, Any]
Handler = Callable[[dict[str, Any], "Context"], "Output | Awaitable[Output]"]
#: A stream's items are outputs (sent as SSE events) or, for a binary stream such as speech
#: audio, ``bytes`` chunks (sent as they are).
StreamItem = Output | bytes
StreamHandler = Callable[
    [dict[str, Any], "Context"], "Iterator[StreamItem] | AsyncIterator[StreamItem]"
]
RealtimeHandler = Callable[[dict[str, Any], "Context"], "Output | Awaitable[Output]"]

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_ENDPOINT_ID = re.compile(rf"^{_SEGMENT}/{_SEGMENT}(/{_SEGMENT})*$")
_RESERVED_LAST = ("stream", "realtime", "requests")


def validate_endpoint_id(endpoint_id: str) -> str:
    """Check ``owner/alias[/path]``; ids may not end in ``/stream`` or ``/realtime``."""
    if not _ENDPOINT_ID.match(endpoint_id):
        raise ValueError(
            f"invalid endpoint id {endpoint_id!r}: use 'owner/alias' or 'owner/alias/path' "
            "(letters, digits, '.', '_', '-')"
        )
    if endpoint_id.startswith("_") or endpoint_id.rsplit("/", 1)[-1] in _RESERVED_LAST:
        raise ValueError(
            f"invalid endpoint id {endpoint_id!r}: ids may not end in /stream, /realtime or "
            "/requests (those paths are the protocol's own)"
        )
    return endpoint_id


class CancelFlag(threading.Event):
    """Set when the caller cancels; reads as a bool, so ``if ctx.cancelled:`` means what it says.

    Still a :class:`threading.Event`: ``ctx.cancelled.wait(seconds)`` sleeps until cancelled.
    """

    def __bool__(self) -> bool:
        return self.is_set()

    def __repr__(self) -> str:
        return f"CancelFlag({self.is_set()})"


@dataclass
class Context:
    """What a handler gets besides its arguments.

    ``log`` appends a line to the request's status logs; ``store`` puts bytes in the server's
    CDN store and returns a fal ``File`` dict; ``cancelled`` is true once the caller cancels
    (``ctx.cancelled.wait(s)`` sleeps until then); ``bill(n)`` says how many of the endpoint's
    pricing units the output is (as a fal app sets ``x-fal-billable-units``; one if never said).
    """

    request_id: str
    endpoint_id: str
    log_sink: Callable[[str, LogLevel], None] = field(repr=False)
    store_sink: Callable[[bytes, str, str | None], dict[str, Any]] = field(repr=False)
    cancelled: CancelFlag = field(default_factory=CancelFlag, repr=False)
    billable_units: float | None = None

    def bill(self, units: float) -> None:
        if units < 0:
            raise ValueError(f"billable units must be >= 0, not {units}")
        self.billable_units = float(units)

    def log(self, message: str, level: LogLevel = "INFO") -> None:
        self.log_sink(message, level)

    def store(self, data: bytes, content_type: str, file_name: str | None = None) -> dict[str, Any]:
        return self.store_sink(data, content_type, file_name)


@dataclass
class Endpoint:
    endpoint_id: str
    handler: Handler | None = None
    stream: StreamHandler | None = None
    realtime: RealtimeHandler | None = None
    description: str = ""
    #: What the endpoint bills in (fal's pricing ``unit``: image, megapixel, second, token,
    #: request) and the price of one, in USD; an endpoint without a price is not in the pricing
    #: document (as an unpriced endpoint on fal).
    unit: str = "request"
    unit_price: float | None = None
    #: What cancelling a *running* request does: ``"stop"`` ends it at once (the default);
    #: ``"signal"`` only sets ``ctx.cancelled``, as fal's cloud does, and the app decides: it
    #: may still finish with output, which completes the request.
    on_cancel: Literal["stop", "signal"] = "stop"
    #: The JSON schemas of the input and the output, as the endpoint's OpenAPI document
    #: publishes them (:mod:`falnb.local.openapi`); None: not declared (anything goes).
    input_schema: dict[str, Any] | None = field(default=None, repr=False)
    output_schema: dict[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        validate_endpoint_id(self.endpoint_id)
        if self.handler is None and self.stream is None and self.realtime is None:
            raise ValueError(f"endpoint {self.endpoint_id!r} needs at least one handler")


class Registry:
    """A thread-safe map of endpoint id to :class:`Endpoint`."""

    def __init__(self, endpoints: list[Endpoint] | None = None) -> None:
        self._lock = threading.Lock()
        self._endpoints: dict[str, Endpoint] = {}
        for endpoint in endpoints or []:
            self.add(endpoint)

    def add(self, endpoint: Endpoint) -> Endpoint:
        with self._lock:
            self._endpoints[endpoint.endpoint_id] = endpoint
        return endpoint

    def remove(self, endpoint_id: str) -> None:
        with self._lock:
            self._endpoints.pop(endpoint_id, None)

    def get(self, endpoint_id: str) -> Endpoint | None:
        with self._lock:
            return self._endpoints.get(endpoint_id.strip("/"))

    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._endpoints)

    def __iter__(self) -> Iterator[Endpoint]:
        with self._lock:
            endpoints = sorted(self._endpoints.values(), key=lambda e: e.endpoint_id)
        return iter(endpoints)

    def __contains__(self, endpoint_id: object) -> bool:
        return isinstance(endpoint_id, str) and self.get(endpoint_id) is not None

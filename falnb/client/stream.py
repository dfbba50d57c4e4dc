"""Output streaming: ``POST {endpoint}/stream``, one JSON object per SSE event.

The last event is the complete output (fal-protocol.md section 4.2); both stream classes keep
it as ``final``, so a caller can show partial outputs and still use the result afterwards.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import EventSource

from falnb import _runtime
from falnb.client._transport import Transport, connection_failed
from falnb.client.errors import FalError

__all__ = ["AsyncStream", "EventsFactory", "Stream", "iter_stream"]

Event = dict[str, Any]
#: Opens the event iterator (on falnb's loop), given where to report the request id.
EventsFactory = Callable[[Callable[[str | None], None]], AsyncIterator[Event]]


async def iter_stream(
    transport: Transport,
    url: str,
    arguments: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    timeout: httpx.Timeout | float | None = None,
    on_request_id: Callable[[str | None], None] | None = None,
) -> AsyncGenerator[dict[str, Any], None]:
    """Each event of a streaming endpoint, parsed. Status errors raise before any event."""
    async with transport.stream(
        "POST",
        url,
        json=arguments,
        headers={"Accept": "text/event-stream", **(headers or {})},
        creates_work=True,
        timeout=timeout,
    ) as response:
        if on_request_id is not None:
            on_request_id(response.headers.get("x-fal-request-id"))
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" in content_type:
            events = EventSource(response).aiter_sse()
            while True:
                try:
                    event = await events.__anext__()
                except StopAsyncIteration:
                    return
                except httpx.TransportError as exc:
                    raise connection_failed(exc, response.request) from exc
                if event.data.strip():
                    yield _parse(event.data, url)
        elif "json" in content_type:
            # An endpoint that answers in one piece: that piece is the whole stream.
            yield _parse((await response.aread()).decode(), url)
        else:
            raise FalError(
                f"{url} answered {content_type or 'without a content type'}, not an event stream"
            )


def _parse(data: str, url: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        raise FalError(f"{url} sent an event that is not JSON: {data[:80]!r}") from None
    return value if isinstance(value, dict) else {"data": value}


class _StreamState:
    def __init__(self) -> None:
        self.final: dict[str, Any] | None = None
        self.request_id: str | None = None
        self.finished = False

    def set_request_id(self, request_id: str | None) -> None:
        self.request_id = request_id


class AsyncStream(_StreamState):
    """Partial outputs of a streaming endpoint, for async code.

    >>> stream = client.stream("local/stream-text", {"prompt": "hi"})
    >>> async for partial in stream: print(partial)
    >>> stream.final
    """

    def __init__(self, open_events: EventsFactory) -> None:
        super().__init__()
        self._events = _runtime.aiterate(open_events(self.set_request_id))

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            event = await self._events.__anext__()
        except StopAsyncIteration:
            self.finished = True
            raise
        self.final = event
        return event

    async def done(self) -> dict[str, Any] | None:
        """Read the rest of the stream and return the final output."""
        async for _ in self:
            pass
        return self.final

    async def aclose(self) -> None:
        """Stop reading (the connection is closed)."""
        close = getattr(self._events, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class Stream(_StreamState):
    """Partial outputs of a streaming endpoint, for blocking code.

    >>> stream = falnb.stream("local/stream-text", {"prompt": "hi"})
    >>> for partial in stream: print(partial["text"])
    >>> stream.final
    """

    def __init__(self, open_events: EventsFactory) -> None:
        super().__init__()
        self._events: Iterator[Event] = _runtime.iterate(open_events(self.set_request_id))

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> dict[str, Any]:
        try:
            event = next(self._events)
        except StopIteration:
            self.finished = True
            raise
        self.final = event
        return event

    def done(self) -> dict[str, Any] | None:
        """Read the rest of the stream and return the final output."""
        for _ in self:
            pass
        return self.final

    def close(self) -> None:
        """Stop reading (the connection is closed)."""
        close = getattr(self._events, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

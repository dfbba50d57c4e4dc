"""Output streaming: ``POST {endpoint}/stream``, one JSON object per SSE event.

The last event is the complete output (fal-protocol.md section 4.2); both stream classes keep
it as ``final``, so a caller can show partial outputs and still use the result afterwards.

A ``/stream`` answer that is not ``text/event-stream`` (nor JSON) is a binary stream, e.g.
text-to-speech audio: its chunks are yielded as ``bytes``, as fal's JS client does, and
``content_type`` says what they are. An event carrying an ``error`` (fal's apps send only
``data:`` events, so that is how an app reports failing mid-stream) raises StreamError.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import Any

import httpx
from httpx_sse import EventSource

from falnb import _runtime
from falnb.client._transport import Transport, connection_failed, redact_url
from falnb.client.errors import ConnectionFailedError, FalError, StreamError

__all__ = ["AsyncStream", "Event", "EventsFactory", "Stream", "iter_stream"]

#: One item of a stream: a partial output, or a chunk of a binary stream.
Event = dict[str, Any] | bytes
#: Opens the event iterator (on falnb's loop), given where to report the response's headers.
EventsFactory = Callable[[Callable[[httpx.Headers], None]], AsyncIterator[Event]]


async def iter_stream(
    transport: Transport,
    url: str,
    arguments: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    timeout: httpx.Timeout | float | None = None,
    on_response: Callable[[httpx.Headers], None] | None = None,
) -> AsyncGenerator[Event, None]:
    """Each event of a streaming endpoint, parsed (or each chunk of a binary stream).

    Status errors raise before any event; an error event raises StreamError, a broken
    connection ConnectionFailedError.
    """
    async with transport.stream(
        "POST",
        url,
        json=arguments,
        headers={"Accept": "text/event-stream", **(headers or {})},
        creates_work=True,
        timeout=timeout,
    ) as response:
        if on_response is not None:
            on_response(response.headers)
        request_id = response.headers.get("x-fal-request-id")
        content_type = response.headers.get("content-type", "")
        if content_type.startswith("text/event-stream"):
            chunks: AsyncIterator[Any] = EventSource(response).aiter_sse()
        elif "json" in content_type:
            # An endpoint that answers in one piece: that piece is the whole stream.
            yield _checked(_parse((await response.aread()).decode(), url), url, request_id)
            return
        else:
            chunks = response.aiter_bytes()
        received = 0
        while True:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            except httpx.TransportError as exc:
                if received == 0:
                    raise connection_failed(exc, response.request) from exc
                raise ConnectionFailedError(
                    f"{redact_url(url)} broke off mid-stream after {received} items: "
                    f"{type(exc).__name__}: {exc}",
                    request=response.request,
                ) from exc
            received += 1
            if isinstance(chunk, bytes):
                if chunk:
                    yield chunk
            elif chunk.event == "error":  # not fal's convention, but unmistakable
                raise _stream_error(url, request_id, _parse_any(chunk.data))
            elif chunk.data.strip():
                yield _checked(_parse(chunk.data, url), url, request_id)


def _parse_any(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


def _parse(data: str, url: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        raise FalError(f"{url} sent an event that is not JSON: {data[:80]!r}") from None
    return value if isinstance(value, dict) else {"data": value}


def _checked(event: dict[str, Any], url: str, request_id: str | None) -> dict[str, Any]:
    """``event``, unless it reports an error (a non-empty ``error``; ``"error": null`` is a
    partial output, as fal's LLM endpoints send)."""
    if event.get("error"):
        raise _stream_error(url, request_id, event)
    return event


def _stream_error(url: str, request_id: str | None, payload: Any) -> StreamError:
    body = payload if isinstance(payload, dict) else {"error": payload}
    detail = body.get("error") or body.get("detail")
    if isinstance(detail, dict):  # {"error": {"message": ..., "type": ...}}
        message = detail.get("message") or detail.get("detail") or json.dumps(detail)
        error_type = detail.get("type") or body.get("error_type")
    else:
        message, error_type = detail, body.get("error_type")
    text = str(message or "the stream reported an error")
    return StreamError(
        f"{redact_url(url)} reported an error mid-stream: {text}",
        detail=message,
        error_type=str(error_type) if error_type else None,
        request_id=request_id,
        payload=payload,
    )


class _StreamState:
    def __init__(self) -> None:
        self.final: Event | None = None
        self.request_id: str | None = None
        #: The answer's content type: ``text/event-stream``, or what a binary stream's
        #: chunks are (``audio/mpeg`` ...).
        self.content_type: str | None = None
        self.finished = False

    def set_response(self, headers: httpx.Headers) -> None:
        self.request_id = headers.get("x-fal-request-id")
        self.content_type = headers.get("content-type")


class AsyncStream(_StreamState):
    """Partial outputs of a streaming endpoint, for async code.

    >>> stream = client.stream("local/stream-text", {"prompt": "hi"})
    >>> async for partial in stream: print(partial)
    >>> stream.final
    """

    def __init__(self, open_events: EventsFactory) -> None:
        super().__init__()
        self._events = _runtime.aiterate(open_events(self.set_response))

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> Event:
        try:
            event = await self._events.__anext__()
        except StopAsyncIteration:
            self.finished = True
            raise
        self.final = event
        return event

    async def done(self) -> Event | None:
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

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class Stream(_StreamState):
    """Partial outputs of a streaming endpoint, for blocking code.

    >>> stream = falnb.stream("local/stream-text", {"prompt": "hi"})
    >>> for partial in stream: print(partial["text"])
    >>> stream.final
    """

    def __init__(self, open_events: EventsFactory) -> None:
        super().__init__()
        self._events: Iterator[Event] = _runtime.iterate(open_events(self.set_response))

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> Event:
        try:
            event = next(self._events)
        except StopIteration:
            self.finished = True
            raise
        self.final = event
        return event

    def done(self) -> Event | None:
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

    def __exit__(self, *exc_info: object) -> None:
        self.close()

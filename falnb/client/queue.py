"""fal's queue: submit, status (streamed or polled), result, cancel, and request handles.

The coroutines named ``_...`` run on falnb's loop (``falnb._runtime``); the public methods of
:class:`AsyncRequestHandle` hop onto it from whatever loop calls them, and
:class:`RequestHandle` blocks on them. Waiting on a request (``get``, ``iter_events``) cancels
it remotely when the wait is interrupted, cancelled or times out: nothing keeps running unpaid
for attention. A wait that loses the server keeps reconnecting for the retry policy's
``reconnect`` budget, then raises :class:`RequestPendingError` without cancelling: only the
server's definitive answer ends a request (``falnb.client._transport.settles_request``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Mapping,
)
from contextlib import aclosing
from typing import Any, Literal, Protocol, TypeVar

import httpx
from httpx_sse import EventSource, SSEError

from falnb import _runtime
from falnb._config import POLL_MAX, POLL_START, STREAM_ATTEMPTS, STREAM_DRAIN_TIMEOUT
from falnb._protocol import billable_units, endpoint_app, request_urls
from falnb.client._status import Completed, LogDeduper, Reconnecting, Status, parse_status
from falnb.client._transport import (
    NO_RETRY,
    BlockingTransport,
    RetryPolicy,
    Transport,
    settles_request,
)
from falnb.client.errors import (
    HTTPError,
    RateLimitedError,
    RequestCancelledError,
    RequestPendingError,
    RequestTimeoutError,
)
from falnb.client.lifecycle import StorageSettings, lifecycle_headers

__all__ = [
    "AsyncRequestHandle",
    "Deadline",
    "Priority",
    "RequestHandle",
    "submit_headers",
]

T = TypeVar("T")
Priority = Literal["normal", "low"]
OnReconnect = Callable[[Reconnecting], object]

#: Errors that polling would meet as well: no point falling back, raise them.
_FINAL_STATUSES = frozenset({400, 401, 403, 404, 422})


class _HasTransport(Protocol):
    def _transport(self) -> Transport: ...
    def _blocking_transport(self) -> BlockingTransport | None: ...


def submit_headers(
    *,
    hint: str | None = None,
    priority: Priority | None = None,
    start_timeout: float | None = None,
    headers: Mapping[str, str] | None = None,
    storage_settings: StorageSettings | None = None,
) -> dict[str, str]:
    """The optional ``x-fal-*`` headers of a run or submit (fal-protocol.md section 3.2);
    ``storage_settings`` asks the app to store its output files with that expiry and ACL."""
    out = {**lifecycle_headers(storage_settings), **(headers or {})}
    if priority is not None:
        if priority not in ("normal", "low"):
            raise ValueError(f"priority must be 'normal' or 'low', not {priority!r}")
        out["x-fal-queue-priority"] = priority
    if hint is not None:
        out["x-fal-runner-hint"] = hint
    if start_timeout is not None:
        if start_timeout <= 1:
            raise ValueError(f"start_timeout must be more than 1 second, not {start_timeout!r}")
        out["x-fal-request-timeout"] = str(float(start_timeout))
    return out


class Deadline:
    """A total time budget shared by the steps of one wait (``None``: no limit).

    ``started`` (a ``time.monotonic()`` value) counts it from an earlier moment, e.g. before
    the submission.
    """

    def __init__(self, timeout: float | None, *, started: float | None = None) -> None:
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self.timeout = timeout
        start = time.monotonic() if started is None else started
        self._end = None if timeout is None else start + timeout

    def remaining(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - time.monotonic())


# -- the protocol, on falnb's loop -------------------------------------------------------------


async def _fetch_status(
    transport: Transport,
    status_url: str,
    *,
    with_logs: bool,
    logs: LogDeduper | None = None,
    retry: RetryPolicy | None = None,
) -> Status:
    response = await transport.request("GET", status_url, params=_logs(with_logs), retry=retry)
    return parse_status(response.json(), logs)


def _fetch_status_blocking(
    transport: BlockingTransport, status_url: str, *, with_logs: bool
) -> Status:
    """:func:`_fetch_status`'s twin for the blocking transport."""
    response = transport.request("GET", status_url, params=_logs(with_logs))
    return parse_status(response.json())


def _logs(with_logs: bool) -> dict[str, str]:
    """A status request's query: whether to include the logs."""
    return {"logs": "1" if with_logs else "0"}


class _StreamUnavailableError(Exception):
    """The status stream answered, but not with an event stream."""


def _worth_reconnecting(error: BaseException, *, reading_result: bool = False) -> bool:
    """Whether a failed read about an accepted request may heal by trying again."""
    if isinstance(error, (httpx.TransportError, SSEError, _StreamUnavailableError)):
        return True
    if not isinstance(error, HTTPError):
        return False
    if error.status_code in (408, 409, 429):
        return True
    # A status read never carries the app's answer; a result read does when it has an id.
    return error.status_code >= 500 and not (reading_result and settles_request(error))


def _reason(error: BaseException) -> str:
    if isinstance(error, HTTPError):
        return str(error.status_code)
    cause = error.__cause__ if isinstance(error.__cause__, httpx.TransportError) else error
    return type(cause).__name__


class _Contact:
    """How long a wait has not heard from the server, and when it stops reconnecting."""

    def __init__(self, policy: RetryPolicy, request_id: str | None) -> None:
        self.policy = policy
        self.budget = policy.reconnect_budget()
        self.request_id = request_id
        self.lost_at: float | None = None
        self.attempts = 0
        self.retry_after: float | None = None

    def heard(self) -> None:
        self.lost_at, self.attempts = None, 0

    def lost(self, error: BaseException) -> Reconnecting:
        """Note one failed attempt; past the budget, raise :class:`RequestPendingError`."""
        now = time.monotonic()
        if self.lost_at is None:
            self.lost_at = now
        self.attempts += 1
        silent = now - self.lost_at
        self.retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
        if silent >= self.budget:
            which = f"request {self.request_id}" if self.request_id else "the request"
            raise RequestPendingError(
                f"lost the server for {silent:.0f} s while waiting for {which} ({error}); "
                "it was not cancelled",
                request_id=self.request_id,
            ) from error
        return Reconnecting(reason=_reason(error), seconds=round(silent, 1))

    async def pause(self) -> None:
        """Back off before the next attempt, never past the budget (so it gets a last try)."""
        delay = self.policy.reconnect_delay(self.attempts)
        if self.retry_after is not None:
            delay = max(delay, self.retry_after)
        if self.lost_at is not None:
            left = self.budget - (time.monotonic() - self.lost_at)
            delay = min(delay, max(0.0, left))
        await asyncio.sleep(delay)


async def _stream_status(
    transport: Transport, status_url: str, *, with_logs: bool
) -> AsyncGenerator[Any, None]:
    # One attempt per open: iter_status decides whether to reopen or to poll instead.
    async with transport.stream(
        "GET",
        f"{status_url}/stream",
        params=_logs(with_logs),
        headers={"Accept": "text/event-stream"},
        retry=NO_RETRY,
    ) as response:
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" not in content_type:
            raise _StreamUnavailableError(content_type)
        events = EventSource(response).aiter_sse()
        async for event in events:
            if not event.data.strip():
                continue
            try:
                data = json.loads(event.data)
            except ValueError as exc:
                raise _StreamUnavailableError("event data is not JSON") from exc
            if isinstance(data, dict) and data.get("status") == "COMPLETED":
                await _read_to_end(events)
            yield data


async def _read_to_end(events: AsyncIterator[object]) -> None:
    """Read what follows COMPLETED: the server closes the stream right after it, and a
    response read to its end gives its connection back to the pool (closed early, the
    connection is dropped, and the next request pays a new TCP connection on both sides).
    Bounded, in case a server keeps the stream open."""
    with contextlib.suppress(asyncio.TimeoutError, httpx.HTTPError, SSEError):
        await asyncio.wait_for(_exhaust(events), STREAM_DRAIN_TIMEOUT)


async def _exhaust(events: AsyncIterator[object]) -> None:
    async for _ in events:
        pass


async def iter_status(
    transport: Transport,
    status_url: str,
    *,
    with_logs: bool,
    reconnecting: bool = False,
    request_id: str | None = None,
) -> AsyncGenerator[Status, None]:
    """Every status of a request until (and including) :class:`Completed`.

    Uses the SSE status stream, reopening it when it drops (the server resends the current
    status at once); after ``STREAM_ATTEMPTS`` failures in a row it polls with backoff. Lost
    contact is ridden out for the policy's ``reconnect`` budget (each failed attempt yields a
    :class:`Reconnecting` when ``reconnecting``), then :class:`RequestPendingError` is raised.
    Log lines are de-duplicated, so each reaches the caller once.
    """
    logs = LogDeduper()
    contact = _Contact(transport.retry, request_id)
    failures = 0
    while failures < STREAM_ATTEMPTS:
        lost: Reconnecting | None = None
        try:
            async with aclosing(
                _stream_status(transport, status_url, with_logs=with_logs)
            ) as events:
                async for data in events:
                    failures = 0
                    contact.heard()
                    status = parse_status(data, logs)
                    yield status
                    if isinstance(status, Completed):
                        return
        except (HTTPError, httpx.TransportError, SSEError, _StreamUnavailableError) as exc:
            if isinstance(exc, HTTPError) and exc.status_code in _FINAL_STATUSES:
                raise
            if _worth_reconnecting(exc):
                lost = contact.lost(exc)
        if lost is not None and reconnecting:
            yield lost
        failures += 1
        await asyncio.sleep(min(0.05 * 2**failures, POLL_MAX))
    delay = POLL_START
    while True:
        try:
            status = await _fetch_status(
                transport, status_url, with_logs=with_logs, logs=logs, retry=NO_RETRY
            )
        except Exception as exc:
            if not _worth_reconnecting(exc):
                raise
            lost = contact.lost(exc)
            if reconnecting:
                yield lost
            await contact.pause()
            continue
        contact.heard()
        yield status
        if isinstance(status, Completed):
            return
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, POLL_MAX)


async def _fetch_result(
    transport: Transport,
    response_url: str,
    request_id: str | None = None,
    on_reconnect: OnReconnect | None = None,
    on_response: Callable[[httpx.Headers], None] | None = None,
) -> dict[str, Any]:
    contact = _Contact(transport.retry, request_id)
    while True:
        try:
            # A failed request's result replays the app's answer: retrying it changes nothing.
            response = await transport.request(
                "GET", response_url, final_app_errors=True, retry=NO_RETRY
            )
            break
        except HTTPError as exc:
            if exc.status_code == 499 or exc.error_type == "client_cancelled":
                rid = request_id or exc.request_id
                raise RequestCancelledError(
                    f"request {rid} was cancelled" if rid else "the request was cancelled",
                    request_id=rid,
                ) from None
            if not _worth_reconnecting(exc, reading_result=True):
                raise
            lost = contact.lost(exc)
        except httpx.TransportError as exc:
            lost = contact.lost(exc)
        if on_reconnect is not None:
            on_reconnect(lost)
        await contact.pause()
    if on_response is not None:
        on_response(response.headers)
    result = response.json()
    if not isinstance(result, dict):
        return {"result": result}
    return result


async def _cancel(transport: Transport, cancel_url: str) -> str:
    try:
        response = await transport.request("PUT", cancel_url)
    except HTTPError as exc:
        return _cancel_refused(exc)
    return _cancel_answer(response)


def _cancel_blocking(transport: BlockingTransport, cancel_url: str) -> str:
    """:func:`_cancel`'s twin for the blocking transport."""
    try:
        response = transport.request("PUT", cancel_url)
    except HTTPError as exc:
        return _cancel_refused(exc)
    return _cancel_answer(response)


def _cancel_refused(error: HTTPError) -> str:
    """``ALREADY_COMPLETED`` when that is why the queue refused a cancel; else raises it."""
    body = error.body if isinstance(error.body, dict) else {}
    if error.status_code == 400 and body.get("status") == "ALREADY_COMPLETED":
        return "ALREADY_COMPLETED"
    raise error


def _cancel_answer(response: httpx.Response) -> str:
    body = response.json() if response.content else {}
    return str(body.get("status", "CANCELLATION_REQUESTED")) if isinstance(body, dict) else "OK"


# -- handles -----------------------------------------------------------------------------------


class AsyncRequestHandle:
    """A submitted request, for async code: ``await handle.get()``.

    The URLs are the ones the server returned on submit, used verbatim.

    >>> handle = await client.submit("fal-ai/flux/dev", {"prompt": "a fox"})
    >>> async for status in handle.iter_events(with_logs=True): ...
    >>> result = await handle.get()
    """

    def __init__(
        self,
        client: _HasTransport,
        *,
        request_id: str,
        response_url: str,
        status_url: str,
        cancel_url: str,
        endpoint: str = "",
        gateway_request_id: str | None = None,
    ) -> None:
        self.request_id = request_id
        self.response_url = response_url
        self.status_url = status_url
        self.cancel_url = cancel_url
        self.endpoint = endpoint
        #: The submit answer's ``gateway_request_id`` (fal's gateway's own id, which the
        #: results of its server-side retries carry), when it sent one.
        self.gateway_request_id = gateway_request_id
        #: The result's ``x-fal-billable-units``, once the result has been read.
        self.billable_units: float | None = None
        #: Whether a cancel was sent while it ran: on fal's cloud the app is only told, so a
        #: request may still complete with output after it.
        self.cancel_requested = False
        self._client = client
        self._completed = False
        self._cancelling: asyncio.Future[None] | None = None
        self._cancel_error: Exception | None = None

    @classmethod
    def from_request_id(
        cls, client: _HasTransport, queue_url: str, endpoint: str, request_id: str
    ) -> AsyncRequestHandle:
        urls = request_urls(queue_url, endpoint_app(endpoint), request_id)
        return cls(client, request_id=request_id, endpoint=endpoint, **urls)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.endpoint!r}, request_id={self.request_id!r})"

    # public: callable from any event loop

    async def status(self, *, with_logs: bool = False) -> Status:
        """The request's current status."""
        return await _runtime.run_async(self._status(with_logs=with_logs))

    def iter_events(self, *, with_logs: bool = False) -> AsyncIterator[Status]:
        """Each status until :class:`Completed` (streamed, polled as a fallback)."""
        return _runtime.aiterate(self._events(with_logs=with_logs))

    async def get(self, *, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the request and return its result (a timeout cancels the request)."""
        return await _runtime.run_async(self._guard(self._wait_and_fetch(), Deadline(timeout)))

    async def cancel(self) -> str:
        """Cancel the request: ``"CANCELLATION_REQUESTED"``, or ``"ALREADY_COMPLETED"``."""
        return await _runtime.run_async(self._cancel())

    # core: on falnb's loop

    async def _status(self, *, with_logs: bool) -> Status:
        status = await _fetch_status(
            self._client._transport(), self.status_url, with_logs=with_logs
        )
        return self._saw(status)

    def _saw(self, status: Status) -> Status:
        self._completed = self._completed or isinstance(status, Completed)
        return status

    async def _events(
        self, *, with_logs: bool, reconnecting: bool = False
    ) -> AsyncGenerator[Status, None]:
        events = iter_status(
            self._client._transport(),
            self.status_url,
            with_logs=with_logs,
            reconnecting=reconnecting,
            request_id=self.request_id,
        )
        async with aclosing(events):
            async for status in events:
                self._completed = self._completed or isinstance(status, Completed)
                yield status

    async def _result(self, on_reconnect: OnReconnect | None = None) -> dict[str, Any]:
        return await _fetch_result(
            self._client._transport(),
            self.response_url,
            self.request_id,
            on_reconnect,
            on_response=self._read_headers,
        )

    def _read_headers(self, headers: httpx.Headers) -> None:
        self.billable_units = billable_units(headers)

    async def _wait_and_fetch(self) -> dict[str, Any]:
        if not self._completed:
            async with aclosing(self._events(with_logs=False)) as events:
                async for _ in events:
                    pass
        return await self._result()

    async def _cancel(self) -> str:
        return self._cancelled(await _cancel(self._client._transport(), self.cancel_url))

    def _cancelled(self, answer: str) -> str:
        if answer != "ALREADY_COMPLETED":
            self.cancel_requested = True
        return answer

    async def cancel_if_pending(self) -> None:
        """Cancel remotely unless completed; once, errors swallowed (falnb's loop only)."""
        if self._completed:
            return
        if self._cancelling is None:
            self._cancelling = asyncio.ensure_future(self._cancel_quietly())
        await asyncio.shield(self._cancelling)

    async def _cancel_quietly(self) -> None:
        try:
            await self._cancel()
        except Exception as exc:  # noqa: BLE001 - best effort, the caller is already failing
            self._cancel_error = exc

    async def _guard(self, step: Awaitable[T], deadline: Deadline) -> T:
        """Await ``step`` of a wait on this request; on timeout or cancellation cancel it."""
        remaining = deadline.remaining()
        try:
            if remaining is None:
                return await step
            return await asyncio.wait_for(step, remaining)
        except asyncio.TimeoutError:
            await self.cancel_if_pending()
            assert deadline.timeout is not None
            error = self._cancel_error
            if error is not None and not settles_request(error):
                # The cancel did not get through: the request may still run, and be paid for.
                raise RequestPendingError(
                    f"request {self.request_id} to {self.endpoint or 'fal'} did not finish "
                    f"within {deadline.timeout:g}s, and cancelling it failed ({error}); it may "
                    "still run",
                    request_id=self.request_id,
                ) from None
            raise RequestTimeoutError(
                f"request {self.request_id} to {self.endpoint or 'fal'} did not finish within "
                f"{deadline.timeout:g}s; it was cancelled",
                timeout=deadline.timeout,
                request_id=self.request_id,
            ) from None
        except asyncio.CancelledError:
            await self.cancel_if_pending()
            raise


class RequestHandle:
    """A submitted request, for blocking code: ``handle.get()``.

    A KeyboardInterrupt while waiting (``get``, ``iter_events``) cancels the request
    remotely before it propagates.

    >>> handle = falnb.submit("fal-ai/flux/dev", {"prompt": "a fox"})
    >>> handle.get(timeout=60)
    """

    def __init__(self, handle: AsyncRequestHandle) -> None:
        self._async = handle

    @property
    def request_id(self) -> str:
        return self._async.request_id

    @property
    def response_url(self) -> str:
        return self._async.response_url

    @property
    def status_url(self) -> str:
        return self._async.status_url

    @property
    def cancel_url(self) -> str:
        return self._async.cancel_url

    @property
    def endpoint(self) -> str:
        return self._async.endpoint

    @property
    def gateway_request_id(self) -> str | None:
        return self._async.gateway_request_id

    @property
    def cancel_requested(self) -> bool:
        """Whether a cancel was sent while it ran (it may still complete with output)."""
        return self._async.cancel_requested

    @property
    def billable_units(self) -> float | None:
        """The result's ``x-fal-billable-units``, once read (None before, or if not sent)."""
        return self._async.billable_units

    @property
    def async_handle(self) -> AsyncRequestHandle:
        return self._async

    def __repr__(self) -> str:
        return f"RequestHandle(endpoint={self.endpoint!r}, request_id={self.request_id!r})"

    def status(self, *, with_logs: bool = False) -> Status:
        """The request's current status."""
        blocking = self._blocking()
        if blocking is None:
            return _runtime.run(self._async._status(with_logs=with_logs))
        status = _fetch_status_blocking(blocking, self.status_url, with_logs=with_logs)
        return self._async._saw(status)

    def iter_events(self, *, with_logs: bool = False) -> Generator[Status, None, None]:
        """Each status until :class:`Completed`; an interrupt cancels the request."""
        return self._iter_events(with_logs=with_logs, deadline=Deadline(None))

    def get(self, *, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the request and return its result (a timeout cancels the request)."""
        return self._wait(self._async._wait_and_fetch(), Deadline(timeout))

    def cancel(self) -> str:
        """Cancel the request: ``"CANCELLATION_REQUESTED"``, or ``"ALREADY_COMPLETED"``."""
        blocking = self._blocking()
        if blocking is None:
            return _runtime.run(self._async._cancel())
        return self._async._cancelled(_cancel_blocking(blocking, self.cancel_url))

    def _blocking(self) -> BlockingTransport | None:
        """The client's blocking transport for a one-request step (a status, a cancel) when
        this thread may block (:func:`falnb._runtime.may_block`); else None: falnb's loop.
        Waits (``get``, ``iter_events``) stay on the loop: their deadlines, status streams
        and cancel-on-interrupt live there."""
        if not _runtime.may_block():
            return None
        return self._async._client._blocking_transport()

    def _wait(self, step: Coroutine[Any, Any, T], deadline: Deadline) -> T:
        try:
            return _runtime.run(
                self._async._guard(step, deadline), on_interrupt=self._async.cancel_if_pending
            )
        except KeyboardInterrupt:
            # Also reached when the interrupt lands between steps, outside _runtime.run.
            _runtime.run(self._async.cancel_if_pending())
            raise

    def _iter_events(
        self, *, with_logs: bool, deadline: Deadline, reconnecting: bool = False
    ) -> Generator[Status, None, None]:
        events = self._async._events(with_logs=with_logs, reconnecting=reconnecting)
        completed = False
        try:
            while not completed:
                try:
                    status = self._wait(_anext(events), deadline)
                except StopAsyncIteration:
                    return
                # Completed is the last status: no round trip to the loop to hear the end.
                completed = isinstance(status, Completed)
                yield status
        finally:
            if completed:
                # Nothing is left to cancel or wait for: close it without waiting.
                _runtime.close_soon(events.aclose)
            else:
                _runtime.run(_aclose_quietly(events))


async def _anext(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()


async def _aclose_quietly(agen: AsyncIterator[Any]) -> None:
    close: Callable[[], Awaitable[object]] | None = getattr(agen, "aclose", None)
    if close is None:
        return
    try:
        await close()
    except RuntimeError:  # still running after a cancelled step: it ends by itself
        return

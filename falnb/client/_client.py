"""The two fronts of falnb's fal client: :class:`AsyncClient` and :class:`SyncClient`.

Both speak through one :class:`Transport` that lives on falnb's own event loop. Async methods
hop onto that loop from whichever loop awaits them, so httpx never crosses loops; sync methods
block on it, which also works inside a notebook cell whose loop is already running. The sync
``run`` is the exception: it sends from the calling thread through the client's
:class:`BlockingTransport` (same request, retries and errors, no hop) whenever that behaves
the same (:meth:`_DirectRun.blocking_transport` says when).
Names and keywords follow fal_client (fal-protocol.md section 9).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import httpx

from falnb import _runtime
from falnb._config import CONNECT_TIMEOUT, RUN_TIMEOUT
from falnb._fronts import front
from falnb._protocol import endpoint_app
from falnb._settings import target_from_env
from falnb.client._status import Status
from falnb.client._transport import BlockingTransport, RetryPolicy, Transport
from falnb.client.errors import FalError, RequestTimeoutError
from falnb.client.lifecycle import StorageSettings
from falnb.client.queue import (
    AsyncRequestHandle,
    Deadline,
    Priority,
    RequestHandle,
    submit_headers,
)
from falnb.client.stream import AsyncStream, Event, EventsFactory, Stream, iter_stream

if TYPE_CHECKING:
    from PIL import Image

    from falnb._settings import Key, Target
    from falnb.client.realtime import AsyncRealtimeConnection, RealtimeConnection

__all__ = ["AsyncClient", "SyncClient"]

T = TypeVar("T")
#: Where a client without a target sends requests. The package sets it to the embedded
#: default (:func:`falnb._embedded.default_target`), so this layer never starts a server.
TargetFactory = Callable[[], "Target"]
_default_target_factory: list[TargetFactory] = []


def set_default_target(factory: TargetFactory) -> None:
    """Choose how clients built without a target find one (the package does, on import)."""
    _default_target_factory[:] = [factory]


def _default_target() -> Target:
    if _default_target_factory:
        return _default_target_factory[0]()
    target = target_from_env()
    if target is None:
        raise RuntimeError("no default target: import falnb (it sets the embedded default)")
    return target


Arguments = Mapping[str, Any]
OnEnqueue = Callable[[str], object]
OnQueueUpdate = Callable[[Status], object]


def _suffix(path: str) -> str:
    path = path.strip()
    return "" if not path.strip("/") else "/" + path.strip("/")


@functools.lru_cache(maxsize=256)
def _run_url(run_url: str, endpoint: str, path: str) -> httpx.URL:
    """An endpoint's direct-run URL, parsed once: a notebook runs the same few endpoints over
    and over, and httpx's URL parsing is a few percent of each run's client CPU. (Run URLs
    carry no query, so no token or signature is ever kept here.)"""
    return httpx.URL(f"{run_url}/{endpoint.strip('/')}{_suffix(path)}")


def query_params(arguments: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A GET run's arguments as query parameters: strings and numbers as they read, booleans
    as ``true``/``false``, anything else as JSON (fal's JS client puts GET input in the query)."""
    params: list[tuple[str, str]] = []
    for name, value in arguments.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            text = json.dumps(value, separators=(",", ":"))
        params.append((str(name), text))
    return params


def _total_timeout(timeout: float | None, client_timeout: float | None) -> float | None:
    if timeout is not None and client_timeout is not None and timeout != client_timeout:
        raise ValueError("pass timeout= or client_timeout= (its fal_client name), not both")
    return timeout if timeout is not None else client_timeout


def _start_timeout(start_timeout: float | None, total: float | None) -> float | None:
    # Like fal_client: a request that cannot start before the caller gives up is dropped
    # by the queue instead of running for nobody.
    if start_timeout is None and total is not None and total > 1:
        return total
    return start_timeout


async def _call(callback: Callable[[T], object] | None, value: T) -> None:
    if callback is not None:
        result = callback(value)
        if inspect.isawaitable(result):
            await result


async def _anext(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()


async def _cancel_from_any_loop(handle: AsyncRequestHandle) -> None:
    """Cancel ``handle`` remotely from the caller's loop, even while it is being cancelled."""
    if _runtime.in_loop_thread():
        await handle.cancel_if_pending()
        return
    future = _runtime.submit(handle.cancel_if_pending())
    try:
        await asyncio.shield(asyncio.wrap_future(future))
    except asyncio.CancelledError:
        return  # the cancel goes on, on falnb's loop


P = ParamSpec("P")
Prepared = TypeVar("Prepared")
R = TypeVar("R")


def _front(
    parameters: Callable[Concatenate[AsyncClient, P], Prepared],
) -> Callable[[Callable[[Any, Prepared], R]], Callable[Concatenate[Any, P], R]]:
    """A method of either front that takes the parameters of ``parameters``, defined once.

    ``parameters`` (a private method of :class:`AsyncClient`) takes the call's arguments and
    prepares the work: a coroutine for falnb's loop, or a plan. The decorated method says how
    its front carries that out: awaited from the caller's loop, or blocked on. So the fronts
    cannot drift apart, and ``help()``, IDEs and mypy all see the one signature.
    """

    def decorate(method: Callable[[Any, Prepared], R]) -> Callable[Concatenate[Any, P], R]:
        def invoke(self: Any, *args: P.args, **kwargs: P.kwargs) -> R:
            client: AsyncClient = self._async_client()
            _ = client.target  # resolved in the caller's thread: the default may start a server
            return method(self, parameters(client, *args, **kwargs))

        return front(method, invoke, parameters)  # type: ignore[no-any-return]

    return decorate


@dataclass
class _Subscription:
    """One ``subscribe`` call, prepared: its submission (not yet started), deadline, callbacks."""

    submission: Coroutine[Any, Any, AsyncRequestHandle]
    deadline: Deadline
    with_logs: bool
    on_enqueue: OnEnqueue | None
    on_queue_update: OnQueueUpdate | None


@dataclass(frozen=True)
class _DirectRun:
    """One ``run`` call, prepared: the request both fronts send, each in its own way.

    The async front (and the sync one when it must) sends it on falnb's loop; the sync front
    sends it from the calling thread through the client's blocking transport whenever that
    is the same request with the same retries: see :meth:`blocking_transport`.
    """

    client: AsyncClient
    endpoint: str
    url: httpx.URL
    method: str
    arguments: Arguments
    headers: dict[str, str]
    timeout: float | None

    def _request(self, body: dict[str, Any]) -> dict[str, Any]:
        """The transport's ``request`` keywords that send ``body``."""
        sent = {"params": query_params(body)} if self.method == "GET" else {"json": body}
        return {**sent, "headers": self.headers, "creates_work": True, "timeout": RUN_TIMEOUT}

    @staticmethod
    def _output(response: httpx.Response) -> dict[str, Any]:
        result = response.json()
        return result if isinstance(result, dict) else {"result": result}

    async def on_loop(self) -> dict[str, Any]:
        """Upload local inputs, send, return the output (on falnb's loop)."""
        transport = self.client._transport()

        async def call() -> dict[str, Any]:
            body = await self.client._prepare(transport, self.arguments)
            response = await transport.request(self.method, self.url, **self._request(body))
            return self._output(response)

        if self.timeout is None:
            return await call()
        try:
            return await asyncio.wait_for(call(), Deadline(self.timeout).remaining())
        except asyncio.TimeoutError:
            raise RequestTimeoutError(
                f"run of {self.endpoint} did not finish within {self.timeout:g}s",
                timeout=self.timeout,
            ) from None

    def blocking_transport(self) -> BlockingTransport | None:
        """The transport to send this call from the calling thread, or None for falnb's loop.

        The loop stays the way when the blocking one would behave differently: a ``timeout``
        bounds the whole call there (a blocking socket has no such deadline), local inputs
        upload concurrently there, an injected ``http`` client is an async one, and a thread
        that may not block (:func:`falnb._runtime.may_block`) waits there.
        """
        if self.timeout is not None or not _runtime.may_block():
            return None
        from falnb.client.storage import has_uploads  # optional PIL path

        return None if has_uploads(self.arguments) else self.client._blocking_transport()

    def send_blocking(self, transport: BlockingTransport) -> dict[str, Any]:
        """Send from the calling thread (there are no inputs to upload) and return the output."""
        response = transport.request(self.method, self.url, **self._request(dict(self.arguments)))
        return self._output(response)


class AsyncClient:
    """fal's API for async code, on any event loop.

    With no ``target``, the default applies: fal's cloud when a key is configured, else
    falnb's embedded local server (see ``falnb._embedded``). ``key`` overrides the target's.
    ``http`` injects an ``httpx.AsyncClient`` (used on falnb's loop only).

    >>> client = AsyncClient()
    >>> result = await client.subscribe("fal-ai/flux/dev", {"prompt": "a fox"}, with_logs=True)
    """

    def __init__(
        self,
        target: Target | None = None,
        *,
        key: Key | str | None = None,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float | None = None,
    ) -> None:
        self._target_arg = target
        self._key = key
        self._http = http
        self._retry = retry
        self._timeout = timeout
        self._target: Target | None = None
        self._transport_obj: Transport | None = None
        self._blocking_obj: BlockingTransport | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        if self._target is None and self._target_arg is None:
            return f"{type(self).__name__}(target=<default>)"
        target = self._target or self._target_arg
        assert target is not None
        return f"{type(self).__name__}(target={target.name!r}, run_url={target.run_url!r})"

    @property
    def target(self) -> Target:
        """Where requests go. Resolving the default may start the embedded local server."""
        with self._lock:
            if self._target is None:
                target = self._target_arg
                if target is None:
                    target = _default_target()
                self._target = target if self._key is None else target.with_key(self._key)
            return self._target

    def _async_client(self) -> AsyncClient:
        return self

    def _transport(self) -> Transport:
        # Used on falnb's loop (httpx binds its pool there on first use), but may be created
        # from any thread: building it does no I/O.
        with self._lock:
            if self._transport_obj is None:
                self._transport_obj = Transport(
                    self.target, http=self._http, retry=self._retry, timeout=self._timeout
                )
            return self._transport_obj

    def _blocking_transport(self) -> BlockingTransport | None:
        """The sync front's transport (an ``httpx.Client`` for any thread), with the same
        target, retries and timeout; None when ``http`` was injected (that client is async,
        and every request must go through it)."""
        if self._http is not None:
            return None
        with self._lock:
            if self._blocking_obj is None:
                self._blocking_obj = BlockingTransport(
                    self.target, retry=self._retry, timeout=self._timeout
                )
            return self._blocking_obj

    def _close_blocking(self) -> None:
        blocking, self._blocking_obj = self._blocking_obj, None
        if blocking is not None:
            blocking.close()

    async def _on_loop(self, fn: Callable[[Transport], Awaitable[T]]) -> T:
        _ = self.target
        return await _runtime.run_async(_apply(fn, self))

    async def aclose(self) -> None:
        """Close the connection pools (a later call opens new ones)."""
        self._close_blocking()
        transport, self._transport_obj = self._transport_obj, None
        if transport is not None:
            await _runtime.run_async(transport.aclose())

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- arguments -------------------------------------------------------------------------

    async def _prepare(self, transport: Transport, arguments: Arguments) -> dict[str, Any]:
        """Arguments with local files, images and bytes uploaded and replaced by URLs."""
        from falnb.client.storage import upload_inputs  # optional PIL path

        return await upload_inputs(transport, dict(arguments))

    # -- run -------------------------------------------------------------------------------

    def _run(
        self,
        endpoint: str,
        arguments: Arguments,
        *,
        path: str = "",
        timeout: float | None = None,
        start_timeout: float | None = None,
        hint: str | None = None,
        headers: Mapping[str, str] | None = None,
        storage_settings: StorageSettings | None = None,
        method: str = "POST",
    ) -> _DirectRun:
        # run's parameters, for both fronts: the request, which either front then sends.
        return _DirectRun(
            client=self,
            endpoint=endpoint,
            url=_run_url(self.target.run_url, endpoint, path),
            method=method.upper(),
            arguments=arguments,
            headers=submit_headers(
                hint=hint,
                start_timeout=start_timeout,
                headers=headers,
                storage_settings=storage_settings,
            ),
            timeout=timeout,
        )

    @_front(_run)
    async def run(self, call: _DirectRun) -> dict[str, Any]:
        """Run ``endpoint`` directly (no queue) and return its output.

        ``timeout`` bounds the whole call (RequestTimeoutError); ``start_timeout`` is fal's
        server-side deadline for the request to start. ``method="GET"`` sends the arguments
        in the query string instead of a JSON body (as fal's JS client does).
        """
        return await _runtime.run_async(call.on_loop())

    # -- queue -----------------------------------------------------------------------------

    async def _submit(
        self,
        endpoint: str,
        arguments: Arguments,
        *,
        path: str = "",
        hint: str | None = None,
        webhook_url: str | None = None,
        priority: Priority | None = None,
        headers: Mapping[str, str] | None = None,
        storage_settings: StorageSettings | None = None,
        start_timeout: float | None = None,
    ) -> AsyncRequestHandle:
        # submit's parameters, for both fronts; this runs on falnb's loop.
        endpoint_app(endpoint)  # reject a malformed id before anything is uploaded
        transport = self._transport()
        extra = submit_headers(
            hint=hint,
            priority=priority,
            start_timeout=start_timeout,
            headers=headers,
            storage_settings=storage_settings,
        )
        body = await self._prepare(transport, arguments)
        queue_url = self.target.queue_url
        response = await transport.request(
            "POST",
            f"{queue_url}/{endpoint.strip('/')}{_suffix(path)}",
            json=body,
            params={"fal_webhook": webhook_url} if webhook_url else None,
            headers=extra,
            creates_work=True,
        )
        answer = response.json()
        if not isinstance(answer, dict) or not answer.get("request_id"):
            raise FalError(f"the queue accepted {endpoint} but returned no request_id")
        built = AsyncRequestHandle.from_request_id(self, queue_url, endpoint, answer["request_id"])
        return AsyncRequestHandle(
            self,
            request_id=built.request_id,
            response_url=answer.get("response_url") or built.response_url,
            status_url=answer.get("status_url") or built.status_url,
            cancel_url=answer.get("cancel_url") or built.cancel_url,
            endpoint=endpoint,
            gateway_request_id=answer.get("gateway_request_id") or None,
        )

    @_front(_submit)
    async def submit(self, call: Coroutine[Any, Any, AsyncRequestHandle]) -> AsyncRequestHandle:
        """Put a request in ``endpoint``'s queue and return its handle at once."""
        return await _runtime.run_async(call)

    async def _submit_within(self, deadline: Deadline, **kw: Any) -> AsyncRequestHandle:
        remaining = deadline.remaining()
        try:
            if remaining is None:
                return await self._submit(**kw)
            return await asyncio.wait_for(self._submit(**kw), remaining)
        except asyncio.TimeoutError:
            assert deadline.timeout is not None
            raise RequestTimeoutError(
                f"submitting to {kw['endpoint']} did not finish within {deadline.timeout:g}s",
                timeout=deadline.timeout,
            ) from None

    def _subscription(
        self,
        endpoint: str,
        arguments: Arguments,
        *,
        path: str = "",
        hint: str | None = None,
        with_logs: bool = False,
        on_enqueue: OnEnqueue | None = None,
        on_queue_update: OnQueueUpdate | None = None,
        priority: Priority | None = None,
        headers: Mapping[str, str] | None = None,
        storage_settings: StorageSettings | None = None,
        start_timeout: float | None = None,
        webhook_url: str | None = None,
        timeout: float | None = None,
        client_timeout: float | None = None,
    ) -> _Subscription:
        # subscribe's parameters, for both fronts: a submission (within the whole call's
        # deadline) and what to do while following it.
        total = _total_timeout(timeout, client_timeout)
        deadline = Deadline(total)
        submission = self._submit_within(
            deadline,
            endpoint=endpoint,
            arguments=arguments,
            path=path,
            hint=hint,
            webhook_url=webhook_url,
            priority=priority,
            headers=headers,
            storage_settings=storage_settings,
            start_timeout=_start_timeout(start_timeout, total),
        )
        return _Subscription(submission, deadline, with_logs, on_enqueue, on_queue_update)

    @_front(_subscription)
    async def subscribe(self, call: _Subscription) -> dict[str, Any]:
        """Submit, follow the request's status, and return its result.

        ``on_enqueue(request_id)`` and ``on_queue_update(status)`` may be sync or async; they
        run on the caller's loop. ``timeout`` (alias ``client_timeout``) bounds the whole
        wait: on expiry the request is cancelled and RequestTimeoutError raised. Cancelling
        the awaiting task cancels the request too.
        """
        handle = await _runtime.run_async(call.submission)
        try:
            await _call(call.on_enqueue, handle.request_id)
            events = handle._events(with_logs=call.with_logs)
            try:
                while True:
                    try:
                        status = await _runtime.run_async(
                            handle._guard(_anext(events), call.deadline)
                        )
                    except StopAsyncIteration:
                        break
                    await _call(call.on_queue_update, status)
            finally:
                _runtime.close_soon(events.aclose)
            return await _runtime.run_async(handle._guard(handle._result(), call.deadline))
        except asyncio.CancelledError:
            await _cancel_from_any_loop(handle)
            raise

    async def status(self, endpoint: str, request_id: str, *, with_logs: bool = False) -> Status:
        """The current status of request ``request_id`` to ``endpoint``."""
        return await self.get_handle(endpoint, request_id).status(with_logs=with_logs)

    async def result(
        self, endpoint: str, request_id: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Wait for request ``request_id`` to complete and return its result."""
        return await self.get_handle(endpoint, request_id).get(timeout=timeout)

    async def cancel(self, endpoint: str, request_id: str) -> str:
        """Cancel request ``request_id``; returns the queue's answer (see RequestHandle.cancel)."""
        return await self.get_handle(endpoint, request_id).cancel()

    def get_handle(self, endpoint: str, request_id: str) -> AsyncRequestHandle:
        """A handle to an earlier request, e.g. one submitted before a kernel restart."""
        return AsyncRequestHandle.from_request_id(self, self.target.queue_url, endpoint, request_id)

    # -- streaming -------------------------------------------------------------------------

    def _stream(
        self,
        endpoint: str,
        arguments: Arguments,
        *,
        path: str = "/stream",
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> EventsFactory:
        # stream's parameters, for both fronts: how to open the events (on falnb's loop).
        url = f"{self.target.run_url}/{endpoint.strip('/')}{_suffix(path)}"
        return lambda on_response: self._stream_events(
            url, arguments, timeout, headers, on_response
        )

    @_front(_stream)
    def stream(self, events: EventsFactory) -> AsyncStream:
        """Partial outputs of a streaming endpoint: ``async for partial in client.stream(...)``.

        The stream's ``final`` holds the last (complete) output once read. A binary stream
        (an answer that is not ``text/event-stream``, e.g. speech audio) yields ``bytes``
        chunks; ``stream.content_type`` says what they are.
        """
        return AsyncStream(events)

    async def _stream_events(
        self,
        url: str,
        arguments: Arguments,
        timeout: float | None,
        headers: Mapping[str, str] | None,
        on_response: Callable[[httpx.Headers], None],
    ) -> AsyncGenerator[Event, None]:
        transport = self._transport()
        body = await self._prepare(transport, arguments)
        events = iter_stream(
            transport,
            url,
            body,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
            on_response=on_response,
        )
        async with aclosing(events):
            async for event in events:
                yield event

    # -- storage and realtime (helper modules) ----------------------------------------------

    async def _upload(
        self,
        data: bytes,
        content_type: str | None = None,
        file_name: str | None = None,
        *,
        storage_settings: StorageSettings | None = None,
    ) -> str:
        from falnb.client import storage

        return await storage.upload(
            self._transport(), data, content_type, file_name, storage_settings=storage_settings
        )

    @_front(_upload)
    async def upload(self, call: Coroutine[Any, Any, str]) -> str:
        """Upload ``data`` to the target's CDN and return its URL (``storage_settings``: the
        file's expiry and ACL)."""
        return await _runtime.run_async(call)

    async def _upload_file(
        self,
        file: str | Path | bytes | Image.Image,
        *,
        storage_settings: StorageSettings | None = None,
    ) -> str:
        from falnb.client import storage

        return await storage.upload_file(self._transport(), file, storage_settings=storage_settings)

    @_front(_upload_file)
    async def upload_file(self, call: Coroutine[Any, Any, str]) -> str:
        """Upload a local file, bytes or a PIL image and return its URL."""
        return await _runtime.run_async(call)

    async def _upload_image(
        self,
        image: Image.Image,
        format: str = "png",
        *,
        storage_settings: StorageSettings | None = None,
    ) -> str:
        from falnb.client import storage

        return await storage.upload_image(
            self._transport(), image, format, storage_settings=storage_settings
        )

    @_front(_upload_image)
    async def upload_image(self, call: Coroutine[Any, Any, str]) -> str:
        """Upload a PIL image (encoded as ``format``) and return its URL."""
        return await _runtime.run_async(call)

    def realtime(
        self, endpoint: str, **options: Any
    ) -> AbstractAsyncContextManager[LoopRealtimeConnection]:
        """A realtime (WebSocket) connection: ``async with client.realtime(id) as conn``.

        ``options`` are those of ``falnb.client.realtime.connect_realtime`` (``path``,
        ``use_jwt``, ``max_buffering``, ``throttle_interval``, ``token_expiration``).
        """
        return _RealtimeContext(self, endpoint, options)

    async def _realtime_token(self, endpoint: str, expiration: int = 120) -> str:
        from falnb.client.realtime import fetch_token

        return await fetch_token(self._transport(), endpoint, expiration)

    @_front(_realtime_token)
    async def realtime_token(self, call: Coroutine[Any, Any, str]) -> str:
        """A short-lived token that opens ``endpoint``'s realtime socket and nothing else.

        Minted with the key (``POST {rest}/tokens/``, scoped to the app's alias, expiring
        after ``expiration`` seconds), for code that must not hold the key: a browser opens
        ``realtime_socket_url(...)?fal_jwt_token=<token>`` itself.
        """
        return await _runtime.run_async(call)


async def _apply(fn: Callable[[Transport], Awaitable[T]], client: AsyncClient) -> T:
    return await fn(client._transport())


class LoopRealtimeConnection:
    """An ``AsyncRealtimeConnection`` usable from any event loop: each call hops onto falnb's.

    ``send(arguments)``, ``recv(timeout=None)``, ``close()`` and ``async for`` as on
    :class:`falnb.client.realtime.AsyncRealtimeConnection`.
    """

    def __init__(self, connection: AsyncRealtimeConnection) -> None:
        self.connection = connection

    def __repr__(self) -> str:
        return repr(self.connection)

    @property
    def sent(self) -> int:
        return self.connection.sent

    async def send(self, arguments: dict[str, Any]) -> None:
        await _runtime.run_async(self.connection.send(arguments))

    async def recv(self, timeout: float | None = None) -> dict[str, Any] | None:
        return await _runtime.run_async(self.connection.recv(timeout))

    async def close(self) -> None:
        await _runtime.run_async(self.connection.close())

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return _runtime.aiterate(aiter(self.connection))


class _RealtimeContext(AbstractAsyncContextManager[LoopRealtimeConnection]):
    def __init__(self, client: AsyncClient, endpoint: str, options: dict[str, Any]) -> None:
        self._client, self._endpoint, self._options = client, endpoint, options
        self._connection: LoopRealtimeConnection | None = None

    async def __aenter__(self) -> LoopRealtimeConnection:
        from falnb.client.realtime import connect_realtime

        connection = await self._client._on_loop(
            lambda t: connect_realtime(t, self._endpoint, **self._options)
        )
        self._connection = LoopRealtimeConnection(connection)
        return self._connection

    async def __aexit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            await self._connection.close()


class SyncClient:
    """fal's API for blocking code: scripts, notebook cells, widget callbacks.

    Works from any thread, including inside a running event loop (a notebook cell), because
    the work runs on falnb's own loop. A KeyboardInterrupt while waiting on a queued or
    running request cancels it remotely, then propagates.

    >>> client = SyncClient()
    >>> client.subscribe("fal-ai/flux/dev", {"prompt": "a fox"}, on_queue_update=print)
    """

    def __init__(
        self,
        target: Target | None = None,
        *,
        key: Key | str | None = None,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float | None = None,
    ) -> None:
        self._async = AsyncClient(target, key=key, http=http, retry=retry, timeout=timeout)

    @classmethod
    def wrapping(cls, client: AsyncClient) -> SyncClient:
        """A sync front sharing ``client``'s target and connection pool."""
        sync = cls.__new__(cls)
        sync._async = client
        return sync

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncClient", "SyncClient", 1)

    @property
    def async_client(self) -> AsyncClient:
        """The async front sharing this client's connection pool."""
        return self._async

    @property
    def target(self) -> Target:
        return self._async.target

    def _async_client(self) -> AsyncClient:
        return self._async

    def close(self) -> None:
        """Close the connection pools (a later call opens new ones)."""
        self._async._close_blocking()
        transport, self._async._transport_obj = self._async._transport_obj, None
        if transport is not None:
            _runtime.run(transport.aclose())

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @staticmethod
    def _submitted(coro: Coroutine[Any, Any, AsyncRequestHandle]) -> RequestHandle:
        """Submit; a Ctrl-C mid-submission lets it finish, then cancels what was accepted."""
        return RequestHandle(
            _runtime.run_completing(coro, undo=lambda handle: handle.cancel_if_pending())
        )

    @_front(AsyncClient._run)
    def run(self, call: _DirectRun) -> dict[str, Any]:
        """Run ``endpoint`` directly (no queue) and return its output (``method="GET"``: the
        arguments go in the query string)."""
        transport = call.blocking_transport()
        if transport is None:
            return _runtime.run(call.on_loop())
        return call.send_blocking(transport)

    @_front(AsyncClient._submit)
    def submit(self, call: Coroutine[Any, Any, AsyncRequestHandle]) -> RequestHandle:
        """Put a request in ``endpoint``'s queue and return its handle at once."""
        return self._submitted(call)

    @_front(AsyncClient._subscription)
    def subscribe(self, call: _Subscription) -> dict[str, Any]:
        """Submit, follow the request's status, and return its result.

        Callbacks run in the calling thread. ``timeout`` (alias ``client_timeout``) bounds
        the whole wait: on expiry the request is cancelled and RequestTimeoutError raised.
        """
        handle = self._submitted(call.submission)
        try:
            if call.on_enqueue is not None:
                call.on_enqueue(handle.request_id)
            for status in handle._iter_events(with_logs=call.with_logs, deadline=call.deadline):
                if call.on_queue_update is not None:
                    call.on_queue_update(status)
            return handle._wait(handle.async_handle._result(), call.deadline)
        except KeyboardInterrupt:
            # An interrupt inside a callback lands here; one inside a wait was handled there.
            _runtime.run(handle.async_handle.cancel_if_pending())
            raise

    def status(self, endpoint: str, request_id: str, *, with_logs: bool = False) -> Status:
        """The current status of request ``request_id`` to ``endpoint``."""
        return self.get_handle(endpoint, request_id).status(with_logs=with_logs)

    def result(
        self, endpoint: str, request_id: str, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Wait for request ``request_id`` to complete and return its result."""
        return self.get_handle(endpoint, request_id).get(timeout=timeout)

    def cancel(self, endpoint: str, request_id: str) -> str:
        """Cancel request ``request_id``; returns the queue's answer (see RequestHandle.cancel)."""
        return self.get_handle(endpoint, request_id).cancel()

    def get_handle(self, endpoint: str, request_id: str) -> RequestHandle:
        """A handle to an earlier request, e.g. one submitted before a kernel restart."""
        return RequestHandle(self._async.get_handle(endpoint, request_id))

    @_front(AsyncClient._stream)
    def stream(self, events: EventsFactory) -> Stream:
        """Partial outputs of a streaming endpoint: ``for partial in client.stream(...)``.

        The stream's ``final`` holds the last (complete) output once read. A binary stream
        (an answer that is not ``text/event-stream``, e.g. speech audio) yields ``bytes``
        chunks; ``stream.content_type`` says what they are.
        """
        return Stream(events)

    @_front(AsyncClient._upload)
    def upload(self, call: Coroutine[Any, Any, str]) -> str:
        """Upload ``data`` to the target's CDN and return its URL (``storage_settings``: the
        file's expiry and ACL)."""
        return _runtime.run(call)

    @_front(AsyncClient._upload_file)
    def upload_file(self, call: Coroutine[Any, Any, str]) -> str:
        """Upload a local file, bytes or a PIL image and return its URL."""
        return _runtime.run(call)

    @_front(AsyncClient._upload_image)
    def upload_image(self, call: Coroutine[Any, Any, str]) -> str:
        """Upload a PIL image (encoded as ``format``) and return its URL."""
        return _runtime.run(call)

    def realtime(self, endpoint: str, **options: Any) -> RealtimeConnection:
        """A realtime (WebSocket) connection, opened now: ``with client.realtime(id) as conn``.

        ``options`` are those of ``falnb.client.realtime.connect_realtime``.
        """
        from falnb.client.realtime import connect_realtime_sync

        return connect_realtime_sync(self._async._transport(), endpoint, **options)

    @_front(AsyncClient._realtime_token)
    def realtime_token(self, call: Coroutine[Any, Any, str]) -> str:
        """A short-lived token that opens ``endpoint``'s realtime socket and nothing else
        (see :meth:`AsyncClient.realtime_token`)."""
        return _runtime.run(call)

"""Realtime connections: msgpack over WebSocket, with throttling and latest-wins sends.

The wire follows fal (fal-protocol.md section 5): a short-lived token from
``POST {rest_url}/tokens/``, then ``{realtime_url}/{endpoint_id}/realtime?fal_jwt_token=...``;
inputs and results are binary msgpack frames, meta and error messages JSON text frames.

Two send policies help slider-driven use:

* ``latest_wins=True``: at most one input in flight; inputs sent meanwhile replace each other
  and only the newest goes when the previous result arrives;
* ``throttle_interval=s``: at most one input per ``s`` seconds, the newest of each window
  (fal's JS client does this with 0.128 s).

A connection that the server ended (idle ``TIMEOUT``, or any ``x-fal-error``: fal's SDK closes
the session after an error) or that dropped reconnects, with a fresh token, on the next
:meth:`~AsyncRealtimeConnection.send`.

Example::

    async with await connect_realtime(transport, "fal-ai/fast-lcm", latest_wins=True) as conn:
        await conn.send({"prompt": "a cat"})
        result = await conn.recv()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import urlencode

import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    InvalidHandshake,
    InvalidStatus,
)
from websockets.sync.client import ClientConnection as SyncClientConnection
from websockets.sync.client import connect as sync_connect

from falnb import _comm_pump, _runtime
from falnb._config import REALTIME_OPEN_TIMEOUT
from falnb._protocol import endpoint_alias
from falnb.client._transport import Transport, redact_url, user_agent
from falnb.client.errors import RealtimeError

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from falnb._settings import Target

__all__ = [
    "AsyncRealtimeConnection",
    "RealtimeConnection",
    "connect_realtime",
    "connect_realtime_sync",
    "realtime_socket_url",
]

logger = logging.getLogger("falnb.client")

MAX_BUFFERING_RANGE = (1, 60)
#: Errors after which the server closes the session (no more results on that socket).
_TERMINAL = ("TIMEOUT", "Unauthorized", "NOT_FOUND", "BAD_REQUEST")
#: Of those, the ones that refuse the session outright: reopening would be refused again.
_REFUSALS = ("Unauthorized", "NOT_FOUND", "BAD_REQUEST")


class _RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets' client logger, for falnb's connections, with tokens and the key hidden.

    At DEBUG websockets logs the handshake: the path (``?fal_jwt_token=...``) and every
    header (``Authorization: Key ...``). Records still go to ``websockets.client``, so logging
    set up for websockets applies as before.
    """

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        if msg == "> %s: %s" and len(args) == 2 and str(args[0]).lower() == "authorization":
            args = (args[0], "[redacted]")
        else:
            args = tuple(redact_url(a) if isinstance(a, str) and "?" in a else a for a in args)
        self.logger.log(level, msg, *args, **kwargs)


_WEBSOCKETS_LOGGER = _RedactingLogger(logging.getLogger("websockets.client"), {})


def _socket_url(base: str, endpoint_id: str, path: str) -> str:
    url = f"{base.rstrip('/')}/{endpoint_id.strip('/')}"
    suffix = "/" + path.strip("/") if path.strip("/") else ""
    # As fal's JS client: an id that already ends with the path does not get it twice.
    return url if not suffix or url.endswith(suffix) else url + suffix


def realtime_socket_url(target: Target, endpoint_id: str, path: str = "/realtime") -> str:
    """The realtime socket's URL for ``endpoint_id`` on ``target``, without credentials."""
    return _socket_url(target.realtime_url, endpoint_id, path)


def _parse_token(body: Any) -> str:
    if isinstance(body, str) and body:
        return body
    if isinstance(body, dict):
        for field in ("token", "detail"):
            if isinstance(body.get(field), str) and body[field]:
                return str(body[field])
    raise RealtimeError("TOKEN_ERROR", "the token endpoint answered without a token")


async def fetch_token(transport: Transport, endpoint_id: str, expiration: int = 120) -> str:
    """A short-lived app token for ``endpoint_id`` (its alias only, as fal expects)."""
    response = await transport.request(
        "POST",
        f"{transport.target.rest_url}/tokens/",
        json={"allowed_apps": [endpoint_alias(endpoint_id)], "token_expiration": expiration},
    )
    try:
        body = response.json()
    except ValueError:
        body = response.text.strip()
    return _parse_token(body)


def _socket_options(headers: dict[str, str]) -> dict[str, Any]:
    """How both websockets clients (asyncio and blocking) open falnb's sockets."""
    return {
        "max_size": None,
        # Frames are compressed media: per-message deflate costs both ends CPU for nothing.
        "compression": None,
        "open_timeout": REALTIME_OPEN_TIMEOUT,
        "additional_headers": headers,
        "user_agent_header": user_agent(),
        "logger": _WEBSOCKETS_LOGGER,
    }


#: What a failed opening handshake raises (asyncio's and the blocking client's timeouts).
_OPEN_ERRORS = (OSError, asyncio.TimeoutError, TimeoutError, InvalidHandshake)


def _open_error(exc: BaseException, url: str, endpoint_id: str) -> RealtimeError:
    """The one-line error for a socket that did not open."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        where = f"HTTP {status} from {redact_url(url)}"
        if status == 404:
            return RealtimeError("NOT_FOUND", f"endpoint {endpoint_id!r} was not found ({where})")
        return RealtimeError("Unauthorized" if status in (401, 403) else "CONNECTION_FAILED", where)
    return RealtimeError(
        "CONNECTION_FAILED", f"{type(exc).__name__} connecting to {redact_url(url)}"
    )


#: How a meta message (``timings``, after every result) starts, as the local server
#: (``json.dumps``) and fal's frames (compact, fal-protocol.md section 5) write it: its type is
#: then known unparsed, which saves a JSON parse per round trip (about a twentieth of a
#: blocking echo round trip's CPU). Any other text frame is parsed.
_META_PREFIX = ('{"type": "x-fal-message",', '{"type":"x-fal-message",')

#: (kind, value, socket generation): ("result", dict) | ("error", RealtimeError) | ("end", None)
_Event = tuple[str, Any, int]


class RealtimeOptions(TypedDict, total=False):
    """The options :func:`connect_realtime` passes on (the defaults are
    :class:`AsyncRealtimeConnection`'s)."""

    path: str
    use_jwt: bool
    max_buffering: int | None
    token_expiration: int
    throttle_interval: float
    latest_wins: bool


class AsyncRealtimeConnection:
    """A realtime session with one endpoint. Use :func:`connect_realtime` to make one.

    ``sent`` counts the inputs that actually went over the wire (throttling and latest-wins
    send fewer than they are given).
    """

    def __init__(
        self,
        transport: Transport,
        endpoint_id: str,
        *,
        path: str = "/realtime",
        use_jwt: bool = True,
        max_buffering: int | None = None,
        token_expiration: int = 120,
        throttle_interval: float = 0.0,
        latest_wins: bool = False,
    ) -> None:
        if max_buffering is not None:
            low, high = MAX_BUFFERING_RANGE
            if not low <= max_buffering <= high:
                raise ValueError(f"max_buffering must be in {low}..{high}, not {max_buffering}")
        endpoint_alias(endpoint_id)
        self.transport = transport
        self.endpoint_id = endpoint_id
        self.path = path
        self.use_jwt = use_jwt
        self.max_buffering = max_buffering
        self.token_expiration = token_expiration
        self.throttle_interval = max(0.0, throttle_interval)
        self.latest_wins = latest_wins
        self.sent = 0
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._open_lock = asyncio.Lock()
        self._in_flight = False
        self._pending: dict[str, Any] | None = None
        self._throttled: dict[str, Any] | None = None
        self._throttle_timer: asyncio.TimerHandle | None = None
        self._last_sent_at = float("-inf")
        self._generation = 0
        #: Why the server refused the current socket (an x-fal-error before its close).
        self._refusal: RealtimeError | None = None

    def __repr__(self) -> str:
        state = "open" if self._ws is not None else "idle"
        return f"AsyncRealtimeConnection({self.endpoint_id!r}, {state}, sent={self.sent})"

    @property
    def is_open(self) -> bool:
        return self._ws is not None

    # Opening and reading

    async def connect(self) -> None:
        """Open the socket now (it also opens on the first send)."""
        await self._ensure_open()

    async def _ensure_open(self) -> ClientConnection:
        async with self._open_lock:
            if self._ws is not None:
                return self._ws
            url, headers = await self._handshake()
            try:
                ws = await connect(url, **_socket_options(headers))
            except _OPEN_ERRORS as exc:
                raise _open_error(exc, url, self.endpoint_id) from None
            self._generation += 1
            self._ws = ws
            self._in_flight = False
            self._refusal = None
            self._reader = asyncio.create_task(self._read(ws, self._generation))
            return ws

    async def _handshake(self) -> tuple[str, dict[str, str]]:
        target = self.transport.target
        url = realtime_socket_url(target, self.endpoint_id, self.path)
        query: dict[str, str] = {}
        headers: dict[str, str] = {}
        if self.use_jwt:
            token = await fetch_token(self.transport, self.endpoint_id, self.token_expiration)
            query["fal_jwt_token"] = token
        else:
            headers.update(self.transport.auth_headers())
        if self.max_buffering is not None:
            query["max_buffering"] = str(self.max_buffering)
        return (f"{url}?{urlencode(query)}" if query else url), headers

    @staticmethod
    def _decode(message: str | bytes) -> tuple[str, Any] | None:
        if isinstance(message, bytes):
            return ("result", msgpack.unpackb(message, raw=False))
        if message.startswith(_META_PREFIX):
            return None
        try:
            data = json.loads(message)
        except ValueError:
            return ("result", {"type": "text", "payload": message})
        if not isinstance(data, dict):
            return ("result", {"type": "text", "payload": data})
        kind = data.get("type")
        if kind == "x-fal-message":
            return None
        if kind == "x-fal-error":
            error = str(data.get("error") or "ERROR")
            return ("error", RealtimeError(error, str(data.get("reason") or ""), data))
        if data.get("status") == "error":
            error = str(data.get("error") or "ERROR")
            return ("error", RealtimeError(error, "the server refused the connection", data))
        return ("result", data)

    async def _read(self, ws: ClientConnection, generation: int) -> None:
        """Queue what arrives on ``ws``; always end with an ``end`` marker for :meth:`recv`."""
        ended_by_error = False
        try:
            async for message in ws:
                event = self._decode(message)
                if event is None:
                    continue
                self._events.put_nowait((*event, generation))
                if event[0] == "error":
                    # fal's SDK closes the session after any error: this socket is done, and
                    # the next send (a pending latest-wins input included) opens a new one.
                    ended_by_error = True  # so the close that follows is no news
                    if event[1].error in _REFUSALS and generation == self._generation:
                        self._refusal = event[1]
                        continue
                    if self._ws is ws:
                        self._ws = None
                await self._answered()
        except ConnectionClosedError as exc:
            if not ended_by_error:
                closed = RealtimeError("CONNECTION_CLOSED", _close_reason(exc))
                self._events.put_nowait(("error", closed, generation))
        finally:
            self._events.put_nowait(("end", None, generation))
            if self._ws is ws:
                self._ws = None
                self._in_flight = False

    async def _answered(self) -> None:
        """One input was answered (result or error): let the newest pending input go."""
        self._in_flight = False
        if self.latest_wins and self._pending is not None:
            pending, self._pending = self._pending, None
            try:
                await self._transmit(pending)
            except (RealtimeError, ConnectionClosed) as exc:
                self._report(exc)

    def _report(self, exc: BaseException) -> None:
        error = exc if isinstance(exc, RealtimeError) else RealtimeError("CONNECTION_CLOSED", "")
        self._events.put_nowait(("error", error, self._generation))

    # Sending

    async def _transmit(self, arguments: dict[str, Any]) -> None:
        frame = msgpack.packb(arguments, use_bin_type=True)
        for attempt in (1, 2):
            ws = await self._ensure_open()
            reader = self._reader
            try:
                await ws.send(frame)
            except ConnectionClosed as exc:
                if self._ws is ws:
                    self._ws = None
                # The reader has the server's last word (e.g. NOT_FOUND) before the close.
                if reader is not None:
                    with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                        await asyncio.wait_for(asyncio.shield(reader), 5.0)
                _after_a_closed_send(exc, self._refusal, attempt)
                continue
            break
        self.sent += 1
        self._last_sent_at = asyncio.get_running_loop().time()
        if self.latest_wins:
            self._in_flight = True

    async def send(self, arguments: dict[str, Any]) -> None:
        """Send one input (opening or reopening the socket as needed), per the send policy."""
        if not isinstance(arguments, dict):
            raise TypeError("realtime inputs are dicts of arguments")
        if self.latest_wins:
            if self._in_flight and self._ws is not None:
                self._pending = arguments
                return
            # Nothing in flight (or the socket dropped): this supersedes any older pending input.
            self._pending = None
            await self._transmit(arguments)
            return
        if self.throttle_interval <= 0:
            await self._transmit(arguments)
            return
        loop = asyncio.get_running_loop()
        wait = self._last_sent_at + self.throttle_interval - loop.time()
        if wait <= 0 and self._throttle_timer is None:
            await self._transmit(arguments)
            return
        self._throttled = arguments
        if self._throttle_timer is None:
            self._throttle_timer = loop.call_later(max(wait, 0.0), self._flush_soon)

    def _flush_soon(self) -> None:
        self._throttle_timer = None
        arguments, self._throttled = self._throttled, None
        if arguments is not None:
            task = asyncio.ensure_future(self._transmit(arguments))
            task.add_done_callback(self._after_flush)

    def _after_flush(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._report(task.exception())  # type: ignore[arg-type]

    # Receiving

    async def recv(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next result; None once the session has ended and nothing is left to read.

        Raises :class:`RealtimeError` for an ``x-fal-error`` message (``TIMEOUT`` when the
        server ended an idle session), a refused token, or an abnormal close; and
        ``TimeoutError`` when ``timeout`` seconds pass without a result.
        """
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> dict[str, Any] | None:
        while True:
            # Ended, unless a new socket is opening (a pending input going on after an error).
            if self._events.empty() and self._ws is None and not self._open_lock.locked():
                return None
            kind, value, generation = await self._events.get()
            if kind != "result" and self._stale(value, generation):
                continue
            if kind == "error":
                raise value
            if kind == "end":
                return None
            result: dict[str, Any] = value
            return result

    def _stale(self, value: Any, generation: int) -> bool:
        """An end (or the error that ended it) of a socket a newer one has replaced."""
        if generation == self._generation:
            return False
        return value is None or value.error in (*_TERMINAL, "CONNECTION_CLOSED")

    async def close(self) -> None:
        """Close the socket; a later :meth:`send` opens a new one."""
        if self._throttle_timer is not None:
            self._throttle_timer.cancel()
            self._throttle_timer = None
        self._pending = self._throttled = None
        ws, reader = self._ws, self._reader
        if ws is not None:
            await ws.close()
        if reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def __aenter__(self) -> AsyncRealtimeConnection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        with _idle_end_is_quiet():
            while (result := await self.recv()) is not None:
                yield result


@contextlib.contextmanager
def _idle_end_is_quiet() -> Iterator[None]:
    """Iterating results ends with the session; an idle ``TIMEOUT`` ends it quietly."""
    try:
        yield
    except RealtimeError as exc:
        if exc.error != "TIMEOUT":
            raise


def _after_a_closed_send(
    exc: ConnectionClosed, refusal: RealtimeError | None, attempt: int
) -> None:
    """A send found the socket closed: raise the server's refusal, or give up on the second
    attempt; else return to reopen once (the server may have ended an idle session a moment
    ago)."""
    if refusal is not None:
        raise refusal from None
    if attempt == 2:
        raise RealtimeError("CONNECTION_CLOSED", _close_reason(exc)) from None


def _close_reason(exc: ConnectionClosed) -> str:
    rcvd = exc.rcvd
    reason = f"closed with code {rcvd.code if rcvd else 1006}"
    if rcvd and rcvd.reason:
        reason += f": {rcvd.reason}"
    return reason


async def connect_realtime(
    transport: Transport,
    endpoint_id: str,
    **options: Unpack[RealtimeOptions],
) -> AsyncRealtimeConnection:
    """Open a realtime connection to ``endpoint_id`` (see :class:`AsyncRealtimeConnection`)."""
    connection = AsyncRealtimeConnection(transport, endpoint_id, **options)
    await connection.connect()
    return connection


class RealtimeConnection:
    """The blocking form of :class:`AsyncRealtimeConnection`.

    Without a send policy (the default) the socket is a blocking one (websockets' sync
    client) used in the caller's thread: a round trip costs what a bare websockets loop costs.
    Driving it on falnb's loop thread instead cost two thread hops per round trip (about a
    third of the bare loop's rate on the echo app, ``benchmarks/bench_realtime.py``). With
    ``latest_wins`` or ``throttle_interval`` the policy has work to do when an answer arrives
    or a window ends, whatever the caller is doing, so those connections stay on the loop.
    Either way errors, reconnects and fresh tokens behave as on the async connection, whose
    options, ``sent`` count and socket generations this one keeps.

    Example::

        with connect_realtime_sync(transport, "local/realtime-echo") as conn:
            conn.send({"prompt": "hi"})
            print(conn.recv())
    """

    def __init__(self, connection: AsyncRealtimeConnection) -> None:
        self.connection = connection
        policy = connection.latest_wins or connection.throttle_interval > 0
        #: Blocking socket in the caller's thread (None: the connection runs on the loop).
        self._blocking = not (policy or connection.is_open)
        self._ws: SyncClientConnection | None = None
        self._open_lock = threading.Lock()
        #: What a socket held when it ended, still to be read: (kind, value, generation).
        self._backlog: deque[_Event] = deque()
        self._refusal: RealtimeError | None = None

    def __repr__(self) -> str:
        if not self._blocking:
            return repr(self.connection).replace("Async", "", 1)
        state = "open" if self._ws is not None else "idle"
        return f"RealtimeConnection({self.connection.endpoint_id!r}, {state}, sent={self.sent})"

    @property
    def sent(self) -> int:
        return self.connection.sent

    @property
    def is_open(self) -> bool:
        return self._ws is not None if self._blocking else self.connection.is_open

    def connect(self) -> None:
        """Open the socket now (it also opens on the first send)."""
        if self._blocking:
            self._open()
        else:
            _runtime.run(self.connection.connect())

    def send(self, arguments: dict[str, Any]) -> None:
        """Send one input (opening or reopening the socket as needed), per the send policy."""
        if not self._blocking:
            _runtime.run(self.connection.send(arguments))
            return
        if not isinstance(arguments, dict):
            raise TypeError("realtime inputs are dicts of arguments")
        frame = msgpack.packb(arguments, use_bin_type=True)
        for attempt in (1, 2):
            ws = self._open()
            try:
                ws.send(frame)
            except ConnectionClosed as exc:
                self._end(ws)  # keeps the server's last word (e.g. NOT_FOUND) to read
                _after_a_closed_send(exc, self._refusal, attempt)
                continue
            break
        self.connection.sent += 1

    def recv(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next result; None once the session has ended and nothing is left to read
        (raises as :meth:`AsyncRealtimeConnection.recv` does)."""
        if not self._blocking:
            return _runtime.run(self.connection.recv(timeout))
        deadline = None if timeout is None else time.monotonic() + timeout
        pumping = _comm_pump.wanted()  # a kernel's main thread: see falnb._runtime._wait
        while True:
            if self._backlog:
                kind, value, generation = self._backlog.popleft()
                if kind == "error" and not self.connection._stale(value, generation):
                    raise value
                if kind == "result":
                    result: dict[str, Any] = value
                    return result
                continue
            ws = self._ws
            if ws is None:
                return None
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if pumping:
                wait = _runtime.PUMP_INTERVAL if wait is None else min(wait, _runtime.PUMP_INTERVAL)
            try:
                message = ws.recv(timeout=wait)
            except TimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise asyncio.TimeoutError from None  # as the async form's wait_for
                _comm_pump.pump()
                continue
            except ConnectionClosed:
                self._end(ws)  # its end (and any abnormal close) is now in the backlog
                continue
            event = AsyncRealtimeConnection._decode(message)
            if event is None:
                continue
            kind, value = event
            if kind == "error":
                # fal's SDK closes the session after any error: the next send opens a new one.
                self._end(ws, ended_by_error=True)
                raise value
            return value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the socket; a later :meth:`send` opens a new one."""
        if not self._blocking:
            _runtime.run(self.connection.close())
        elif (ws := self._ws) is not None:
            self._end(ws, ended_by_error=True)  # a close we asked for is no news

    def _open(self) -> SyncClientConnection:
        with self._open_lock:
            if self._ws is not None:
                return self._ws
            connection = self.connection
            url, headers = _runtime.run(connection._handshake())
            try:
                # Entered as a context manager (websockets 17.1 warns otherwise); _end closes it.
                ws: SyncClientConnection = sync_connect(url, **_socket_options(headers)).__enter__()
            except _OPEN_ERRORS as exc:
                raise _open_error(exc, url, connection.endpoint_id) from None
            connection._generation += 1
            self._refusal = None
            self._ws = ws
            return ws

    def _end(self, ws: SyncClientConnection, *, ended_by_error: bool = False) -> None:
        """Retire ``ws``: keep what it still holds for :meth:`recv`, then close it."""
        if self._ws is ws:
            self._ws = None
        generation = self.connection._generation
        with contextlib.suppress(RuntimeError):  # another thread is reading it: it gets the rest
            while True:
                try:
                    message = ws.recv(timeout=0)
                except TimeoutError:
                    break
                except ConnectionClosedError as exc:
                    if not ended_by_error:
                        closed = RealtimeError("CONNECTION_CLOSED", _close_reason(exc))
                        self._backlog.append(("error", closed, generation))
                    break
                except ConnectionClosed:
                    break
                event = AsyncRealtimeConnection._decode(message)
                if event is None:
                    continue
                self._backlog.append((*event, generation))
                if event[0] == "error":
                    ended_by_error = True
                    if event[1].error in _REFUSALS:
                        self._refusal = event[1]
        ws.close()

    def __enter__(self) -> RealtimeConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not self._blocking:
            return _runtime.iterate(aiter(self.connection))
        return self._iterate()

    def _iterate(self) -> Iterator[dict[str, Any]]:
        with _idle_end_is_quiet():
            while (result := self.recv()) is not None:
                yield result


def connect_realtime_sync(
    transport: Transport,
    endpoint_id: str,
    **options: Unpack[RealtimeOptions],
) -> RealtimeConnection:
    """Blocking :func:`connect_realtime`; ``transport`` must belong to falnb's loop thread
    (it fetches the tokens)."""
    connection = RealtimeConnection(AsyncRealtimeConnection(transport, endpoint_id, **options))
    connection.connect()
    return connection

"""The loop side of the realtime widget: latest-wins requests over one realtime connection.

Any thread calls :meth:`RealtimeDriver.request` with the current inputs; everything else runs
on falnb's loop thread. One pump task sends at most one input at a time and waits for its
answer; inputs that arrive meanwhile replace each other, so the next input sent is always the
newest and the last frame always answers the last inputs. Errors end the current exchange,
are reported, and the next request reconnects. No notebook imports here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from websockets.exceptions import ConnectionClosed

from falnb import _runtime
from falnb._values import sniff_image_type
from falnb.client.errors import FalError, RealtimeError
from falnb.client.realtime import realtime_socket_url

if TYPE_CHECKING:
    from falnb.client import AsyncClient
    from falnb.client._client import LoopRealtimeConnection

__all__ = [
    "Frame",
    "RealtimeDriver",
    "Report",
    "describe_failure",
    "frame_from_result",
    "sniff_image_type",
]

logger = logging.getLogger("falnb.widgets")

#: Errors after which the socket is gone or unusable: drop it, the next request reconnects.
_SESSION_ENDING = frozenset(
    {
        "TIMEOUT",
        "Unauthorized",
        "NOT_FOUND",
        "BAD_REQUEST",
        "CONNECTION_CLOSED",
        "CONNECTION_FAILED",
        "TOKEN_ERROR",
    }
)
#: A send may race the server ending an idle session; one silent retry covers that.
_RETRYABLE = frozenset({"TIMEOUT", "CONNECTION_CLOSED"})
_FPS_WINDOW = 2.0


@dataclass(frozen=True)
class Frame:
    """One answered input: the image shown, and what produced it."""

    image: bytes
    content_type: str
    inputs: dict[str, Any]
    latency: float  # seconds from send to answer
    width: int | None = None
    height: int | None = None


@dataclass
class Report:
    """What the widget shows; the driver hands a fresh one over after every change."""

    status: str = "idle"  # idle | connecting | busy | live | error | closed
    error: str = ""
    frames: int = 0
    fps: float = 0.0
    latency: float = 0.0
    frame: Frame | None = None
    changes: int = 0
    sent: int = 0
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _first_image(result: dict[str, Any]) -> dict[str, Any] | None:
    images = result.get("images")
    if isinstance(images, list) and images and isinstance(images[0], dict):
        return images[0]
    image = result.get("image")
    return image if isinstance(image, dict) else None


async def frame_from_result(
    result: dict[str, Any], inputs: dict[str, Any], latency: float, http: httpx.AsyncClient
) -> Frame:
    """The frame in a realtime result: ``images[0]`` (or ``image``), inline bytes or a URL."""
    image = _first_image(result)
    if image is None:
        raise RealtimeError("NO_IMAGE", "the result has no images[0] or image to show")
    content = image.get("content")
    declared = image.get("content_type")
    if isinstance(content, (bytes, bytearray, memoryview)):
        data = bytes(content)
    elif isinstance(image.get("url"), str):
        response = await http.get(image["url"])
        response.raise_for_status()
        data = response.content
        declared = declared or response.headers.get("content-type")
    else:
        raise RealtimeError("NO_IMAGE", "images[0] has neither content bytes nor a url")
    width, height = image.get("width"), image.get("height")
    return Frame(
        image=data,
        content_type=sniff_image_type(data, declared if isinstance(declared, str) else None),
        inputs=inputs,
        latency=latency,
        width=width if isinstance(width, int) else None,
        height=height if isinstance(height, int) else None,
    )


def describe_failure(exc: BaseException) -> str:
    """One line for the widget; FalError messages are already redacted and readable."""
    if isinstance(exc, RealtimeError) and exc.error == "TIMEOUT":
        return "the server ended the idle session; the next change reconnects"
    if isinstance(exc, RealtimeError) and exc.error == "NOT_FOUND":
        return f"not found: {exc.reason}" if exc.reason else "endpoint not found"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, FalError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class RealtimeDriver:
    """Latest-wins requests to one realtime endpoint, reported through ``on_report``.

    ``on_report`` runs on falnb's loop thread; it must not block. ``throttle`` is the least
    time between two sends (0: send as soon as the previous answer arrives); ``timeout``
    bounds the wait for one answer.
    """

    def __init__(
        self,
        client: AsyncClient,
        endpoint: str,
        on_report: Callable[[Report], None],
        *,
        throttle: float = 0.0,
        timeout: float = 30.0,
    ) -> None:
        self.client = client
        self.endpoint = endpoint
        self.throttle = max(0.0, throttle)
        self.timeout = timeout
        self._on_report = on_report
        self._report = Report()
        self._latest: dict[str, Any] | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._context: AbstractAsyncContextManager[LoopRealtimeConnection] | None = None
        self._connection: LoopRealtimeConnection | None = None
        self._watching = False
        self._closed = False
        self._uploads: dict[str, str] = {}
        self._http: httpx.AsyncClient | None = None
        self._frame_times: deque[float] = deque()
        self._last_send = float("-inf")

    # -- any thread ------------------------------------------------------------------------

    def request(self, inputs: dict[str, Any]) -> None:
        """Ask for a frame for ``inputs`` (thread-safe, never blocks; newer replaces older)."""
        _runtime.call_soon(self._accept, inputs)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the pump and close the connection; waits up to ``timeout`` s when off-loop."""
        if _runtime.in_loop_thread():
            _runtime.close_soon(self.aclose)
            return
        future = _runtime.submit(self.aclose())
        with contextlib.suppress(Exception):
            future.result(timeout=timeout)

    @property
    def report(self) -> Report:
        return self._report

    # -- what a browser needs to connect itself (loop thread) --------------------------------

    def socket_url(self) -> str:
        """The endpoint's realtime socket URL, without credentials."""
        return realtime_socket_url(self.client.target, self.endpoint)

    async def mint_token(self, expiration: int) -> str:
        """A token for this endpoint only, expiring after ``expiration`` seconds."""
        return await self.client.realtime_token(self.endpoint, expiration)

    # -- loop thread -----------------------------------------------------------------------

    def _publish(self, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self._report, name, value)
        try:
            self._on_report(self._report)
        except Exception:
            logger.debug("realtime widget report failed", exc_info=True)

    def _accept(self, inputs: dict[str, Any]) -> None:
        if self._closed:
            return
        self._latest = inputs
        self._report.changes += 1
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        assert self._wake is not None
        while not self._closed:
            if self._latest is None:
                await self._wait_idle()
                continue
            wait = self._last_send + self.throttle - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
            inputs, self._latest = self._latest, None
            self._wake.clear()
            await self._exchange(inputs)

    async def _wait_idle(self) -> None:
        """Wait for the next request; meanwhile notice the server ending the session."""
        assert self._wake is not None
        wake = asyncio.ensure_future(self._wake.wait())
        tasks: set[asyncio.Future[Any]] = {wake}
        watch: asyncio.Future[Any] | None = None
        if self._connection is not None and self._watching:
            watch = asyncio.ensure_future(self._connection.recv())
            tasks.add(watch)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
        if watch is None or not watch.done() or watch.cancelled():
            return
        self._watching = False
        exc = watch.exception()
        if isinstance(exc, RealtimeError) and exc.error == "TIMEOUT":
            self._publish(status="idle", error=describe_failure(exc))
        elif exc is not None:
            self._publish(
                status="error", error=describe_failure(exc), errors=self._report.errors + 1
            )
        if exc is not None or watch.result() is None:
            await self._drop_connection()

    async def _exchange(self, inputs: dict[str, Any]) -> None:
        failure = await self._attempt(inputs)
        if isinstance(failure, RealtimeError) and failure.error in _RETRYABLE:
            failure = await self._attempt(inputs)  # the socket was ending as we sent
        if failure is not None:
            self._fail(failure)

    async def _attempt(self, inputs: dict[str, Any]) -> BaseException | None:
        """One exchange; the error it ended with (its connection dropped when unusable)."""
        try:
            await self._exchange_once(inputs)
        except RealtimeError as exc:
            if exc.error in _SESSION_ENDING:
                await self._drop_connection()
            return exc
        except TimeoutError:
            await self._drop_connection()  # a late answer must not pass for the next one
            return RealtimeError("NO_ANSWER", f"no answer within {self.timeout:g} s")
        except ConnectionClosed as exc:
            # The client names a refusal it was told about (Unauthorized, NOT_FOUND); a bare
            # close (1008 included) says no more than its code and reason.
            await self._drop_connection()
            code = exc.rcvd.code if exc.rcvd else 1006
            reason = f": {exc.rcvd.reason}" if exc.rcvd and exc.rcvd.reason else ""
            return RealtimeError(
                "CONNECTION_CLOSED", f"the server closed the socket ({code}{reason})"
            )
        except Exception as exc:  # noqa: BLE001 - any failure is shown; the pump must go on
            await self._drop_connection()
            return exc
        return None

    def _fail(self, exc: BaseException) -> None:
        logger.debug("realtime exchange with %s failed: %s", self.endpoint, describe_failure(exc))
        self._publish(status="error", error=describe_failure(exc), errors=self._report.errors + 1)

    async def _exchange_once(self, inputs: dict[str, Any]) -> None:
        connection = await self._ensure_connection()
        payload = await self.prepare(inputs)
        self._publish(status="busy")
        loop = asyncio.get_running_loop()
        started = self._last_send = loop.time()
        self._watching = False
        await connection.send(payload)
        self._publish(sent=self._report.sent + 1)
        result = await connection.recv(timeout=self.timeout)
        if result is None:
            raise RealtimeError("CONNECTION_CLOSED", "the session ended before answering")
        self._watching = True
        latency = loop.time() - started
        frame = await frame_from_result(result, _displayable(inputs), latency, self._client())
        now = time.monotonic()
        self._frame_times.append(now)
        while self._frame_times and now - self._frame_times[0] > _FPS_WINDOW:
            self._frame_times.popleft()
        self._publish(
            status="live",
            error="",
            frame=frame,
            frames=self._report.frames + 1,
            latency=latency,
            fps=self._fps(),
        )

    def _fps(self) -> float:
        times = self._frame_times
        if len(times) < 2 or times[-1] <= times[0]:
            return self._report.fps
        return (len(times) - 1) / (times[-1] - times[0])

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout, follow_redirects=True)
        return self._http

    async def _ensure_connection(self) -> LoopRealtimeConnection:
        if self._connection is not None:
            return self._connection
        self._publish(status="connecting")
        # Latest-wins lives here (one input in flight); the connection just sends.
        context = self.client.realtime(self.endpoint)
        connection = await context.__aenter__()
        self._context, self._connection = context, connection
        return connection

    async def _drop_connection(self) -> None:
        context, self._context, self._connection = self._context, None, None
        self._watching = False
        if context is not None:
            with contextlib.suppress(Exception):
                await context.__aexit__(None, None, None)

    async def prepare(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Image bytes for ``*_url`` inputs go up to the CDN once; the URL is reused."""
        prepared: dict[str, Any] = {}
        for name, value in inputs.items():
            if isinstance(value, bytes) and name.endswith("_url"):
                digest = hashlib.sha256(value).hexdigest()
                if digest not in self._uploads:
                    self._uploads[digest] = await self.client.upload(
                        value, sniff_image_type(value), None
                    )
                prepared[name] = self._uploads[digest]
            else:
                prepared[name] = value
        return prepared

    async def aclose(self) -> None:
        """Stop the pump, close the connection and the download client (on the loop)."""
        self._closed = True
        self._latest = None
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._drop_connection()
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
        self._publish(status="closed")


def _displayable(inputs: dict[str, Any]) -> dict[str, Any]:
    """The inputs without raw bytes (images), for labels and repr."""
    return {k: v for k, v in inputs.items() if not isinstance(v, (bytes, bytearray))}

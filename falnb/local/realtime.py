"""Realtime sessions over WebSocket, as fal apps serve them (fal-protocol.md section 5).

Inputs arrive as binary msgpack maps and wait in a bounded buffer (``max_buffering``, 1..60)
that drops the *oldest* input when full, so a busy handler always works on recent inputs.
Each input gets one binary msgpack reply, followed by a JSON ``timings`` message. An error (a
frame that does not decode, or a failing handler) is a JSON text frame (``x-fal-error``),
after which the server closes the session normally (1000), as fal's SDK does: the client
reconnects for its next input. After an idle period with no input the server says
``TIMEOUT`` and closes the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import msgpack
from starlette.websockets import WebSocket, WebSocketState

from falnb._config import LOCAL_REALTIME_IDLE_TIMEOUT
from falnb._protocol import describe_field_errors
from falnb.local.apperror import AppError
from falnb.local.registry import Endpoint, LogLevel

if TYPE_CHECKING:
    from falnb.local.state import ServerState

__all__ = ["DEFAULT_MAX_BUFFERING", "serve_realtime"]

logger = logging.getLogger("falnb.local.realtime")

DEFAULT_MAX_BUFFERING = 16
MAX_BUFFERING_RANGE = (1, 60)
#: Close code for a refused session (policy violation), never 1000.
CLOSE_REFUSED = 1008
#: Sync handlers running at once, across all sessions (anyio's default thread limit): a frame
#: holds its arrays while it runs, so a crowd of sessions waits for a thread, not for memory.
MAX_RUNNING = 40
_HANDLERS = ThreadPoolExecutor(MAX_RUNNING, thread_name_prefix="falnb-realtime")


def _alias(endpoint_id: str) -> str:
    return endpoint_id.split("/")[1]


def _idle_timeout(state: ServerState) -> float:
    value = state.realtime_idle_timeout
    return float(value) if value else LOCAL_REALTIME_IDLE_TIMEOUT


def _parse_max_buffering(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return DEFAULT_MAX_BUFFERING
    low, high = MAX_BUFFERING_RANGE
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if low <= value <= high else None


class _Session:
    """One connection: a receive loop filling the buffer, a worker draining it.

    A sync handler runs on a thread of ``_HANDLERS``, one input at a time and in order (the
    next is handed over once the last is answered): handing it a frame costs ~110 us of CPU
    where anyio's ``to_thread`` costs ~175 us (its limiter, context copy and checkpoints).
    """

    def __init__(
        self, websocket: WebSocket, state: ServerState, endpoint: Endpoint, buffering: int
    ) -> None:
        self.websocket = websocket
        self.state = state
        self.endpoint = endpoint
        self.inputs: deque[dict[str, Any]] = deque(maxlen=buffering)
        self.arrived = asyncio.Event()
        self.last_input = time.monotonic()
        self.send_lock = asyncio.Lock()
        self.context = state.make_context(str(uuid.uuid4()), endpoint.endpoint_id, self._log)
        assert endpoint.realtime is not None
        self.handler = endpoint.realtime
        self.is_async = inspect.iscoroutinefunction(self.handler)
        self.running: Future[Any] | None = None

    def _log(self, message: str, level: LogLevel) -> None:
        logger.debug("%s [%s] %s", self.endpoint.endpoint_id, level, message)

    async def send_json(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.websocket.send_text(json.dumps(message))

    async def end_with_error(self, error: str, reason: str) -> None:
        """Say what went wrong, then close: fal's SDK ends a session after any error."""
        async with self.send_lock:
            with contextlib.suppress(Exception):  # the client may be gone already
                message = {"type": "x-fal-error", "error": error, "reason": reason}
                await self.websocket.send_text(json.dumps(message))
                await self.websocket.close(code=1000)

    async def receive_loop(self) -> None:
        """Read frames until the client leaves; a bad frame ends the session."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            value, problem = _decode(message.get("bytes"))
            if problem:
                await self.end_with_error("BAD_INPUT", problem)
                return
            self.inputs.append(value)  # a full deque drops its oldest input
            self.last_input = time.monotonic()
            self.arrived.set()

    async def work_loop(self) -> None:
        """Answer buffered inputs in order; end the session after an idle timeout."""
        idle = _idle_timeout(self.state)
        loop = asyncio.get_running_loop()
        while True:
            if not self.inputs:
                remaining = idle - (time.monotonic() - self.last_input)
                if remaining <= 0:
                    await self.end_with_error("TIMEOUT", "no inputs, reconnect when needed!")
                    return
                self.arrived.clear()
                # A timer that wakes the wait, not wait_for(): that costs a task per input.
                alarm = loop.call_later(remaining, self.arrived.set)
                try:
                    await self.arrived.wait()
                finally:
                    alarm.cancel()
                continue
            if not await self.answer(self.inputs.popleft()):
                return

    async def answer(self, arguments: dict[str, Any]) -> bool:
        """Answer one input; False when it failed (the session is then closed)."""
        started = time.perf_counter()
        try:
            if self.is_async:
                output = self.handler(arguments, self.context)
            else:
                self.running = _HANDLERS.submit(self.handler, arguments, self.context)
                output = await asyncio.wrap_future(self.running)
            if inspect.isawaitable(output):
                output = await output
            frame = msgpack.packb(output, use_bin_type=True)
        except AppError as exc:
            # The app chose its answer: a 4xx is the caller's input, named field by field.
            code = "BAD_INPUT" if exc.status_code < 500 else "INTERNAL_ERROR"
            await self.end_with_error(code, describe_field_errors(exc.detail))
            return False
        except Exception as exc:
            logger.debug("realtime handler of %s failed", self.endpoint.endpoint_id, exc_info=True)
            await self.end_with_error("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
            return False
        timing = time.perf_counter() - started
        async with self.send_lock:
            await self.websocket.send_bytes(frame)
        await self.send_json({"type": "x-fal-message", "action": "timings", "timing": timing})
        return True

    async def finish(self) -> None:
        """Let a handler still running return (a thread cannot be interrupted): a session
        ends after its last handler, never under it."""
        if self.running is not None:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(self.running)


def _decode(raw: bytes | None) -> tuple[dict[str, Any], str]:
    """An input frame's arguments, or what is wrong with it."""
    if raw is None:
        return {}, "send inputs as binary msgpack frames"
    try:
        value = msgpack.unpackb(raw, raw=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        return {}, "input is not valid msgpack"
    if not isinstance(value, dict):
        return {}, "input must be a map of arguments"
    return value, ""


async def _refuse(websocket: WebSocket, message: dict[str, Any]) -> None:
    await websocket.accept()
    await websocket.send_text(json.dumps(message))
    await websocket.close(code=CLOSE_REFUSED)


async def serve_realtime(websocket: WebSocket, state: ServerState, endpoint: Endpoint) -> None:
    """Run one realtime session for ``endpoint`` on an unaccepted ``websocket``.

    Auth (:mod:`falnb.local.auth`): the key, or an app token minted by ``/tokens/`` for this
    endpoint's alias (``?fal_jwt_token=`` or Bearer). A refused session gets
    ``{"status": "error", "error": "Unauthorized"}`` and close code 1008.
    """
    if not state.auth.app_allowed(websocket, _alias(endpoint.endpoint_id)):
        await _refuse(websocket, {"status": "error", "error": "Unauthorized"})
        return
    if endpoint.realtime is None:
        reason = f"endpoint {endpoint.endpoint_id!r} has no realtime handler"
        await _refuse(websocket, {"type": "x-fal-error", "error": "NOT_FOUND", "reason": reason})
        return
    buffering = _parse_max_buffering(websocket.query_params.get("max_buffering"))
    if buffering is None:
        low, high = MAX_BUFFERING_RANGE
        reason = f"max_buffering must be an integer in {low}..{high}"
        await _refuse(websocket, {"type": "x-fal-error", "error": "BAD_REQUEST", "reason": reason})
        return
    await websocket.accept()
    session = _Session(websocket, state, endpoint, buffering)
    worker = asyncio.create_task(session.work_loop())
    receiver = asyncio.create_task(session.receive_loop())
    try:
        await asyncio.wait({worker, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (worker, receiver):
            task.cancel()
        for task in (worker, receiver):
            # A client that left mid-send surfaces here as a disconnect or transport error.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await session.finish()
        if websocket.client_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close(code=1000)

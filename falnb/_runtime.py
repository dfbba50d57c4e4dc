"""falnb's private event loop, on a daemon thread, and the bridges to it.

Network I/O runs on this one loop, whatever the caller's context: a plain script, a
notebook kernel whose own loop is already running, or a widget callback on an ipykernel 7
subshell thread. Sync callers block on a future (on a kernel's main thread, still handling
falnb's own widget messages such as Cancel: ``falnb._comm_pump``); async callers await a
wrapped future. No nest_asyncio, no use of the caller's loop (reference/notebook-notes.md
section 4). The one exception: the sync front's plain requests (a ``run``, a download) do
their I/O in the calling thread when :func:`may_block` allows, as the hop costs more there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from falnb import _comm_pump

__all__ = [
    "aiterate",
    "call_soon",
    "close_soon",
    "get_loop",
    "iterate",
    "may_block",
    "run",
    "run_async",
    "run_completing",
    "submit",
]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def get_loop() -> asyncio.AbstractEventLoop:
    """The falnb loop, started on first use (and again after a fork)."""
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def main() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=main, name="falnb-loop", daemon=True)
            thread.start()
            ready.wait()
            _loop, _thread = loop, thread
        return _loop


def in_loop_thread() -> bool:
    return _thread is not None and threading.current_thread() is _thread


def may_block() -> bool:
    """Whether a sync call may do its I/O in this thread rather than wait on falnb's loop:
    not from falnb's own loop thread (its sync API refuses that), nor on a kernel's main
    thread that must keep handling falnb's widget messages while it waits (see :func:`_wait`)."""
    return not in_loop_thread() and not _comm_pump.wanted()


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule ``coro`` on the falnb loop and return a thread-safe future."""
    if in_loop_thread():
        coro.close()
        raise RuntimeError("falnb's sync API cannot be called from falnb's own loop thread")
    return asyncio.run_coroutine_threadsafe(coro, get_loop())


def call_soon(callback: Callable[..., object], *args: object) -> None:
    """Run a plain callback on the falnb loop (thread-safe, never blocks)."""
    get_loop().call_soon_threadsafe(callback, *args)


def run(
    coro: Coroutine[Any, Any, T],
    *,
    on_interrupt: Callable[[], Awaitable[object]] | None = None,
    interrupt_timeout: float = 10.0,
) -> T:
    """Run ``coro`` on the falnb loop and block until it finishes.

    On KeyboardInterrupt the task is cancelled, then ``on_interrupt`` (e.g. a remote cancel)
    runs to completion before the interrupt is re-raised: nothing paid for keeps running.
    """
    future = submit(coro)
    try:
        return _wait(future)
    except KeyboardInterrupt:
        future.cancel()
        if on_interrupt is not None:
            cleanup = submit(_swallow(on_interrupt))
            try:
                cleanup.result(timeout=interrupt_timeout)
            except (concurrent.futures.TimeoutError, KeyboardInterrupt):
                cleanup.cancel()
        raise


def run_completing(
    coro: Coroutine[Any, Any, T],
    *,
    undo: Callable[[T], Awaitable[object]],
    grace: float = 10.0,
) -> T:
    """Like :func:`run`, for a step that creates paid work (a queue submission).

    On KeyboardInterrupt the step is not abandoned half-way (the server may already have
    accepted it, and then nobody would hold its id): it may finish for up to ``grace`` seconds,
    then ``undo(result)`` (e.g. a remote cancel) runs before the interrupt is re-raised. A
    second interrupt during the grace period gives up at once.
    """
    future = submit(coro)
    try:
        return _wait(future)
    except KeyboardInterrupt as interrupt:
        try:
            result = future.result(timeout=grace)
        except BaseException:  # noqa: BLE001 - timed out, failed or interrupted again: no undo
            future.cancel()
            raise interrupt from None
        cleanup = submit(_swallow(lambda: undo(result)))
        try:
            cleanup.result(timeout=grace)
        except (concurrent.futures.TimeoutError, KeyboardInterrupt):
            cleanup.cancel()
        raise


#: How often a blocked kernel main thread looks for falnb's widget messages (e.g. Cancel).
PUMP_INTERVAL = 0.05


def _wait(future: concurrent.futures.Future[T]) -> T:
    """``future.result()``; on a kernel's main thread, handling falnb's widget messages
    meanwhile (without them a Cancel click would wait for the job it should stop)."""
    if not _comm_pump.wanted():
        return future.result()
    while not future.done():
        concurrent.futures.wait([future], timeout=PUMP_INTERVAL)
        _comm_pump.pump()
    return future.result()


async def _swallow(fn: Callable[[], Awaitable[object]]) -> None:
    try:
        await fn()
    except Exception:  # noqa: BLE001 - best effort while the user is interrupting
        return


async def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the falnb loop from any other running loop."""
    if in_loop_thread():
        return await coro
    future = submit(coro)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        future.cancel()
        raise


def iterate(agen: AsyncIterator[T]) -> Iterator[T]:
    """Drive an async iterator that lives on the falnb loop from sync code."""
    try:
        while True:
            try:
                item = run(_anext(agen))
            except StopAsyncIteration:
                return
            yield item
    finally:
        aclose = getattr(agen, "aclose", None)
        if aclose is not None and not in_loop_thread():
            with contextlib.suppress(RuntimeError):
                run(aclose())


async def aiterate(agen: AsyncIterator[T]) -> AsyncIterator[T]:
    """Drive an async iterator that lives on the falnb loop from any other running loop."""
    try:
        while True:
            try:
                item = await run_async(_anext(agen))
            except StopAsyncIteration:
                return
            yield item
    finally:
        aclose = getattr(agen, "aclose", None)
        if aclose is not None:
            # Never awaited: the caller may be cancelled, and closing must not depend on it.
            close_soon(aclose)


_closing: set[asyncio.Future[Any]] = set()


def close_soon(aclose: Callable[[], Awaitable[object]]) -> None:
    """Run ``aclose()`` on the falnb loop without waiting; errors are ignored."""

    async def close() -> None:
        try:
            await aclose()
        except Exception:  # noqa: BLE001 - already closed, or still running and ending anyway
            return

    if in_loop_thread():
        task = asyncio.ensure_future(close())
        _closing.add(task)
        task.add_done_callback(_closing.discard)
    else:
        asyncio.run_coroutine_threadsafe(close(), get_loop())


async def _anext(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()

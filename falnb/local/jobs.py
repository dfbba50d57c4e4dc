"""Running app handlers: direct calls, streams, and the queue of submitted requests.

The queue is a real FIFO served by ``concurrency`` workers on the server's event loop. A
request goes IN_QUEUE -> IN_PROGRESS -> COMPLETED and never anything else (fal-protocol.md
section 3.3); failures and cancellations are COMPLETED with ``error``/``error_type``, and the
result endpoint replays the stored answer. Sync handlers run in worker threads; their logs
reach waiting status streams through ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, Protocol

from anyio import to_thread

from falnb._protocol import request_urls
from falnb.local.apperror import AppError
from falnb.local.appoutput import binary_stream_output
from falnb.local.registry import Context, Endpoint, LogLevel, StreamItem

if TYPE_CHECKING:
    from falnb.local.files import Lifecycle
    from falnb.local.webhooks import Webhooks

__all__ = [
    "POSITION_REFRESH",
    "Failure",
    "Job",
    "JobManager",
    "call_handler",
    "failure_from",
    "iterate_handler",
    "log_timestamp",
    "wait_any",
]

log = logging.getLogger("falnb.local")

Status = Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
#: How often a queued request's status stream re-reads its queue position (seconds): a
#: change of position is news, but not worth an event per job started ahead of it.
POSITION_REFRESH = 0.5
Output = dict[str, Any]


#: Builds a handler's context: ``(request_id, endpoint_id, log_sink)``.
class ContextFactory(Protocol):
    """Builds a handler's context; ``lifecycle`` applies to the files its output stores."""

    def __call__(
        self,
        request_id: str,
        endpoint_id: str,
        log_sink: Callable[[str, LogLevel], None],
        lifecycle: Lifecycle | None = None,
    ) -> Context: ...


@dataclass(frozen=True)
class Failure:
    """A stored error answer: replayed by the result endpoint, summarised in the status."""

    status_code: int
    body: Any
    message: str
    error_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, status_code: int, detail: str, error_type: str, **headers: str) -> Failure:
        """fal's answer shape: ``{"detail", "error_type"}`` and ``x-fal-error-type``, plus
        ``headers`` (``x_fal_request_timeout_type="user"`` for ``x-fal-request-timeout-type``)."""
        extra = {name.replace("_", "-"): value for name, value in headers.items()}
        return cls(
            status_code,
            {"detail": detail, "error_type": error_type},
            detail,
            error_type,
            {"x-fal-error-type": error_type, **extra},
        )


CANCELLED = Failure.of(499, "Request cancelled", "client_cancelled")
START_TIMEOUT = Failure.of(
    504, "Request timed out before it started", "request_timeout", x_fal_request_timeout_type="user"
)


def failure_from(exc: BaseException) -> Failure:
    """The answer for an exception a handler raised; no traceback text reaches clients."""
    if isinstance(exc, AppError):
        return Failure(
            exc.status_code, exc.body(), exc.message(), exc.error_type, exc.response_headers()
        )
    return Failure.of(500, f"{type(exc).__name__}: {exc}", "runner_server_error")


def log_timestamp(when: float | None = None) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, as fal's log entries carry."""
    moment = datetime.fromtimestamp(time.time() if when is None else when, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def wait_any(events: list[asyncio.Event], seconds: float | None = None) -> bool:
    """Wait until one of ``events`` is set; False if ``seconds`` pass first."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)


def _check_output(output: object, endpoint_id: str) -> Output:
    """``output`` if it is a JSON object every answer can carry, else a TypeError.

    Checked here, once, so a bad output fails its request with a JSON 500 instead of
    breaking the response (or every later fetch of a queued result) as a plain-text 500.
    """
    if not isinstance(output, dict):
        raise TypeError(f"{endpoint_id} returned {type(output).__name__}, expected a dict")
    try:
        json.dumps(output, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:  # ValueError: also UnicodeError
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise TypeError(f"{endpoint_id} returned an output that is not JSON: {reason}") from None
    return output


async def call_handler(endpoint: Endpoint, arguments: dict[str, Any], ctx: Context) -> Output:
    """Run the endpoint once and return its output (a stream-only endpoint is drained)."""
    handler = endpoint.handler
    if handler is None:
        last: Output | None = None
        chunks: list[bytes] = []
        async for item in iterate_handler(endpoint, arguments, ctx):
            if isinstance(item, bytes):
                chunks.append(item)
            else:
                last = item
        if chunks and last is not None:
            raise TypeError(f"{endpoint.endpoint_id} streamed both outputs and bytes")
        if chunks:
            return await to_thread.run_sync(binary_stream_output, b"".join(chunks), ctx)
        if last is None:
            raise RuntimeError(f"{endpoint.endpoint_id} streamed no output")
        return last
    if inspect.iscoroutinefunction(handler):
        result: object = await handler(arguments, ctx)
    else:
        # Abandon (not wait for) a cancelled sync handler: ctx.cancelled tells it to stop.
        result = await to_thread.run_sync(handler, arguments, ctx, abandon_on_cancel=True)
        if inspect.isawaitable(result):
            result = await result
    return _check_output(result, endpoint.endpoint_id)


def _check_item(item: object, endpoint_id: str) -> StreamItem:
    """A stream item: a chunk of a binary stream, else an output :func:`_check_output` passes."""
    if isinstance(item, bytes):
        return item
    return _check_output(item, endpoint_id)


async def iterate_handler(
    endpoint: Endpoint, arguments: dict[str, Any], ctx: Context
) -> AsyncIterator[StreamItem]:
    """The endpoint's stream items (outputs, or a binary stream's ``bytes`` chunks); an
    endpoint without a stream handler yields its output."""
    stream = endpoint.stream
    if stream is None:
        if endpoint.handler is None:
            raise AppError(405, f"Endpoint '{endpoint.endpoint_id}' only serves realtime")
        yield await call_handler(endpoint, arguments, ctx)
        return
    if inspect.isasyncgenfunction(stream):
        async for item in stream(arguments, ctx):
            yield _check_item(item, endpoint.endpoint_id)
        return
    produced = await to_thread.run_sync(stream, arguments, ctx, abandon_on_cancel=True)
    if isinstance(produced, AsyncIterator):
        async for item in produced:
            yield _check_item(item, endpoint.endpoint_id)
        return
    items: Iterator[StreamItem] = iter(produced)
    done = object()
    while True:
        item = await to_thread.run_sync(next, items, done, abandon_on_cancel=True)
        if item is done:
            return
        yield _check_item(item, endpoint.endpoint_id)


@dataclass(eq=False)
class Job:
    """One queued request and everything its status, result and webhook need."""

    request_id: str
    endpoint: Endpoint
    endpoint_id: str
    app_path: str  # owner/alias: where its status/result/cancel URLs live
    arguments: dict[str, Any]
    ctx: Context
    webhook_url: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    deadline: float | None = None  # time.monotonic()
    status: Status = "IN_QUEUE"
    ticket: int = 0
    """Its number in the queue's order: the queued jobs' tickets are consecutive, so its
    position is its ticket minus the first one's (O(1), however long the queue)."""
    started_at: float | None = None
    finished_at: float | None = None
    output: Output | None = None
    failure: Failure | None = None
    task: asyncio.Task[Output] | None = field(default=None, repr=False)
    _logs: list[tuple[float, dict[str, Any]]] = field(default_factory=list, repr=False)
    _log_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def done(self) -> bool:
        return self.status == "COMPLETED"

    def notify(self) -> None:
        """Wake everyone waiting for a change (call on the server loop)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    @property
    def changed(self) -> asyncio.Event:
        """The event the next change sets; take it *before* reading state, then wait on it."""
        return self._changed

    def add_log(self, message: str, level: str = "INFO") -> None:
        entry = {
            "message": message,
            "level": level,
            "source": "USER",
            "timestamp": log_timestamp(),
            "labels": {},
        }
        with self._log_lock:
            self._logs.append((time.monotonic(), entry))

    def logs_since(self, index: int) -> tuple[list[dict[str, Any]], int]:
        """Log entries from ``index`` on, and the index to ask for next time."""
        with self._log_lock:
            return [entry for _, entry in self._logs[index:]], len(self._logs)

    def log_window(self, lines: int, seconds: float) -> list[dict[str, Any]]:
        """The moving window a status poll shows: the last ``lines`` of the last ``seconds``."""
        since = time.monotonic() - seconds
        with self._log_lock:
            recent = [entry for at, entry in self._logs if at >= since]
        return recent[-lines:] if lines > 0 else []


class JobManager:
    """The FIFO queue of submitted requests and the workers that run them.

    It is handed only what it uses: how to build a handler's context, where the queue's URLs
    live (read when needed: the port is known only once the server has bound it), and who
    delivers webhooks.
    """

    def __init__(
        self,
        make_context: ContextFactory,
        queue_url: Callable[[], str],
        webhooks: Webhooks | None = None,
        *,
        concurrency: int = 2,
        keep: int = 10_000,
        log_window_lines: int = 50,
        log_window_seconds: float = 10.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._make_context = make_context
        self._queue_url = queue_url
        self._webhooks = webhooks
        self.concurrency = concurrency
        self.keep = keep
        self.log_window_lines = log_window_lines
        self.log_window_seconds = log_window_seconds
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: deque[Job] = deque()
        self._next_ticket = 0
        self._wakeup: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        #: Set when the server begins to stop: open streams end so shutdown is prompt.
        self.closing = asyncio.Event()

    # -- lifecycle (on the server loop) -------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Condition()
        self._workers = [
            asyncio.create_task(self._worker(), name=f"falnb-worker-{i}")
            for i in range(self.concurrency)
        ]

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The server loop the queue runs on (None before the server starts)."""
        return self._loop

    def begin_close(self) -> None:
        """End open streams and running direct calls (on the server loop, before shutdown)."""
        self.closing.set()
        for job in list(self._jobs.values()):
            job.notify()

    async def stop(self) -> None:
        for job in list(self._jobs.values()):
            if not job.done:
                job.ctx.cancelled.set()
                if job.task is not None:
                    job.task.cancel()
        tasks = [*self._workers, *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers = []

    # -- queue operations ---------------------------------------------------------------

    async def submit(
        self,
        endpoint: Endpoint,
        endpoint_id: str,
        app_path: str,
        arguments: dict[str, Any],
        *,
        webhook_url: str | None = None,
        options: dict[str, str] | None = None,
        start_timeout: float | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> Job:
        """Queue a request; it starts when a worker is free. Files its output stores get
        ``lifecycle`` (the store's default when None)."""
        assert self._wakeup is not None, "JobManager not started"
        assert self._loop is not None
        request_id = str(uuid.uuid4())
        loop = self._loop
        job_ref: list[Job] = []

        def log_sink(message: str, level: LogLevel) -> None:
            job = job_ref[0]
            job.add_log(message, level)
            loop.call_soon_threadsafe(job.notify)

        ctx = self._make_context(request_id, endpoint_id, log_sink, lifecycle)
        job = Job(
            request_id=request_id,
            endpoint=endpoint,
            endpoint_id=endpoint_id,
            app_path=app_path,
            arguments=arguments,
            ctx=ctx,
            webhook_url=webhook_url,
            options=dict(options or {}),
            deadline=None if start_timeout is None else time.monotonic() + start_timeout,
        )
        job_ref.append(job)
        self._jobs[request_id] = job
        self._forget_old()
        async with self._wakeup:
            job.ticket = self._next_ticket
            self._next_ticket += 1
            self._queue.append(job)
            self._wakeup.notify()
        return job

    def get(self, request_id: str) -> Job | None:
        return self._jobs.get(request_id)

    def request_ids(self) -> list[str]:
        """The ids of the jobs the server still knows, oldest first."""
        return list(self._jobs)

    def position(self, job: Job) -> int:
        """0-based place in the queue (0 = next to start; also once it has left it)."""
        if job.status != "IN_QUEUE" or not self._queue:
            return 0
        return max(0, job.ticket - self._queue[0].ticket)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def cancel(self, job: Job) -> bool:
        """Cancel a queued or running job; False if it had already completed."""
        if job.done:
            return False
        job.ctx.cancelled.set()
        if job.endpoint.on_cancel == "signal" and job not in self._queue:
            # As fal's cloud: a running app is only told; it may still finish with output.
            job.add_log("cancellation requested", "INFO")
            return True
        if job in self._queue:
            self._queue.remove(job)
            self._renumber()
        elif job.task is not None:
            job.task.cancel()
        self._complete(job, failure=CANCELLED)
        return True

    # -- status bodies ------------------------------------------------------------------

    def urls(self, job: Job) -> dict[str, str]:
        return request_urls(self._queue_url(), job.app_path, job.request_id)

    def status_body(
        self, job: Job, *, with_logs: bool, logs: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The status JSON (fal-protocol.md section 3.3); ``logs`` overrides the poll window."""
        body: dict[str, Any] = {"status": job.status, "request_id": job.request_id}
        body.update(self.urls(job))
        if job.status == "IN_QUEUE":
            body["queue_position"] = self.position(job)
            return body
        if not with_logs:
            body["logs"] = None
        elif logs is not None:
            body["logs"] = logs
        else:
            body["logs"] = job.log_window(self.log_window_lines, self.log_window_seconds)
        if job.status == "COMPLETED":
            metrics: dict[str, Any] = {}
            if job.started_at is not None and job.finished_at is not None:
                metrics["inference_time"] = round(job.finished_at - job.started_at, 6)
            body["metrics"] = metrics
            if job.failure is not None:
                body["error"] = job.failure.message
                body["error_type"] = job.failure.error_type
        return body

    # -- workers ------------------------------------------------------------------------

    async def _worker(self) -> None:
        assert self._wakeup is not None
        while True:
            async with self._wakeup:
                await self._wakeup.wait_for(lambda: bool(self._queue))
                job = self._queue.popleft()
            await self._run(job)

    async def _run(self, job: Job) -> None:
        if job.done:  # cancelled between leaving the queue and starting
            return
        if job.deadline is not None and time.monotonic() > job.deadline:
            self._complete(job, failure=START_TIMEOUT)
            return
        job.status = "IN_PROGRESS"
        job.started_at = time.monotonic()
        job.notify()
        task = asyncio.create_task(call_handler(job.endpoint, job.arguments, job.ctx))
        job.task = task
        try:
            # wait() (not await task) so a cancelled job does not look like a stopping worker.
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            raise
        if job.finished_at is not None:  # cancelled meanwhile: its answer is stored already
            return
        if task.cancelled():
            self._complete(job, failure=CANCELLED)
        elif (exc := task.exception()) is not None:
            if not isinstance(exc, AppError):
                log.warning("%s (%s) failed", job.endpoint_id, job.request_id, exc_info=exc)
            self._complete(job, failure=failure_from(exc))
        else:
            self._complete(job, output=task.result())

    def _complete(
        self, job: Job, *, output: Output | None = None, failure: Failure | None = None
    ) -> None:
        job.status = "COMPLETED"
        job.output, job.failure = output, failure
        job.finished_at = time.monotonic()
        if job.started_at is None:
            job.started_at = job.finished_at
        job.notify()
        if job.webhook_url and self._webhooks is not None:
            self._spawn(self._deliver(self._webhooks, job))

    async def _deliver(self, webhooks: Webhooks, job: Job) -> None:
        assert job.webhook_url is not None
        failure = job.failure
        try:
            await webhooks.deliver(
                job.webhook_url,
                request_id=job.request_id,
                ok=failure is None,
                payload=job.output if failure is None else failure.body,
                error=None if failure is None else failure.message,
            )
        except Exception:
            log.warning("webhook delivery for %s failed", job.request_id, exc_info=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _renumber(self) -> None:
        """A job left the middle of the queue: close the gap in the tickets behind it.

        Queued jobs' status streams are not woken when the queue moves (that would be every
        queued stream at every start); they re-read their position every
        :data:`POSITION_REFRESH` seconds instead.
        """
        first = self._queue[0].ticket if self._queue else self._next_ticket
        for place, queued in enumerate(self._queue):
            queued.ticket = first + place
        self._next_ticket = first + len(self._queue)

    def _forget_old(self) -> None:
        while len(self._jobs) > self.keep:
            oldest_id, oldest = next(iter(self._jobs.items()))
            if not oldest.done:
                break
            del self._jobs[oldest_id]
            with contextlib.suppress(ValueError):
                self._queue.remove(oldest)

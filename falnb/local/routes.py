"""The local server's fal routes: run, stream, queue, realtime hand-over and test hooks.

Shapes follow fal-protocol.md sections 3 and 4 and its Addendum; auth, request ids, faults
and the journal are the gateway's job (:mod:`falnb.local.gateway`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from falnb._protocol import (
    BILLABLE_UNITS,
    LOCAL_QUEUE,
    NAMESPACES,
    billable_units_header,
    strip_namespace,
)
from falnb.local.appoutput import sniff_content_type
from falnb.local.bodies import BodyTooLargeError, InvalidJSONError, loads_strict, read_limited
from falnb.local.gateway import RequestInfo
from falnb.local.jobs import (
    POSITION_REFRESH,
    START_TIMEOUT,
    Failure,
    Job,
    call_handler,
    failure_from,
    iterate_handler,
    wait_any,
)
from falnb.local.registry import Context, Endpoint, StreamItem
from falnb.local.storage import lifecycle_of

if TYPE_CHECKING:
    from falnb.local.files import Lifecycle
    from falnb.local.state import ServerState

__all__ = ["routes"]

#: Request headers fal's queue reads; recorded on the job (fal-protocol.md 3.2).
QUEUE_OPTIONS = (
    "x-fal-queue-priority",
    "x-fal-runner-hint",
    "x-fal-request-timeout",
    "x-fal-no-retry",
    "x-fal-object-lifecycle-preference",
)
T = TypeVar("T")
_RouteHandler = Callable[[Request], Awaitable[Response]]
SHUTTING_DOWN = Failure.of(503, "The local server is shutting down", "runner_disconnected")
_TRUE = ("1", "true", "yes")
_SSE_HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}


class _Closing(Exception):  # noqa: N818 - control flow, not an error
    """The server began to stop while a route was waiting."""


class _Answer(Exception):  # noqa: N818 - control flow, not an error
    """Raised by request parsing helpers to answer at once with ``response``."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _json(status: int, body: Any, request_id: str | None = None, **headers: str) -> JSONResponse:
    out = {k.replace("_", "-"): v for k, v in headers.items()}
    if request_id is not None:
        out["x-fal-request-id"] = request_id
    return JSONResponse(body, status_code=status, headers=out)


def _billed(ctx: Context) -> str:
    """The header a successful output bills with: what its app said (``ctx.bill``), else one
    unit (the endpoint's unit, e.g. a request)."""
    return billable_units_header(1.0 if ctx.billable_units is None else ctx.billable_units)


def _failure_response(failure: Failure, request_id: str | None = None) -> JSONResponse:
    response = JSONResponse(failure.body, status_code=failure.status_code, headers=failure.headers)
    if request_id is not None:
        response.headers["x-fal-request-id"] = request_id
    return response


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _chunk(item: StreamItem) -> bytes:
    """One stream item on the wire: a binary chunk as it is, an output as an SSE event."""
    return item if isinstance(item, bytes) else _sse(item)


def _same_kind(item: StreamItem, *, binary: bool, endpoint_id: str) -> StreamItem:
    if isinstance(item, bytes) != binary:
        raise TypeError(f"{endpoint_id} streamed both outputs and bytes")
    return item


def _error_event(failure: Failure) -> dict[str, Any]:
    """An app error mid-stream as a data payload, as fal's toolkit sends it (``{"error"}``)."""
    event: dict[str, Any] = {"error": failure.message}
    if failure.error_type:
        event["error_type"] = failure.error_type
    detail = failure.body.get("detail") if isinstance(failure.body, dict) else None
    if isinstance(detail, list):  # a 422's field errors
        event["detail"] = detail
    return event


def _resolve(state: ServerState, endpoint_path: str) -> tuple[str, Endpoint]:
    endpoint_id = strip_namespace(endpoint_path)
    endpoint = state.registry.get(endpoint_id)
    if endpoint is None:
        known = ", ".join(state.registry.ids()) or "(none)"
        raise _Answer(
            _json(
                404,
                {
                    "detail": f"Unknown endpoint '{endpoint_id}'. Local endpoints: {known}. "
                    "To use fal's cloud set FAL_KEY (or FALNB_TARGET=fal)."
                },
            )
        )
    return endpoint_id, endpoint


async def _arguments(request: Request, limit: int) -> dict[str, Any]:
    """The JSON object a run, stream or submit carries (strict JSON, at most ``limit`` bytes)."""
    try:
        raw = await read_limited(request, limit)
    except BodyTooLargeError as exc:
        raise _Answer(_json(413, {"detail": str(exc)})) from None
    if not raw.strip():
        return {}
    try:
        value = loads_strict(raw)
    except InvalidJSONError as exc:
        detail = [{"loc": ["body"], "msg": str(exc), "type": exc.error_type}]
        raise _Answer(_json(422, {"detail": detail})) from None
    if not isinstance(value, dict):
        msg = "Input should be a valid dictionary"
        raise _Answer(_json(422, {"detail": [{"loc": ["body"], "msg": msg, "type": "dict_type"}]}))
    return value


def _query_arguments(request: Request) -> dict[str, Any]:
    """A GET run's input, from its query (as fal's JS client sends it): each value read as
    JSON when it parses (``5``, ``true``, ``{...}``), else kept as the string it is."""
    return {name: _query_value(text) for name, text in request.query_params.multi_items()}


def _query_value(text: str) -> Any:
    try:
        return loads_strict(text.encode())
    except InvalidJSONError:
        return text


def _lifecycle(request: Request, state: ServerState) -> Lifecycle:
    """The request's ``X-Fal-Object-Lifecycle-Preference`` for the files its output stores."""
    try:
        return lifecycle_of(request.headers, state.files.defaults)
    except ValueError as exc:
        raise _Answer(_json(422, {"detail": str(exc)})) from None


def _start_timeout(request: Request) -> float | None:
    raw = request.headers.get("x-fal-request-timeout")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 1:
        raise _Answer(
            _json(
                400,
                {
                    "detail": "x-fal-request-timeout must be a number of seconds greater than 1",
                    "error_type": "bad_request",
                },
                x_fal_error_type="bad_request",
            )
        )
    return value


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").strip().lower() in _TRUE


class _NamespaceConvertor(Convertor[str]):
    """A path segment that is one of fal's namespaces (``workflows``, ``comfy``)."""

    regex = "|".join(NAMESPACES)

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("fal_namespace", _NamespaceConvertor())


def _only(method: str, handler: _RouteHandler) -> _RouteHandler:
    """``handler`` for ``method``; fal's JSON 405 for the queue's other methods."""

    async def endpoint(request: Request) -> Response:
        if request.method != method:
            return _json(405, {"detail": "Method Not Allowed"})
        return await handler(request)

    return endpoint


def _request_routes(operations: dict[str, _RouteHandler]) -> list[BaseRoute]:
    """One route per queue operation on a request, with or without a namespace or a final /."""
    return [
        Route(
            f"{prefix}/{{owner}}/{{alias}}/requests/{{request_id}}{tail}{slash}",
            handler,
            methods=["GET", "POST", "PUT"],
        )
        for prefix in ("", "/{namespace:fal_namespace}")
        for tail, handler in operations.items()
        for slash in ("", "/")
    ]


def routes(state: ServerState) -> list[BaseRoute]:
    """Run/stream (catch-all POST), queue (``/_queue``), WebSocket and ``/_falnb`` routes."""
    return _Routes(state).routes()


class _Routes:
    """The route handlers of one server, sharing its self.state."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def run_or_stream(self, request: Request) -> Response:
        path: str = request.path_params["path"].strip("/")
        info = RequestInfo.of(request.scope)
        try:
            if path.endswith("/stream"):
                endpoint_id, endpoint = _resolve(self.state, path[: -len("/stream")])
            else:
                endpoint_id, endpoint = _resolve(self.state, path)
            timeout = _start_timeout(request)
            if request.method == "GET":
                arguments = _query_arguments(request)
            else:
                arguments = await _arguments(request, self.state.max_body_bytes)
            lifecycle = _lifecycle(request, self.state)
        except _Answer as answer:
            return answer.response
        if timeout is not None and time.monotonic() > info.received + timeout:
            return _failure_response(START_TIMEOUT)
        ctx = self.state.make_context(info.request_id, endpoint_id, lifecycle=lifecycle)
        if path.endswith("/stream"):
            return await self._stream(request, endpoint, arguments, ctx)
        return await self._run(endpoint, arguments, ctx)

    async def _run(self, endpoint: Endpoint, arguments: dict[str, Any], ctx: Context) -> Response:
        try:
            output = await self._unless_closing(call_handler(endpoint, arguments, ctx))
        except _Closing:
            ctx.cancelled.set()
            return _failure_response(SHUTTING_DOWN)
        except Exception as exc:  # noqa: BLE001 - any app error is answered, not raised
            return _failure_response(failure_from(exc))
        return JSONResponse(output, headers={BILLABLE_UNITS: _billed(ctx)})

    async def _unless_closing(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable``, or cancel it and raise :class:`_Closing` if the server stops."""
        task = asyncio.ensure_future(awaitable)
        closing = asyncio.ensure_future(self.state.jobs.closing.wait())
        try:
            await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            closing.cancel()
        if not task.done():
            task.cancel()
            raise _Closing
        return task.result()

    async def _stream(
        self, request: Request, endpoint: Endpoint, arguments: dict[str, Any], ctx: Context
    ) -> Response:
        items = iterate_handler(endpoint, arguments, ctx)
        try:
            first = await self._unless_closing(_next(items))
        except _Closing:
            ctx.cancelled.set()
            return _failure_response(SHUTTING_DOWN)
        except StopAsyncIteration:
            return _failure_response(failure_from(RuntimeError("the stream produced no output")))
        except Exception as exc:  # noqa: BLE001 - any app error is answered, not raised
            return _failure_response(failure_from(exc))
        info = RequestInfo.of(request.scope)
        if isinstance(first, bytes):
            # A binary stream (speech audio ...): chunks as they are, typed by the first.
            return StreamingResponse(
                self._stream_events(items, first, ctx, drop=info.drop, abort=info.abort),
                media_type=sniff_content_type(first),
                headers=_SSE_HEADERS,
            )
        return StreamingResponse(
            self._stream_events(items, first, ctx, drop=info.drop),
            media_type="text/event-stream",
            headers=_SSE_HEADERS,
        )

    async def _stream_events(
        self,
        items: AsyncIterator[StreamItem],
        first: StreamItem,
        ctx: Context,
        *,
        drop: bool,
        abort: Callable[[], object] | None = None,
    ) -> AsyncIterator[bytes]:
        """The body of a stream: SSE ``data:`` events, or a binary stream's chunks.

        As fal's apps, an event stream carries ``data:`` lines only: an app error mid-stream
        is a last event ``{"error": ..., "error_type": ...}``. A binary stream cannot say it,
        so an error there aborts the connection (the client sees the stream break off).
        """
        binary = isinstance(first, bytes)
        pending: asyncio.Task[StreamItem] | None = None
        closing = asyncio.ensure_future(self.state.jobs.closing.wait())
        try:
            yield _chunk(first)
            if drop:
                return
            while True:
                pending = asyncio.ensure_future(_next(items))
                while not pending.done():
                    await asyncio.wait(
                        {pending, closing},
                        timeout=self.state.ping_interval,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if closing.done():
                        return
                    if not pending.done() and not binary:
                        yield b": ping\n\n"
                try:
                    item = _same_kind(pending.result(), binary=binary, endpoint_id=ctx.endpoint_id)
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    if not binary:
                        yield _sse(_error_event(failure_from(exc)))
                    elif abort is None or not abort():
                        raise  # no connection to abort: ending the body short breaks it too
                    return
                finally:
                    pending = None
                yield _chunk(item)
        finally:
            closing.cancel()
            ctx.cancelled.set()  # a no-op once the stream is done; stops an abandoned one
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
            with contextlib.suppress(Exception):
                await items.aclose()  # type: ignore[attr-defined]

    # -- the queue: one handler per operation ------------------------------------------

    def _requested(self, request: Request) -> tuple[Job | None, str]:
        """The job a request path names (None if unknown here), and the id it was named by."""
        params = request.path_params
        request_id: str = params["request_id"]
        return self._job(f"{params['owner']}/{params['alias']}", request_id), request_id

    async def submit(self, request: Request) -> Response:
        try:
            return await self._submit(request, strip_namespace(request.path_params["path"]))
        except _Answer as answer:
            return answer.response

    async def status(self, request: Request) -> Response:
        job, request_id = self._requested(request)
        if job is None:
            return _json(404, {"detail": "Request not found"}, request_id)
        body = self.state.jobs.status_body(job, with_logs=_flag(request, "logs"))
        return _json(200 if job.done else 202, body, job.request_id)

    async def status_stream(self, request: Request) -> Response:
        job, request_id = self._requested(request)
        if job is None:
            return _json(404, {"detail": "Request not found"}, request_id)
        return self._status_stream(request, job)

    async def result(self, request: Request) -> Response:
        job, request_id = self._requested(request)
        if job is None:
            return _json(404, {"detail": "Request not found"}, request_id)
        return self._result(job)

    async def cancel(self, request: Request) -> Response:
        job, request_id = self._requested(request)
        return self._cancel(job, request_id)

    def queue_routes(self) -> list[BaseRoute]:
        operations = {
            "/status/stream": _only("GET", self.status_stream),
            "/status": _only("GET", self.status),
            "/cancel": _only("PUT", self.cancel),
            "": _only("GET", self.result),
        }
        return [
            *_request_routes(operations),
            Route("/{path:path}", _only("POST", self.submit), methods=["GET", "POST", "PUT"]),
        ]

    def _job(self, app_path: str, request_id: str) -> Job | None:
        job = self.state.jobs.get(request_id)
        return job if job is not None and job.app_path == app_path else None

    async def _submit(self, request: Request, path: str) -> Response:
        endpoint_id, endpoint = _resolve(self.state, path)
        timeout = _start_timeout(request)
        arguments = await _arguments(request, self.state.max_body_bytes)
        webhook = request.query_params.get("fal_webhook") or None
        lifecycle = _lifecycle(request, self.state)
        options = {name: request.headers[name] for name in QUEUE_OPTIONS if name in request.headers}
        app_path = "/".join(endpoint_id.split("/")[:2])
        job = await self.state.jobs.submit(
            endpoint,
            endpoint_id,
            app_path,
            arguments,
            webhook_url=webhook,
            options=options,
            start_timeout=timeout,
            lifecycle=lifecycle,
        )
        body: dict[str, Any] = {"status": "IN_QUEUE", "request_id": job.request_id}
        body.update(self.state.jobs.urls(job))
        body["queue_position"] = self.state.jobs.position(job)
        if webhook:
            body["gateway_request_id"] = job.request_id
        return _json(200, body, job.request_id)

    def _cancel(self, job: Job | None, request_id: str) -> Response:
        if job is None:
            return _json(404, {"status": "NOT_FOUND"}, request_id)
        if not self.state.jobs.cancel(job):
            return _json(400, {"status": "ALREADY_COMPLETED"}, job.request_id)
        return _json(202, {"status": "CANCELLATION_REQUESTED"}, job.request_id)

    def _result(self, job: Job) -> Response:
        if not job.done:
            return _json(400, {"detail": "Request is still in progress"}, job.request_id)
        if job.failure is not None:
            return _failure_response(job.failure, job.request_id)
        return _json(200, job.output, job.request_id, **{BILLABLE_UNITS: _billed(job.ctx)})

    def _status_stream(self, request: Request, job: Job) -> Response:
        with_logs = _flag(request, "logs")
        drop = RequestInfo.of(request.scope).drop
        return StreamingResponse(
            self._status_events(job, with_logs=with_logs, drop=drop),
            media_type="text/event-stream",
            headers={**_SSE_HEADERS, "x-fal-request-id": job.request_id},
        )

    async def _status_events(
        self, job: Job, *, with_logs: bool, drop: bool
    ) -> AsyncIterator[bytes]:
        """Current status at once, then one event per change or batch of new logs; a queued
        request's new position is sent when it re-reads it (every ``POSITION_REFRESH``)."""
        sent_logs = 0
        last: tuple[str, int] | None = None
        quiet_since = time.monotonic()
        while True:
            changed = job.changed  # taken before reading, so no change slips between
            new_logs, next_index = job.logs_since(sent_logs) if with_logs else ([], sent_logs)
            position = self.state.jobs.position(job) if job.status == "IN_QUEUE" else -1
            if (job.status, position) != last or new_logs:
                body = self.state.jobs.status_body(
                    job, with_logs=with_logs, logs=new_logs if with_logs else None
                )
                yield _sse(body)
                last, sent_logs = (job.status, position), next_index
                quiet_since = time.monotonic()
                if job.done or drop:
                    return
            closing = self.state.jobs.closing
            wait = self.state.ping_interval - (time.monotonic() - quiet_since)
            if job.status == "IN_QUEUE":
                wait = min(wait, POSITION_REFRESH)
            woken = await wait_any([changed, closing], max(0.0, wait))
            if not woken and time.monotonic() - quiet_since >= self.state.ping_interval:
                yield b": ping\n\n"
                quiet_since = time.monotonic()
            if closing.is_set():
                return

    async def websocket(self, websocket: WebSocket) -> None:
        from falnb.local.realtime import serve_realtime  # C's module

        path: str = websocket.path_params["path"].strip("/")
        path = path.removesuffix("/realtime")
        endpoint = self.state.registry.get(strip_namespace(path))
        if endpoint is None:
            # Accept first: a close before accepting reaches clients as a bare HTTP 403.
            await websocket.accept()
            reason = f"Unknown endpoint '{strip_namespace(path)}'"
            await websocket.send_text(
                json.dumps({"type": "x-fal-error", "error": "NOT_FOUND", "reason": reason})
            )
            await websocket.close(code=1008, reason=reason[:120])
            return
        await serve_realtime(websocket, self.state, endpoint)

    async def health(self, _request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def endpoints(self, _request: Request) -> Response:
        """What this server serves, for ``%fal endpoints`` in another process (key required)."""
        listed = [
            {
                "endpoint_id": e.endpoint_id,
                "description": e.description,
                "queue": e.handler is not None or e.stream is not None,
                "stream": e.stream is not None,
                "realtime": e.realtime is not None,
            }
            for e in self.state.registry
        ]
        return JSONResponse({"endpoints": listed})

    async def journal(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.state.journal.clear()
            return Response(status_code=204)
        return JSONResponse(self.state.journal.as_json())

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/_falnb/health", self.health, methods=["GET"]),
            Route("/_falnb/journal", self.journal, methods=["GET", "DELETE"]),
            Route("/_falnb/endpoints", self.endpoints, methods=["GET"]),
            Mount(LOCAL_QUEUE, routes=self.queue_routes()),
            Route("/{path:path}", self.run_or_stream, methods=["GET", "POST"]),
            WebSocketRoute("/{path:path}", self.websocket),
        ]


async def _next(items: AsyncIterator[StreamItem]) -> StreamItem:
    return await items.__anext__()

"""Serve your own Python functions as fal endpoints on the local server.

``@app("me/upscale")`` registers a function in the process-wide default registry, which every
:class:`~falnb.local.LocalServer` made without ``registry=`` (the embedded one and
``falnb serve`` included) consults per request. Example::

    import falnb
    from PIL import Image

    @falnb.local.app("me/posterize")
    def posterize(arguments: dict) -> Image.Image:
        \"\"\"Posterize image_url to `bits` bits per channel.\"\"\"
        ...

    falnb.subscribe("me/posterize", {"image_url": image, "bits": 3})

The function's shape decides how it is served:

* ``def`` / ``async def``: run and queue (``realtime=True``: the realtime WebSocket too, one
  input dict to one output);
* a generator / async generator: streamed on ``/stream``; run and queue return the last item.
  A generator that yields ``bytes`` is a binary stream (e.g. speech audio): its chunks go out
  as they are, typed by the first one's magic bytes, and run and queue return them joined as
  one File (``{"audio": File}`` for audio).

Its first parameter takes the input dict, or, when annotated with a pydantic ``BaseModel``
subclass, the validated model (invalid input answers 422 with fal's field errors). The
Context (``ctx.log``, ``ctx.store``, ``ctx.cancelled``) goes to a parameter named ``ctx``, or
else to a second positional parameter that has no default. ``print()`` and logging output
made while it runs go to the request's status logs. Return values follow
:mod:`falnb.local.appoutput`: PIL images, bytes and paths become fal File dicts.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import typing
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anyio.to_thread

from falnb.local.apperror import AppError
from falnb.local.applogs import capture_logs
from falnb.local.appoutput import to_output
from falnb.local.apps import default_registry
from falnb.local.registry import Context, Endpoint, StreamItem, validate_endpoint_id

__all__ = ["app", "as_endpoint", "unregister"]

F = TypeVar("F", bound=Callable[..., Any])
Output = dict[str, Any]


def app(
    endpoint_id: str,
    *,
    description: str | None = None,
    realtime: bool = False,
    on_cancel: Literal["stop", "signal"] = "stop",
) -> Callable[[F], F]:
    """Register the decorated function as ``endpoint_id`` on the local server.

    Returns the function unchanged. Registering an id again replaces the earlier function
    (re-running a notebook cell is fine). ``description`` defaults to the first line of the
    docstring. Raises ValueError at once for an invalid id. ``on_cancel="signal"`` serves
    cancels as fal's cloud does: a running request is only told (``ctx.cancelled``), and
    output it still returns completes it; the default ``"stop"`` ends it at once.

    >>> @app("me/double")
    ... def double(arguments: dict) -> dict:
    ...     return {"value": arguments["value"] * 2}
    """
    validate_endpoint_id(endpoint_id)

    def register(fn: F) -> F:
        default_registry().add(
            as_endpoint(
                fn, endpoint_id, description=description, realtime=realtime, on_cancel=on_cancel
            )
        )
        return fn

    return register


def unregister(endpoint_id: str) -> None:
    """Stop serving ``endpoint_id`` from the default registry (no error if it is absent)."""
    default_registry().remove(endpoint_id)


def as_endpoint(
    fn: Callable[..., Any],
    endpoint_id: str,
    *,
    description: str | None = None,
    realtime: bool = False,
    on_cancel: Literal["stop", "signal"] = "stop",
) -> Endpoint:
    """An :class:`Endpoint` serving ``fn`` as :func:`app` would, for a registry of your own."""
    if not callable(fn):
        raise TypeError(f"falnb.local.app needs a function, not {type(fn).__name__}")
    validate_endpoint_id(endpoint_id)
    call = _Call.of(fn)
    target = fn if inspect.isroutine(fn) else getattr(fn, "__call__", fn)  # noqa: B004
    if description is None:
        description = (inspect.getdoc(fn) or "").strip().split("\n", 1)[0]
    if inspect.isasyncgenfunction(target) or inspect.isgeneratorfunction(target):
        if realtime:
            raise ValueError(
                f"{endpoint_id}: a realtime endpoint answers each input with one output; "
                "use a plain or async function, not a generator"
            )
        stream = _async_stream(call) if inspect.isasyncgenfunction(target) else _sync_stream(call)
        return Endpoint(
            endpoint_id,
            stream=stream,
            description=description,
            on_cancel=on_cancel,
            input_schema=_model_schema(call.model, "validation"),
            output_schema=None,
        )
    handler = _async_handler(call) if inspect.iscoroutinefunction(target) else _sync_handler(call)
    return Endpoint(
        endpoint_id,
        handler=handler,
        realtime=handler if realtime else None,
        description=description,
        on_cancel=on_cancel,
        input_schema=_model_schema(call.model, "validation"),
        output_schema=_model_schema(call.output_model, "serialization"),
    )


@dataclass(frozen=True)
class _Call:
    """How to call a user function: its input model (if any) and where the Context goes."""

    fn: Callable[..., Any]
    takes_input: bool
    model: Any  # a pydantic BaseModel subclass, or None
    ctx: Literal["none", "positional", "keyword"]
    output_model: Any = None  # the return annotation, when a BaseModel subclass

    @classmethod
    def of(cls, fn: Callable[..., Any]) -> _Call:
        parameters = list(inspect.signature(fn).parameters.values())
        positional = [
            p
            for p in parameters
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "ctx"
        ]
        variadic = any(p.kind is p.VAR_POSITIONAL for p in parameters)
        hints = _hints(fn)
        ctx: Literal["none", "positional", "keyword"] = "none"
        if any(p.name == "ctx" and p.kind is not p.POSITIONAL_ONLY for p in parameters):
            ctx = "keyword"
        elif len(positional) >= 2 and (
            positional[1].default is inspect.Parameter.empty
            or hints.get(positional[1].name) is Context
        ):
            ctx = "positional"
        model = None
        if positional and _is_model_class(hints.get(positional[0].name)):
            model = hints[positional[0].name]
        output = hints.get("return")
        output_model = output if _is_model_class(output) else None
        return cls(fn, bool(positional) or variadic, model, ctx, output_model)

    def bind(self, arguments: dict[str, Any], ctx: Context) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = []
        if self.takes_input:
            args.append(self.model.model_validate(arguments) if self.model else arguments)
        if self.ctx == "positional":
            args.append(ctx)
        return args, ({"ctx": ctx} if self.ctx == "keyword" else {})

    def start(self, arguments: dict[str, Any], ctx: Context) -> Any:
        args, kwargs = self.bind(arguments, ctx)
        return self.fn(*args, **kwargs)


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations; unresolvable string annotations are left out."""
    try:
        return typing.get_type_hints(fn)
    except (NameError, TypeError, AttributeError):  # forward refs to names not defined yet
        annotations = getattr(fn, "__annotations__", {})
        return {name: hint for name, hint in annotations.items() if not isinstance(hint, str)}


def _is_model_class(hint: Any) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(hint, type) and issubclass(hint, pydantic.BaseModel)


def _model_schema(model: Any, mode: Literal["validation", "serialization"]) -> Any:
    """A pydantic model's JSON schema, in ``x-fal-order-properties`` order, as fal's SDK
    publishes an app's; None without a model. Nested models stay in ``$defs``."""
    if model is None:
        return None
    schema: dict[str, Any] = model.model_json_schema(mode=mode)
    schema["x-fal-order-properties"] = list(schema.get("properties", {}))
    return schema


@contextlib.contextmanager
def _validation_as_422() -> Iterator[None]:
    """pydantic's ValidationError becomes fal's 422 ``{"detail": [{loc, msg, type}]}``."""
    try:
        yield
    except AppError:
        raise
    except ValueError as exc:
        pydantic = sys.modules.get("pydantic")
        if pydantic is None or not isinstance(exc, pydantic.ValidationError):
            raise
        raise AppError(422, _field_errors(exc)) from exc


def _field_errors(exc: Any) -> list[dict[str, Any]]:
    detail = []
    for error in exc.errors(include_context=False, include_input=False):
        entry = {"loc": ["body", *error["loc"]], "msg": error["msg"], "type": error["type"]}
        if "url" in error:
            entry["url"] = error["url"]
        detail.append(entry)
    return detail


def _sync_handler(call: _Call) -> Callable[[dict[str, Any], Context], Output]:
    def handler(arguments: dict[str, Any], ctx: Context) -> Output:
        with capture_logs(ctx), _validation_as_422():
            return to_output(call.start(arguments, ctx), ctx)

    return handler


def _async_handler(call: _Call) -> Callable[[dict[str, Any], Context], Any]:
    async def handler(arguments: dict[str, Any], ctx: Context) -> Output:
        with capture_logs(ctx), _validation_as_422():
            result = await call.start(arguments, ctx)
        # Encoding images is CPU work: keep it off the server's event loop.
        return await anyio.to_thread.run_sync(to_output, result, ctx)

    return handler


def _stream_item(item: Any, ctx: Context) -> StreamItem:
    """A generator's item: ``bytes`` are a chunk of a binary stream, anything else an output."""
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    return to_output(item, ctx)


def _sync_stream(call: _Call) -> Callable[[dict[str, Any], Context], Iterator[StreamItem]]:
    def stream(arguments: dict[str, Any], ctx: Context) -> Iterator[StreamItem]:
        # Each step runs in a worker thread of its own choosing, so logs are captured per step.
        with capture_logs(ctx), _validation_as_422():
            items = iter(call.start(arguments, ctx))
        try:
            while True:
                with capture_logs(ctx), _validation_as_422():
                    try:
                        item = next(items)
                    except StopIteration:
                        return
                    output = _stream_item(item, ctx)
                yield output
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    return stream


def _async_stream(
    call: _Call,
) -> Callable[[dict[str, Any], Context], AsyncIterator[StreamItem]]:
    async def stream(arguments: dict[str, Any], ctx: Context) -> AsyncIterator[StreamItem]:
        with capture_logs(ctx), _validation_as_422():
            items = call.start(arguments, ctx)
        try:
            while True:
                # Set and reset around each step: between steps the consumer's code runs.
                with capture_logs(ctx), _validation_as_422():
                    try:
                        item = await items.__anext__()
                    except StopAsyncIteration:
                        return
                yield await anyio.to_thread.run_sync(_stream_item, item, ctx)
        finally:
            await items.aclose()

    return stream

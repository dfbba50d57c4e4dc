"""The basic built-in endpoints (owner ``local``): echo, slow, fail and stream-text.

They exist to exercise the protocol: every state, log line, error shape and stream a client
must handle, with no model behind them. Each declares its input schema (so validation,
completion and ``%fal form`` work on them too) from the same limits its handler enforces;
echo and fail accept any further argument, as their jobs are to return or ignore it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from falnb.local.apperror import AppError, validation_error
from falnb.local.apps._fields import Fields, invalid
from falnb.local.registry import Context, Endpoint

__all__ = ["ENDPOINTS"]

MAX_STEPS = 1000
_SEED = {"type": "integer", "minimum": 0, "description": "Echoed back in the output"}


def _input(title: str, *, open_: bool = False, **properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema of ``properties`` (in order); ``open_``: other arguments are welcome."""
    schema: dict[str, Any] = {
        "type": "object",
        "title": title,
        "properties": properties,
        "x-fal-order-properties": list(properties),
    }
    if open_:
        schema["additionalProperties"] = True
    return schema


ECHO_INPUT = _input(
    "EchoInput",
    open_=True,
    prompt={"type": "string", "title": "Prompt", "description": "Any text; returned as is"},
    seed=_SEED,
)
SLOW_INPUT = _input(
    "SlowInput",
    duration={
        "type": "number",
        "title": "Duration",
        "minimum": 0,
        "default": 2.0,
        "description": "Seconds the request runs for",
    },
    steps={
        "type": "integer",
        "title": "Steps",
        "minimum": 1,
        "maximum": MAX_STEPS,
        "default": 10,
        "description": "How many 'step i/N' log lines it writes, evenly spaced",
    },
    seed=_SEED,
)
FAIL_INPUT = _input(
    "FailInput",
    open_=True,
    status={
        "type": "integer",
        "title": "Status",
        "minimum": 400,
        "maximum": 599,
        "default": 500,
        "description": "The HTTP error status it fails with",
    },
    detail={
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}],
        "title": "Detail",
        "description": "The error's detail: text, or (with 422) fal's field errors",
    },
    error_type={"type": "string", "title": "Error Type", "description": "The X-Fal-Error-Type"},
)
STREAM_TEXT_INPUT = _input(
    "StreamTextInput",
    prompt={
        "type": "string",
        "title": "Prompt",
        "default": "hello from falnb",
        "description": "The text streamed back word by word",
    },
    delay={
        "type": "number",
        "title": "Delay",
        "minimum": 0,
        "default": 0.02,
        "description": "Seconds between words",
    },
)


def _number(
    arguments: dict[str, Any], name: str, default: float, *, low: float = 0, high: float = 0
) -> float:
    value = arguments.get(name, default)
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or value < low
    if bad or (high and value > high):
        limits = f"from {low:g} to {high:g}" if high else f">= {low:g}"
        invalid(name, f"Input should be a number {limits}", "value_error")
    return float(value)


def echo(arguments: dict[str, Any], _ctx: Context) -> dict[str, Any]:
    """Return the arguments unchanged (so a ``seed`` comes back too)."""
    return dict(arguments)


def slow(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Take ``duration`` seconds over ``steps`` steps, logging ``step i/N``; stops on cancel."""
    fields = Fields(arguments)
    duration = fields.read(_number, 2.0, "duration", 2.0)
    steps = int(fields.read(_number, 10.0, "steps", 10, low=1, high=MAX_STEPS))
    fields.check()
    for index in range(1, steps + 1):
        # Sleeping on the cancel event ends the wait as soon as the caller cancels.
        if ctx.cancelled.wait(duration / steps):
            raise AppError(499, "Request cancelled", "client_cancelled")
        ctx.log(f"step {index}/{steps}")
    return {"duration": duration, "steps": steps, "seed": arguments.get("seed")}


async def fail(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Fail with ``status`` (default 500), ``detail`` and ``error_type``; 422 gives field errors."""
    status = arguments.get("status", 500)
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise validation_error(("status", "Input should be an HTTP error status", "value_error"))
    ctx.log(f"failing with {status} on purpose", "ERROR")
    detail = arguments.get("detail")
    if status == 422 and not isinstance(detail, str):
        if isinstance(detail, list):
            raise AppError(422, detail, arguments.get("error_type"))
        raise validation_error(("prompt", "Field required", "missing"))
    raise AppError(status, detail or "local/fail failed on purpose", arguments.get("error_type"))


async def stream_text(arguments: dict[str, Any], _ctx: Context) -> AsyncIterator[dict[str, Any]]:
    """Stream ``prompt`` word by word (``{"text": partial}``), then ``{"text", "done": true}``."""
    fields = Fields(arguments)
    prompt = arguments.get("prompt", "hello from falnb")
    if not isinstance(prompt, str):
        fields.invalid("prompt", "Input should be a valid string", "string_type")
    delay = fields.read(_number, 0.02, "delay", 0.02)
    fields.check()
    words = prompt.split()
    for count in range(1, len(words) + 1):
        await asyncio.sleep(delay)
        yield {"text": " ".join(words[:count])}
    yield {"text": " ".join(words), "done": True}


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "local/echo",
        handler=echo,
        description="Returns its arguments unchanged.",
        unit_price=0.01,
        input_schema=ECHO_INPUT,
    ),
    Endpoint(
        "local/slow",
        handler=slow,
        description="Takes `duration` s over `steps` steps, logging 'step i/N'.",
        unit_price=0.01,
        input_schema=SLOW_INPUT,
    ),
    Endpoint(
        "local/fail",
        handler=fail,
        description="Fails with `status`, `detail` and `error_type` (422: field errors).",
        input_schema=FAIL_INPUT,
    ),
    Endpoint(
        "local/stream-text",
        stream=stream_text,
        description="Streams `prompt` word by word; the last event is the full text.",
        input_schema=STREAM_TEXT_INPUT,
    ),
]

"""``local/realtime-echo``: a realtime app that answers each input with itself.

Each reply is the input plus ``counter`` (inputs answered so far on this server) and
``received_at`` (unix seconds). An optional ``delay`` argument (seconds, at most 5) makes the
handler slow, which is how tests see buffering and latest-wins at work.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from falnb.local.registry import Context, Endpoint

__all__ = ["ENDPOINTS"]

MAX_DELAY = 5.0

_counter = itertools.count(1)
_counter_lock = threading.Lock()


def _delay(arguments: dict[str, Any]) -> float:
    value = arguments.get("delay", 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return min(max(float(value), 0.0), MAX_DELAY)


def realtime(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Echo one realtime input, after the optional ``delay``."""
    if seconds := _delay(arguments):
        ctx.cancelled.wait(seconds)
    with _counter_lock:
        count = next(_counter)
    return {**arguments, "counter": count, "received_at": time.time()}


def handler(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Run/queue form of the same echo, so the endpoint works outside realtime too."""
    return realtime(arguments, ctx)


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "local/realtime-echo",
        handler=handler,
        realtime=realtime,
        description="Realtime echo: replies to each input with it plus a counter.",
    ),
]

"""``ctx.cancelled`` in your own app reads as the README uses it: ``if ctx.cancelled:``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import falnb.local
from falnb import RequestCancelledError, SyncClient
from falnb.local import Context, LocalServer

ENDPOINT = "test-me/until-cancelled"


@pytest.fixture
def client(server: LocalServer) -> Iterator[SyncClient]:
    with SyncClient(server.target) as sync:
        yield sync


def test_if_ctx_cancelled_is_false_until_the_caller_cancels(client: SyncClient) -> None:
    started, stopped = threading.Event(), threading.Event()
    seen: list[bool] = []

    @falnb.local.app(ENDPOINT)
    def until_cancelled(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        seen.append(bool(ctx.cancelled))
        started.set()
        while not ctx.cancelled:  # the README's idiom; an Event here would always be truthy
            ctx.cancelled.wait(0.02)  # still an Event: wait() and is_set() work
        seen.append(ctx.cancelled.is_set())
        stopped.set()
        return {"stopped": True}

    try:
        handle = client.submit(ENDPOINT, {})
        assert started.wait(10), "the app did not start"
        assert not stopped.is_set()
        assert seen == [False]
        handle.cancel()
        assert stopped.wait(10), "the app did not see the cancel"
        assert seen == [False, True]
        with pytest.raises(RequestCancelledError):
            handle.get(timeout=10)
    finally:
        falnb.local.unregister(ENDPOINT)

"""The key never shows: not in errors, reprs, logs or the server's journal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from falnb import AsyncClient, FalError, RequestTimeoutError, SyncClient, Target
from falnb.local import LocalServer


def test_key_appears_in_no_message_or_repr(
    client: SyncClient,
    aclient: AsyncClient,
    server: LocalServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = server.key
    texts: list[str] = [repr(client), repr(aclient), repr(client.target), str(client.target)]
    handle = client.submit("local/echo", {})
    texts += [repr(handle), repr(handle.async_handle)]
    server.faults.add("status=503;ingress", role="queue", method="GET", times=1)
    handle.get()
    failures: list[BaseException] = []
    bad = SyncClient(Target.local(server.base_url, key + "x"))
    calls: list[Callable[[], object]] = [
        lambda: client.run("local/nope", {}),
        lambda: client.run("local/fail", {"status": 422}),
        lambda: client.run("local/fail", {"status": 500}),
        lambda: client.subscribe("local/slow", {"duration": 5}, timeout=0.2),
        lambda: bad.run("local/echo", {}),
        lambda: client.stream("local/stream-text", {"prompt": 1}).done(),
        lambda: asyncio.run(aclient.run("local/nope", {})),
    ]
    for call in calls:
        with pytest.raises(FalError) as info:
            call()
        failures.append(info.value)
    bad.close()
    assert any(isinstance(f, RequestTimeoutError) for f in failures)
    for failure in failures:
        texts += [str(failure), repr(failure), str(getattr(failure, "headers", ""))]
        texts += [str(getattr(failure, "body", "")), str(getattr(failure, "url", ""))]
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(entry.as_dict()) for entry in server.journal.entries()]
    assert texts
    leaks = [text for text in texts if key in text]
    assert leaks == []

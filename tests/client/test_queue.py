"""The queue through falnb's clients: submit, handles, subscribe, by-id calls, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from falnb import (
    AsyncClient,
    AsyncRequestHandle,
    Completed,
    HTTPError,
    InProgress,
    Queued,
    RequestCancelledError,
    RequestHandle,
    Status,
    SyncClient,
    ValidationError,
)
from falnb.local import LocalServer
from tests.kit import log_messages, subscribed

SLOW = {"duration": 0.6, "steps": 4}


@pytest.fixture
def blockers(client: SyncClient, server: LocalServer) -> Iterator[Callable[[], None]]:
    """``fill()`` occupies every worker of the server, so the next submit stays queued."""
    started: list[RequestHandle] = []

    def fill() -> None:
        started.extend(
            client.submit("local/slow", {"duration": 30, "steps": 300})
            for _ in range(server.state.jobs.concurrency)
        )

    yield fill
    for handle in started:
        handle.cancel()


def test_submit_returns_server_urls(client: SyncClient, server: LocalServer) -> None:
    handle = client.submit("local/echo", {"value": 1})
    assert handle.status_url.startswith(f"{server.target.queue_url}/local/echo/requests/")
    assert handle.status_url == f"{handle.response_url}/status"
    assert handle.get() == {"value": 1}
    assert isinstance(handle.status(), Completed)
    assert len(server.journal.accepted_submissions("local/echo")) == 1


def test_iter_events_ends_with_completed_and_logs_once(client: SyncClient) -> None:
    handle = client.submit("local/slow", SLOW)
    events = list(handle.iter_events(with_logs=True))
    assert isinstance(events[-1], Completed)
    assert events[-1].error is None
    assert all(not isinstance(e, Completed) for e in events[:-1])
    assert log_messages(events) == [f"step {i}/4" for i in range(1, 5)]
    assert handle.get()["steps"] == 4


def test_status_without_logs_has_none(client: SyncClient) -> None:
    handle = client.submit("local/slow", SLOW)
    handle.get()
    status = handle.status(with_logs=False)
    assert isinstance(status, Completed)
    assert status.logs is None
    assert status.metrics["inference_time"] > 0


def test_subscribe_callbacks_and_each_log_once(client: SyncClient, server: LocalServer) -> None:
    result, enqueued, updates = subscribed(client, "local/slow", {**SLOW, "seed": 3})
    assert result == {"duration": 0.6, "steps": 4, "seed": 3}
    assert len(enqueued) == 1
    assert isinstance(updates[-1], Completed)
    assert log_messages(updates) == [f"step {i}/4" for i in range(1, 5)]
    # Followed through the status stream, not by polling.
    assert server.journal.entries(path_contains=f"{enqueued[0]}/status/stream")
    polls = server.journal.entries(method="GET", path_contains=enqueued[0])
    assert not [e for e in polls if e.path.endswith("/status")]


def test_subscribe_async_with_async_callbacks(aclient: AsyncClient) -> None:
    updates: list[Status] = []
    enqueued: list[str] = []

    async def on_update(status: Status) -> None:
        await asyncio.sleep(0)
        updates.append(status)

    async def main() -> dict[str, Any]:
        return await aclient.subscribe(
            "local/slow",
            SLOW,
            with_logs=True,
            on_enqueue=enqueued.append,
            on_queue_update=on_update,
        )

    assert asyncio.run(main())["steps"] == 4
    assert len(enqueued) == 1
    assert log_messages(updates) == [f"step {i}/4" for i in range(1, 5)]


def test_async_handle(aclient: AsyncClient) -> None:
    async def main() -> tuple[AsyncRequestHandle, list[Status], dict[str, Any], Status]:
        handle = await aclient.submit("local/slow", SLOW)
        events = [status async for status in handle.iter_events(with_logs=True)]
        return handle, events, await handle.get(), await handle.status()

    handle, events, result, status = asyncio.run(main())
    assert isinstance(events[-1], Completed)
    assert log_messages(events) == [f"step {i}/4" for i in range(1, 5)]
    assert result["steps"] == 4
    assert isinstance(status, Completed)
    assert "request_id" in repr(handle)


def test_status_result_cancel_by_id(client: SyncClient, aclient: AsyncClient) -> None:
    handle = client.submit("local/echo", {"by": "id"})
    assert client.result("local/echo", handle.request_id) == {"by": "id"}
    assert isinstance(client.status("local/echo", handle.request_id), Completed)
    assert client.cancel("local/echo", handle.request_id) == "ALREADY_COMPLETED"

    async def main() -> tuple[Status, dict[str, Any], str]:
        return (
            await aclient.status("local/echo", handle.request_id, with_logs=True),
            await aclient.result("local/echo", handle.request_id),
            await aclient.cancel("local/echo", handle.request_id),
        )

    status, result, cancelled = asyncio.run(main())
    assert isinstance(status, Completed)
    assert result == {"by": "id"}
    assert cancelled == "ALREADY_COMPLETED"


def test_get_handle_builds_queue_urls(client: SyncClient, server: LocalServer) -> None:
    handle = client.get_handle("local/slow/variant", "abc")
    assert handle.response_url == f"{server.target.queue_url}/local/slow/requests/abc"
    assert handle.cancel_url.endswith("/requests/abc/cancel")


def test_unknown_request_id_is_404(client: SyncClient) -> None:
    with pytest.raises(HTTPError) as info:
        client.status("local/echo", "no-such-request")
    assert info.value.status_code == 404
    with pytest.raises(HTTPError):
        client.cancel("local/echo", "no-such-request")


def test_cancel_while_running(client: SyncClient, wait_until: Any) -> None:
    handle = client.submit("local/slow", {"duration": 20, "steps": 200})
    wait_until(lambda: isinstance(handle.status(), InProgress), what="the job to start")
    assert handle.cancel() == "CANCELLATION_REQUESTED"
    with pytest.raises(RequestCancelledError) as info:
        handle.get()
    assert info.value.request_id == handle.request_id
    status = handle.status()
    assert isinstance(status, Completed)
    assert status.error_type == "client_cancelled"


def test_cancel_while_queued(client: SyncClient, blockers: Callable[[], None]) -> None:
    blockers()
    handle = client.submit("local/echo", {"never": "runs"})
    assert isinstance(handle.status(), Queued)
    assert handle.cancel() == "CANCELLATION_REQUESTED"
    status = handle.status()
    assert isinstance(status, Completed)
    assert status.error_type == "client_cancelled"
    with pytest.raises(RequestCancelledError):
        handle.get()


def test_queued_position_is_reported(client: SyncClient, blockers: Callable[[], None]) -> None:
    blockers()
    first = client.submit("local/echo", {})
    second = client.submit("local/echo", {})
    events = second.iter_events()
    assert next(events) == Queued(position=1)
    events.close()
    first.cancel()
    second.cancel()


def test_failed_request_replays_app_errors(client: SyncClient) -> None:
    handle = client.submit("local/fail", {"status": 422})
    with pytest.raises(ValidationError) as invalid:
        handle.get()
    assert invalid.value.errors_for("prompt")
    status = handle.status()
    assert isinstance(status, Completed)
    assert status.error

    with pytest.raises(HTTPError) as failed:
        client.subscribe("local/fail", {"status": 500, "detail": "out of memory"})
    assert failed.value.status_code == 500
    assert "out of memory" in str(failed.value)

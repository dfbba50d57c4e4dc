"""Nothing paid for keeps running: timeouts, task cancellation and Ctrl-C cancel remotely."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from falnb import (
    AsyncClient,
    Completed,
    InProgress,
    RequestTimeoutError,
    Status,
    SyncClient,
)
from falnb.local import LocalServer

LONG = {"duration": 30, "steps": 300}
#: The fixtures' types: how many cancels a request got; interrupt once a condition holds.
Cancels = Callable[[str], int]
InterruptWhen = Callable[[Callable[[], bool]], None]


def assert_cancelled(client: SyncClient, request_id: str) -> None:
    status = client.status("local/slow", request_id)
    assert isinstance(status, Completed)
    assert status.error_type == "client_cancelled"


@pytest.fixture
def interrupt_when(server: LocalServer) -> Iterator[InterruptWhen]:
    """``interrupt_when(ready)``: send SIGINT to the main thread once ``ready()`` is true."""
    threads: list[threading.Thread] = []
    stop = threading.Event()

    def arm(ready: Callable[[], bool]) -> None:
        main = threading.main_thread().ident
        assert main is not None

        def watch() -> None:
            while not stop.is_set():
                if ready():
                    signal.pthread_kill(main, signal.SIGINT)
                    return
                stop.wait(0.02)

        thread = threading.Thread(target=watch, daemon=True)
        threads.append(thread)
        thread.start()

    yield arm
    stop.set()
    for thread in threads:
        thread.join(5)


def running(server: LocalServer) -> Callable[[], bool]:
    """True once a submitted job has logged two steps: it runs, and the caller waits on it."""

    def check() -> bool:
        for entry in server.journal.accepted_submissions():
            job = server.state.jobs.get(entry.request_id or "")
            if job is not None and job.status == "IN_PROGRESS" and len(job.logs_since(0)[0]) >= 2:
                return True
        return False

    return check


def test_subscribe_timeout_cancels_remotely(client: SyncClient, cancels: Cancels) -> None:
    with pytest.raises(RequestTimeoutError) as info:
        client.subscribe("local/slow", LONG, timeout=0.5)
    error = info.value
    assert error.timeout == 0.5
    assert error.request_id
    assert isinstance(error, TimeoutError)
    assert cancels(error.request_id) == 1
    assert_cancelled(client, error.request_id)


def test_subscribe_timeout_sets_start_timeout(client: SyncClient, server: LocalServer) -> None:
    assert client.subscribe("local/echo", {}, client_timeout=20) == {}
    [submit] = server.journal.accepted_submissions()
    assert submit.headers["x-fal-request-timeout"] == "20.0"


def test_handle_get_timeout_cancels(client: SyncClient, cancels: Cancels) -> None:
    handle = client.submit("local/slow", LONG)
    with pytest.raises(RequestTimeoutError):
        handle.get(timeout=0.3)
    assert cancels(handle.request_id) == 1
    assert_cancelled(client, handle.request_id)


def test_async_subscribe_timeout(aclient: AsyncClient, client: SyncClient) -> None:
    with pytest.raises(RequestTimeoutError) as info:
        asyncio.run(aclient.subscribe("local/slow", LONG, timeout=0.4))
    assert info.value.request_id
    assert_cancelled(client, info.value.request_id)


async def _statuses_until_running(aclient: AsyncClient, ids: list[str]) -> AsyncIterator[Status]:
    """Poll (with a deadline) until the subscribed request is running."""
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
        if ids:
            status = await aclient.status("local/slow", ids[0])
            yield status
            if isinstance(status, InProgress):
                return
    pytest.fail("the request never started")


def test_cancelling_the_task_cancels_remotely(
    aclient: AsyncClient, client: SyncClient, cancels: Cancels, wait_until: Any
) -> None:
    ids: list[str] = []

    async def main() -> None:
        task = asyncio.ensure_future(aclient.subscribe("local/slow", LONG, on_enqueue=ids.append))
        async for status in _statuses_until_running(aclient, ids):
            assert not isinstance(status, Completed)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    wait_until(lambda: cancels(ids[0]) == 1, what="the remote cancel")
    assert_cancelled(client, ids[0])


def test_cancelling_handle_get_cancels_remotely(
    aclient: AsyncClient, client: SyncClient, cancels: Cancels, wait_until: Any
) -> None:
    async def main() -> str:
        handle = await aclient.submit("local/slow", LONG)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(handle.get(), 0.3)
        return handle.request_id

    request_id = asyncio.run(main())
    wait_until(lambda: cancels(request_id) == 1, what="the remote cancel")
    assert_cancelled(client, request_id)


def test_ctrl_c_in_subscribe_cancels_remotely(
    client: SyncClient,
    server: LocalServer,
    cancels: Cancels,
    interrupt_when: InterruptWhen,
) -> None:
    interrupt_when(running(server))
    ids: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        client.subscribe("local/slow", LONG, with_logs=True, on_enqueue=ids.append)
    # The cancel was sent before the interrupt propagated: no waiting needed.
    assert cancels(ids[0]) == 1
    assert_cancelled(client, ids[0])


def test_ctrl_c_in_iter_events_and_get(
    client: SyncClient,
    server: LocalServer,
    cancels: Cancels,
    interrupt_when: InterruptWhen,
) -> None:
    handle = client.submit("local/slow", LONG)
    interrupt_when(running(server))
    with pytest.raises(KeyboardInterrupt):
        for _ in handle.iter_events(with_logs=True):
            pass
    assert cancels(handle.request_id) == 1
    assert_cancelled(client, handle.request_id)

    server.journal.clear()
    second = client.submit("local/slow", LONG)
    interrupt_when(running(server))
    with pytest.raises(KeyboardInterrupt):
        second.get()
    assert cancels(second.request_id) == 1


def test_no_cancel_after_completion(client: SyncClient, cancels: Cancels) -> None:
    handle = client.submit("local/echo", {})
    assert handle.get(timeout=10) == {}
    assert client.subscribe("local/echo", {}, timeout=10) == {}
    assert cancels(handle.request_id) == 0


def test_ctrl_c_during_the_submission_cancels_what_the_server_accepted(
    client: SyncClient,
    server: LocalServer,
    cancels: Cancels,
    interrupt_when: InterruptWhen,
) -> None:
    # The server holds the submission for a moment before accepting it; the interrupt lands
    # while the client waits for that answer, so only the server knows the request id.
    held = server.faults.add("delay=0.5", role="queue", method="POST", times=1)
    interrupt_when(lambda: held.fired >= 1)
    with pytest.raises(KeyboardInterrupt):
        client.subscribe("local/slow", LONG)
    (accepted,) = server.journal.accepted_submissions()
    assert accepted.request_id is not None
    assert cancels(accepted.request_id) == 1
    assert_cancelled(client, accepted.request_id)

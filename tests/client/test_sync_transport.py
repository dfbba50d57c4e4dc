"""The sync front's blocking transport: the same requests, answers, errors and retries as the
async front's loop, under the local server's fault injection, from any number of threads."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import falnb
from falnb import AsyncClient, FalError, RetryPolicy, SyncClient, _runtime
from falnb.client._transport import download, download_blocking
from falnb.local import LocalServer

ECHO = "local/echo"
#: The fault cases' own echo: their faults and POST counts see only their own requests (a late
#: POST from another test's thread to a shared endpoint once made a count read 3 for 2).
FRONTS = "test/fronts-echo"
ARGUMENTS = {"prompt": "a red fox", "seed": 7}
#: Patient enough to ride out a blip of a few tenths of a second.
PATIENT = RetryPolicy(max_attempts=30, base_delay=0.02, max_delay=0.05)
#: Quick, with Retry-After honoured (as the fixtures' clients).
QUICK = RetryPolicy(max_attempts=4, base_delay=0.02, max_delay=0.2)

Outcome = tuple[Any, ...]


def outcome(call: Callable[[], Any]) -> tuple[Outcome, float]:
    """What a call ended with (its value, or its error's type, message and status) and how
    long it took."""
    started = time.monotonic()
    try:
        value = call()
    except FalError as exc:
        status = getattr(exc, "status_code", None)
        ended: Outcome = ("raised", type(exc).__name__, str(exc), status)
    else:
        ended = ("returned", value)
    return ended, time.monotonic() - started


@contextmanager
def fronts(server: LocalServer, retry: RetryPolicy) -> Iterator[dict[str, Callable[[], Any]]]:
    """A run of each front, on clients of its own (closed after)."""
    sync = SyncClient(server.target, retry=retry)
    asynchronous = AsyncClient(server.target, retry=retry)
    try:
        yield {
            "sync": lambda: sync.run(FRONTS, ARGUMENTS),
            "async": lambda: asyncio.run(asynchronous.run(FRONTS, ARGUMENTS)),
        }
    finally:
        sync.close()
        _runtime.run(asynchronous.aclose())


# fault spec, its settings, the outcome both fronts must reach, POSTs each sends (None: as
# many as the blip lasts), least seconds each takes
CASES: dict[str, tuple[str, dict[str, Any], Outcome, int | None, float]] = {
    "429 with Retry-After, then served": (
        "status=429;retry_after=0.3",
        {"times": 1},
        ("returned", ARGUMENTS),
        2,
        0.3,
    ),
    "429 every time: rate limited": (
        "status=429;retry_after=0.05",
        {},
        (
            "raised",
            "RateLimitedError",
            (
                "429 rate limited by POST {run}/{endpoint}; retry after 0.05s: too many "
                "concurrent requests"
            ),
            429,
        ),
        4,
        0.15,
    ),
    "503 from the ingress twice: not accepted, so sent again": (
        "status=503;ingress",
        {"times": 2},
        ("returned", ARGUMENTS),
        3,
        0.0,
    ),
    "503 from the app on a paid run: never sent twice": (
        "status=503",
        {"times": 1},
        (
            "raised",
            "HTTPError",
            "503 from POST {run}/{endpoint}: Service Unavailable [runner_scheduling_failure]",
            503,
        ),
        1,
        0.0,
    ),
    "connection reset after the paid run was sent: never sent twice": (
        "reset",
        {"times": 1},
        (
            "raised",
            "ConnectionFailedError",
            (
                "the connection closed before POST {run}/{endpoint} was answered; not sent "
                "again, as the server may have started (and billed) it"
            ),
            None,
        ),
        1,
        0.0,
    ),
    "a blip of ingress 503s: ridden out": (
        "status=503;ingress",
        {"duration": 0.3},
        ("returned", ARGUMENTS),
        None,
        0.0,
    ),
}


@pytest.fixture
def fronts_echo() -> Iterator[None]:
    @falnb.local.app(FRONTS)
    def echo(arguments: dict[str, Any]) -> dict[str, Any]:
        return dict(arguments)

    yield
    falnb.local.unregister(FRONTS)


@pytest.mark.parametrize("case", list(CASES))
def test_both_fronts_meet_a_fault_alike(server: LocalServer, fronts_echo: None, case: str) -> None:
    spec, settings, expected, posts, least = CASES[case]
    expected = tuple(
        part.format(run=server.target.run_url, endpoint=FRONTS) if isinstance(part, str) else part
        for part in expected
    )
    seen: dict[str, tuple[Outcome, int]] = {}
    with fronts(server, PATIENT if "blip" in case else QUICK) as calls:
        for name, call in calls.items():
            server.faults.add(spec, role="run", method="POST", path_contains=FRONTS, **settings)
            before = len(server.journal.entries(method="POST", role="run", path_contains=FRONTS))
            ended, took = outcome(call)
            server.faults.clear()
            after = server.journal.entries(method="POST", role="run", path_contains=FRONTS)
            sent = len(after) - before
            assert ended == expected, name
            assert took >= least, name
            seen[name] = (ended, sent if posts is not None else 0)
    assert seen["sync"] == seen["async"]
    if posts is not None:
        assert seen["sync"][1] == posts


def test_both_downloads_ride_out_503s_on_a_paid_output(
    client: SyncClient, server: LocalServer
) -> None:
    url = client.upload(b"paid-for output", "application/octet-stream")
    fetched = {}
    for name, fetch in (
        ("blocking", lambda: download_blocking(url, retry=QUICK).content),
        ("loop", lambda: _runtime.run(download(url, retry=QUICK)).content),
    ):
        rule = server.faults.add("status=503", role="cdn", method="GET", times=2)
        fetched[name] = fetch()
        assert rule.fired == 2, name
    assert fetched == {"blocking": b"paid-for output", "loop": b"paid-for output"}


def test_a_sync_run_does_not_wait_on_falnbs_loop(client: SyncClient) -> None:
    # With falnb's loop thread held, only a run from the calling thread can finish.
    gate = threading.Event()
    _runtime.call_soon(gate.wait, 30)
    try:
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(client.run, ECHO, ARGUMENTS).result(timeout=10) == ARGUMENTS
    finally:
        gate.set()


def test_a_timeout_or_an_upload_takes_the_loop_and_answers_the_same(
    client: SyncClient, server: LocalServer, tmp_path: Path
) -> None:
    assert client.run(ECHO, ARGUMENTS, timeout=30) == client.run(ECHO, ARGUMENTS)
    path = tmp_path / "note.txt"
    path.write_bytes(b"uploaded first")
    result = client.run(ECHO, {"file_url": path})
    assert result["file_url"].startswith(server.target.cdn_url)


def test_runs_from_many_threads_share_one_pool(client: SyncClient, server: LocalServer) -> None:
    def runs(lane: int) -> list[dict[str, Any]]:
        return [client.run(ECHO, {"lane": lane, "n": n}) for n in range(10)]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(runs, range(8)))
    assert answers == [[{"lane": lane, "n": n} for n in range(10)] for lane in range(8)]
    assert len(server.journal.entries(method="POST", role="run")) == 80


def test_close_closes_the_pool_and_a_later_run_opens_another(client: SyncClient) -> None:
    client.run(ECHO, ARGUMENTS)
    blocking = client.async_client._blocking_transport()
    assert blocking is not None
    client.close()
    assert blocking.http.is_closed
    assert client.run(ECHO, ARGUMENTS) == ARGUMENTS
    assert client.async_client._blocking_transport() is not blocking


def test_status_and_cancel_answer_alike_from_both_fronts_through_resets(
    client: SyncClient, aclient: AsyncClient, server: LocalServer
) -> None:
    done = client.submit(ECHO, ARGUMENTS)
    done.get()
    answers: dict[str, tuple[Any, ...]] = {}
    for name, status, cancel in (
        ("sync", client.status, client.cancel),
        (
            "async",
            lambda e, r: asyncio.run(aclient.status(e, r)),
            lambda e, r: asyncio.run(aclient.cancel(e, r)),
        ),
    ):
        rule = server.faults.add("reset", method="GET", path_contains="/status", times=2)
        seen = type(status(ECHO, done.request_id)).__name__
        assert rule.fired == 2, name
        running = client.submit("local/slow", {"duration": 30, "steps": 30})
        answers[name] = (
            seen,
            cancel(ECHO, done.request_id),
            cancel("local/slow", running.request_id),
        )
    assert (
        answers["sync"]
        == answers["async"]
        == (
            "Completed",
            "ALREADY_COMPLETED",
            "CANCELLATION_REQUESTED",
        )
    )


def test_sync_status_and_cancel_do_not_wait_on_falnbs_loop(client: SyncClient) -> None:
    handle = client.submit("local/slow", {"duration": 30, "steps": 30})
    gate = threading.Event()
    _runtime.call_soon(gate.wait, 30)
    try:
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(handle.status).result(timeout=10) is not None
            assert pool.submit(handle.cancel).result(timeout=10) == "CANCELLATION_REQUESTED"
    finally:
        gate.set()
    assert handle.cancel_requested

"""Waits on accepted requests ride out lost contact, and give up without cancelling.

Blips are the local server's fault rules with a ``duration``: every status request (polled and
streamed) is refused or cut for that long, then the server heals.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from falnb import (
    Completed,
    RequestPendingError,
    RetryPolicy,
    SyncClient,
)
from falnb.client._status import Reconnecting, Status
from falnb.client.queue import Deadline
from falnb.local import LocalServer
from falnb.local.faults import FaultRule
from tests.kit import accepted, wait_healed


def patient(reconnect: float) -> RetryPolicy:
    return RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.2, reconnect=reconnect)


@pytest.fixture
def make_client(server: LocalServer) -> Iterator[Callable[..., SyncClient]]:
    made: list[SyncClient] = []

    def make(reconnect: float) -> SyncClient:
        client = SyncClient(server.target, retry=patient(reconnect))
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def status_blip(server: LocalServer, seconds: float) -> list[FaultRule]:
    """For ``seconds``: status streams refused (reset), polls refused or answered 503 (nginx)."""
    return [
        server.faults.add("reset", path_contains="/status/stream", duration=seconds),
        server.faults.add(
            "status=503;ingress", path_contains="/status", rate=0.5, duration=seconds
        ),
        server.faults.add("reset", path_contains="/status", duration=seconds),
    ]


def test_a_blip_shorter_than_the_budget_is_ridden_out_and_shown(
    make_client: Callable[..., SyncClient], server: LocalServer
) -> None:
    client = make_client(reconnect=20)
    handle = client.submit("local/slow", {"duration": 0.5, "steps": 2})
    rules = status_blip(server, 1.5)
    seen: list[Status] = list(
        handle._iter_events(with_logs=True, deadline=Deadline(30), reconnecting=True)
    )
    assert handle.get()["steps"] == 2
    assert isinstance(seen[-1], Completed)
    reconnecting = [s for s in seen if isinstance(s, Reconnecting)]
    assert reconnecting, "the wait never said it was reconnecting"
    assert max(s.seconds for s in reconnecting) >= 1.0  # it really went on for the blip
    assert all(rule.fired for rule in rules)
    assert accepted(server, "local/slow") == 1
    assert not server.journal.entries(method="PUT", path_contains="/cancel")


def test_status_streams_cut_mid_stream_are_reopened(
    make_client: Callable[..., SyncClient], server: LocalServer
) -> None:
    client = make_client(reconnect=20)
    handle = client.submit("local/slow", {"duration": 0.6, "steps": 3})
    cut = server.faults.add("cut", path_contains="/status/stream", duration=5)
    assert handle.get(timeout=30)["steps"] == 3
    assert cut.fired >= 2
    assert accepted(server, "local/slow") == 1


def test_public_iterators_yield_only_fals_states(
    make_client: Callable[..., SyncClient], server: LocalServer
) -> None:
    client = make_client(reconnect=20)
    updates: list[Status] = []
    handle = client.submit("local/slow", {"duration": 0.3, "steps": 2})
    status_blip(server, 0.8)
    updates.extend(handle.iter_events())
    assert updates
    assert not [s for s in updates if isinstance(s, Reconnecting)]
    assert handle.get()["steps"] == 2


def test_a_blip_longer_than_the_budget_leaves_the_request_running(
    make_client: Callable[..., SyncClient], server: LocalServer
) -> None:
    client = make_client(reconnect=1.0)
    handle = client.submit("local/slow", {"duration": 0.5, "steps": 2})
    rules = status_blip(server, 3.0)
    started = time.monotonic()
    with pytest.raises(RequestPendingError) as info:
        handle.get()
    waited = time.monotonic() - started
    assert 1.0 <= waited < 2.5  # the budget, not the transport's few retries
    assert info.value.request_id == handle.request_id
    assert handle.request_id in str(info.value)
    assert "not cancelled" in str(info.value)
    # Giving up is not cancelling: nothing was sent to cancel it, and once the server heals
    # the same request's result is there, with no second submission.
    assert not server.journal.entries(method="PUT", path_contains="/cancel")
    wait_healed(rules)
    again = client.get_handle("local/slow", handle.request_id)
    assert again.get()["steps"] == 2
    assert accepted(server, "local/slow") == 1


def test_the_result_fetch_rides_out_gateway_errors(
    make_client: Callable[..., SyncClient], server: LocalServer
) -> None:
    client = make_client(reconnect=20)
    handle = client.submit("local/echo", {"prompt": "hello"})
    for _ in handle.iter_events():
        pass
    # The request is done; now the gateway answers 503 (nginx) and then 429 for 1.2 s.
    server.faults.add("status=503;ingress", role="queue", method="GET", duration=0.6)
    server.faults.add("status=429;retry_after=0.1", role="queue", method="GET", duration=1.2)
    lost: list[Reconnecting] = []
    from falnb import _runtime

    output = _runtime.run(handle.async_handle._result(lost.append))
    assert output == {"prompt": "hello"}
    assert {r.reason for r in lost} >= {"503", "429"}
    assert accepted(server, "local/echo") == 1


def test_a_definitive_answer_is_not_ridden_out(
    make_client: Callable[..., SyncClient], server: LocalServer
) -> None:
    client = make_client(reconnect=30)
    handle = client.get_handle("local/echo", "00000000-0000-0000-0000-000000000000")
    started = time.monotonic()
    with pytest.raises(Exception, match="404") as info:
        handle.get()
    assert not isinstance(info.value, RequestPendingError)
    assert time.monotonic() - started < 5  # a 404 is the server's answer: no reconnecting


def test_a_timeout_whose_cancel_cannot_get_through_leaves_the_request_pending(
    make_client: Callable[..., SyncClient], server: LocalServer
) -> None:
    client = make_client(reconnect=20)
    handle = client.submit("local/slow", {"duration": 1.5, "steps": 2})
    rules = [
        server.faults.add("reset", path_contains="/status", duration=3),
        server.faults.add("reset", path_contains="/cancel", duration=3),
    ]
    with pytest.raises(RequestPendingError) as info:
        handle.get(timeout=0.5)
    assert "cancelling it failed" in str(info.value)
    assert rules[1].fired  # the cancel was tried, and refused
    wait_healed(rules)
    assert client.get_handle("local/slow", handle.request_id).get()["steps"] == 2
    assert accepted(server, "local/slow") == 1

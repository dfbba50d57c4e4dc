"""Retries and recovery, driven by the local server's fault injection."""

from __future__ import annotations

import socket
import time
from typing import Literal

import httpx
import pytest

from falnb import (
    Completed,
    ConnectionFailedError,
    FalError,
    HTTPError,
    RateLimitedError,
    RetryPolicy,
    SyncClient,
    Target,
)
from falnb.client._transport import connection_failed
from falnb.local import LocalServer
from tests.kit import log_messages, subscribed

SLOW = {"duration": 0.5, "steps": 5}
STEPS = [f"step {i}/5" for i in range(1, 6)]
FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05)


def test_429_waits_retry_after_then_succeeds(client: SyncClient, server: LocalServer) -> None:
    server.faults.add("status=429;retry_after=0.4", role="queue", method="POST", times=1)
    started = time.monotonic()
    handle = client.submit("local/echo", {"x": 1})
    assert time.monotonic() - started >= 0.4
    assert handle.get() == {"x": 1}
    assert len(server.journal.entries(method="POST", role="queue")) == 2
    assert len(server.journal.accepted_submissions()) == 1


def test_429_exhausted_raises_rate_limited(client: SyncClient, server: LocalServer) -> None:
    server.faults.add("status=429;retry_after=0.05", role="run")
    with pytest.raises(RateLimitedError) as info:
        client.run("local/echo", {})
    assert info.value.retry_after == 0.05
    assert "429" in str(info.value)
    assert len(server.journal.entries(method="POST", role="run")) == 4  # FAST_RETRY's attempts


def test_ingress_503_on_submit_is_retried_once_accepted(
    client: SyncClient, server: LocalServer
) -> None:
    server.faults.add("status=503;ingress", role="queue", method="POST", times=2)
    assert client.subscribe("local/echo", {"y": 2}) == {"y": 2}
    assert len(server.journal.entries(method="POST", role="queue")) == 3
    assert len(server.journal.accepted_submissions()) == 1


@pytest.mark.parametrize("role", ["queue", "run"])
def test_app_503_is_not_resubmitted(
    client: SyncClient, server: LocalServer, role: Literal["queue", "run"]
) -> None:
    server.faults.add("status=503", role=role, method="POST", times=1)
    call = client.submit if role == "queue" else client.run
    with pytest.raises(HTTPError) as info:
        call("local/echo", {})
    assert info.value.status_code == 503
    assert info.value.request_id  # the app had it: it may have started work
    assert len(server.journal.entries(method="POST", role=role)) == 1


def test_connection_reset_on_get_is_retried(client: SyncClient, server: LocalServer) -> None:
    handle = client.submit("local/echo", {"z": 3})
    handle.get()
    rule = server.faults.add("reset", method="GET", path_contains="/requests/", times=2)
    assert isinstance(handle.status(), Completed)
    assert client.result("local/echo", handle.request_id) == {"z": 3}
    assert rule.fired == 2


def test_dropped_status_stream_is_resumed(client: SyncClient, server: LocalServer) -> None:
    rule = server.faults.add("drop", path_contains="/status/stream", times=2)
    result, enqueued, updates = subscribed(client, "local/slow", SLOW)
    assert result["steps"] == 5
    assert rule.fired == 2
    assert log_messages(updates) == STEPS
    opened = server.journal.entries(path_contains=f"{enqueued[0]}/status/stream")
    assert len(opened) == 3


def test_refused_status_stream_falls_back_to_polling(
    client: SyncClient, server: LocalServer
) -> None:
    server.faults.add("status=503;ingress", path_contains="/status/stream")
    result, enqueued, updates = subscribed(client, "local/slow", {"duration": 1.5, "steps": 5})
    assert result["steps"] == 5
    assert log_messages(updates) == STEPS
    assert isinstance(updates[-1], Completed)
    polls = [
        e
        for e in server.journal.entries(method="GET", path_contains=enqueued[0])
        if e.path.endswith("/status")
    ]
    assert len(polls) >= 2


def test_unreachable_server_is_one_readable_error(server: LocalServer) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = Target.local(f"http://127.0.0.1:{port}", server.key)
    with SyncClient(target, retry=FAST) as gone, pytest.raises(ConnectionFailedError) as info:
        gone.run("local/echo", {})
    message = str(info.value)
    assert f"127.0.0.1:{port}/local/echo" in message
    assert "ConnectError" in message
    assert isinstance(info.value, FalError)


def test_connection_lost_on_submit_is_not_repeated(client: SyncClient, server: LocalServer) -> None:
    server.faults.add("reset", role="queue", method="POST", times=1)
    with pytest.raises(ConnectionFailedError, match="not sent again") as info:
        client.submit("local/echo", {})
    # The body was sent: the server may have queued it, so falnb does not send it again.
    assert len(server.journal.entries(method="POST", role="queue")) == 1
    assert str(info.value).startswith("the connection closed before POST ")


@pytest.mark.parametrize(
    "seen",
    [
        httpx.ReadError(""),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=["reset, no message", "reset", "end of stream"],
)
def test_a_connection_closed_before_its_answer_reads_the_same_however_httpx_saw_it(
    seen: httpx.TransportError,
) -> None:
    # Which of these httpx raises for one reset depends on timing (a CI run met both).
    request = httpx.Request("POST", "https://queue.fal.run/fal-ai/flux?fal_jwt_token=secret")
    message = str(connection_failed(seen, request, creates_work=True))
    assert message == (
        "the connection closed before POST https://queue.fal.run/fal-ai/flux?fal_jwt_token=*** "
        "was answered; not sent again, as the server may have started (and billed) it"
    )
    assert "billed" not in str(connection_failed(seen, request))

"""A realtime connection or widget on an endpoint that does not exist says "not found" plainly.

The local server accepts the socket, sends ``x-fal-error NOT_FOUND`` and closes with 1008; a
gateway may instead refuse the handshake with HTTP 404. Either way the user reads "not found",
never "Unauthorized" (1008 is also how refused tokens close) nor a raw websockets exception.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from ipywidgets import IntSlider

from falnb import RealtimeError
from falnb.client import SyncClient
from falnb.client._transport import RetryPolicy
from falnb.local import LocalServer
from falnb.widgets.realtime import Realtime
from tests.kit import plain_http

QUICK = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05)
MISSING = "local/no-such-app"


@pytest.fixture
def client(server: LocalServer) -> Iterator[SyncClient]:
    with SyncClient(server.target, retry=QUICK) as sync:
        yield sync


def refusal(connection: Any) -> RealtimeError:
    try:
        connection.send({"prompt": "hi"})
        connection.recv(timeout=10)
    except RealtimeError as exc:
        return exc
    pytest.fail("the server answered an endpoint that does not exist")


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [(MISSING, f"Unknown endpoint '{MISSING}'"), ("local/echo", "has no realtime handler")],
)
def test_the_client_raises_not_found(client: SyncClient, endpoint: str, reason: str) -> None:
    # Whether the send or the server's refusal wins the race, the answer is the same.
    for _ in range(10):
        with client.realtime(endpoint) as connection:
            error = refusal(connection)
        assert error.error == "NOT_FOUND"
        assert reason in error.reason


class _NotFound(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return None


@pytest.fixture
def gateway_404() -> Iterator[str]:
    """A ws:// base URL whose every handshake is answered 404, as a gateway may."""
    with plain_http(_NotFound) as base_url:
        yield base_url.replace("http", "ws", 1)


def test_a_404_handshake_is_not_found(server: LocalServer, gateway_404: str) -> None:
    target = dataclasses.replace(server.target, realtime_url=gateway_404)
    with SyncClient(target, retry=QUICK) as client, pytest.raises(RealtimeError) as caught:
        client.realtime("fal-ai/no-such-app")  # opens the socket now
    assert caught.value.error == "NOT_FOUND"
    assert "endpoint 'fal-ai/no-such-app' was not found (HTTP 404" in str(caught.value)


def test_the_widget_says_not_found(
    client: SyncClient, server: LocalServer, until: Callable[..., Any]
) -> None:
    seed = IntSlider(1, min=0, max=10)
    widget = Realtime(MISSING, base={"prompt": "a fox"}, controls={"seed": seed}, client=client)
    try:
        until(lambda: widget.status == "error", what="the refused connection")
        assert widget.error == f"not found: Unknown endpoint '{MISSING}'"
        seed.value = 2  # the next change tries again, and is told the same
        until(lambda: widget.stats["errors"] >= 2, what="the second attempt")
        assert widget.error == f"not found: Unknown endpoint '{MISSING}'"
        assert "Unauthorized" not in widget.error
        assert server.key not in widget.error
    finally:
        widget.close()

"""Webhooks end to end: a request with ``?fal_webhook=`` posts a signed notice to a receiver."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest

from falnb.client.errors import WebhookVerificationError
from falnb.client.webhooks import verify_webhook
from falnb.local import LocalServer
from falnb.local.webhooks import PAYLOAD_ERROR, webhook_body
from tests.kit import plain_http


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    deliveries: queue.Queue[Delivery] = field(default_factory=queue.Queue)
    fail_first: int = 0
    seen: int = 0

    def next(self, timeout: float = 10.0) -> Delivery:
        return self.deliveries.get(timeout=timeout)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback HTTP server that records webhook deliveries (optionally failing at first)."""
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.seen += 1
            if state.seen <= state.fail_first:
                self.send_response(500)
                self.end_headers()
                return
            state.deliveries.put(Delivery(dict(self.headers.items()), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with plain_http(Handler) as base_url:
        state.url = f"{base_url}/hooks/fal"
        yield state


def submit(http: httpx.Client, endpoint: str, arguments: dict[str, Any], webhook: str) -> str:
    response = http.post(f"/_queue/{endpoint}", params={"fal_webhook": webhook}, json=arguments)
    assert response.status_code == 200
    return str(response.json()["request_id"])


def jwks(base_url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{base_url}/_rest/.well-known/jwks.json").json())


def test_success_is_delivered_signed(http: httpx.Client, base_url: str, receiver: Receiver) -> None:
    request_id = submit(http, "local/echo", {"prompt": "fox", "seed": 3}, receiver.url)
    delivery = receiver.next()
    body = delivery.json()
    assert body["request_id"] == request_id
    assert body["gateway_request_id"] == request_id
    assert body["status"] == "OK"
    assert body["payload"] == {"prompt": "fox", "seed": 3}
    assert "error" not in body
    assert delivery.headers["X-Fal-Webhook-Request-Id"] == request_id
    assert delivery.headers["Content-Type"] == "application/json"
    verify_webhook(delivery.body, delivery.headers, jwks(base_url))


def test_tampering_and_replays_are_rejected(
    http: httpx.Client, base_url: str, receiver: Receiver
) -> None:
    submit(http, "local/echo", {"n": 1}, receiver.url)
    delivery = receiver.next()
    keys = jwks(base_url)
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify_webhook(delivery.body.replace(b'"n":1', b'"n":2'), delivery.headers, keys)
    later = int(delivery.headers["X-Fal-Webhook-Timestamp"]) + 3600
    with pytest.raises(WebhookVerificationError, match="timestamp"):
        verify_webhook(delivery.body, delivery.headers, keys, now=later)


def test_failure_is_delivered_as_error(
    http: httpx.Client, base_url: str, receiver: Receiver
) -> None:
    submit(http, "local/fail", {"status": 422}, receiver.url)
    delivery = receiver.next()
    body = delivery.json()
    assert body["status"] == "ERROR"
    assert isinstance(body["error"], str)
    assert body["error"]
    assert isinstance(body["payload"]["detail"], list)
    verify_webhook(delivery.body, delivery.headers, jwks(base_url))


def test_failed_delivery_is_retried(
    http: httpx.Client, server: LocalServer, receiver: Receiver
) -> None:
    receiver.fail_first = 1
    request_id = submit(http, "local/echo", {"retry": True}, receiver.url)
    assert receiver.next().json()["request_id"] == request_id
    deadline = time.monotonic() + 5
    while len(server.journal.entries(role="webhook")) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    statuses = [entry.status for entry in server.journal.entries(role="webhook")]
    assert statuses == [500, 200]


def test_unserialisable_payload_becomes_payload_error() -> None:
    body = json.loads(webhook_body(request_id="r1", ok=True, payload={"x": object()}, error=None))
    assert body["payload"] is None
    assert body["payload_error"] == PAYLOAD_ERROR
    assert body["status"] == "OK"

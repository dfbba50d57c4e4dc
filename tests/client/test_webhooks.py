"""Webhook verification: unit checks with a local signer, and the JWKS from the server."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from falnb import SyncClient, _runtime
from falnb.client import webhooks
from falnb.client._transport import Transport
from falnb.client.errors import WebhookVerificationError
from falnb.client.webhooks import fetch_jwks, verify_webhook, verify_webhook_with
from falnb.local import LocalServer
from falnb.local.webhooks import WebhookSigner
from tests.kit import plain_http

BODY = b'{"request_id":"r-1","status":"OK","payload":{"n":1}}'
NOW = 1_700_000_000


@pytest.fixture
def signer() -> WebhookSigner:
    return WebhookSigner()


def signed(signer: WebhookSigner, body: bytes = BODY, ts: int = NOW) -> dict[str, str]:
    return signer.headers("r-1", body, timestamp=ts)


def test_valid_signature_passes_any_header_case(signer: WebhookSigner) -> None:
    headers = {k.lower(): v for k, v in signed(signer).items()}
    verify_webhook(BODY, headers, signer.jwks(), now=NOW + 10)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b, h: (b + b" ", h), "signature does not match"),
        (lambda b, h: (b, {**h, "X-Fal-Webhook-Request-Id": "r-2"}), "signature does not match"),
        (lambda b, h: (b, {**h, "X-Fal-Webhook-Timestamp": str(NOW - 301)}), "timestamp is 301s"),
        (lambda b, h: (b, {**h, "X-Fal-Webhook-Timestamp": "soon"}), "not unix seconds"),
        (lambda b, h: (b, {**h, "X-Fal-Webhook-Signature": "zz"}), "not hex"),
        (
            lambda b, h: (b, {k: v for k, v in h.items() if not k.endswith("User-Id")}),
            "missing header X-Fal-Webhook-User-Id",
        ),
    ],
)
def test_rejections_say_why(signer: WebhookSigner, change: Any, message: str) -> None:
    body, headers = change(BODY, signed(signer))
    with pytest.raises(WebhookVerificationError, match=message):
        verify_webhook(body, headers, signer.jwks(), now=NOW)


def test_tolerance_is_configurable(signer: WebhookSigner) -> None:
    verify_webhook(BODY, signed(signer), signer.jwks(), now=NOW + 1000, tolerance=1000)


def test_other_keys_do_not_verify(signer: WebhookSigner) -> None:
    other = WebhookSigner()
    with pytest.raises(WebhookVerificationError, match="signature does not match"):
        verify_webhook(BODY, signed(signer), other.jwks(), now=NOW)
    both = {"keys": other.jwks()["keys"] + signer.jwks()["keys"]}
    verify_webhook(BODY, signed(signer), both, now=NOW)  # every key is tried
    with pytest.raises(WebhookVerificationError, match="no Ed25519 key"):
        verify_webhook(BODY, signed(signer), {"keys": [{"kty": "RSA"}]}, now=NOW)


@pytest.fixture(autouse=True)
def _fresh_jwks_cache() -> None:
    webhooks._jwks_cache.clear()


@pytest.fixture
def transport(server: LocalServer) -> Iterator[Transport]:
    transport = Transport(server.target)
    yield transport
    _runtime.run(transport.aclose())


def test_fetch_jwks_is_cached_and_needs_no_key(server: LocalServer) -> None:
    keyless = Transport(server.target.with_key(None))  # e.g. a webhook receiver's process
    try:
        first = _runtime.run(fetch_jwks(keyless))
        second = _runtime.run(fetch_jwks(keyless))
    finally:
        _runtime.run(keyless.aclose())
    assert first == second == server.state.signer.jwks()
    fetched = server.journal.entries(method="GET", path_contains="/.well-known/jwks.json")
    assert len(fetched) == 1


def test_verify_with_refetches_keys_once_on_mismatch(
    transport: Transport, server: LocalServer
) -> None:
    # A stale cache (e.g. keys rotated) is refreshed before a delivery is rejected.
    url = f"{server.target.rest_url}/.well-known/jwks.json"
    webhooks._jwks_cache[url] = (time.monotonic(), WebhookSigner().jwks())
    body = b'{"ok":true}'
    headers = server.state.signer.headers("r-9", body)
    _runtime.run(verify_webhook_with(transport, body, headers))
    with pytest.raises(WebhookVerificationError):
        _runtime.run(verify_webhook_with(transport, body + b" ", headers))


def test_client_submit_with_webhook_verifies(client: SyncClient, transport: Transport) -> None:
    received: queue.Queue[tuple[bytes, dict[str, str]]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.put((body, dict(self.headers.items())))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with plain_http(Handler) as base_url:
        handle = client.submit("local/echo", {"hello": "hook"}, webhook_url=f"{base_url}/hook")
        body, headers = received.get(timeout=10)
    _runtime.run(verify_webhook_with(transport, body, headers))
    delivered = json.loads(body)
    assert delivered["request_id"] == handle.request_id
    assert delivered["payload"] == {"hello": "hook"}

"""Webhook delivery for queue requests submitted with ``?fal_webhook=<url>``.

Deliveries are signed as fal signs them (fal-protocol.md section 8): a hex Ed25519 signature
over ``"{request_id}\\n{user_id}\\n{timestamp}\\n{sha256hex(body)}"``, with the public key served
as a JWKS at ``{rest_url}/.well-known/jwks.json``. Each server generates its own key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from falnb._config import LOCAL_WEBHOOK_RETRY_DELAYS, LOCAL_WEBHOOK_TIMEOUT
from falnb.local.journal import redact_url

if TYPE_CHECKING:
    from falnb.local.journal import Journal

__all__ = ["WebhookSigner", "Webhooks", "webhook_body"]

logger = logging.getLogger("falnb.local.webhooks")

PAYLOAD_ERROR = (
    "Response payload is not JSON serializable. Either return a JSON serializable object or "
    "use the queue endpoint to retrieve the response."
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class WebhookSigner:
    """An Ed25519 key pair that signs webhook deliveries, and its public JWKS."""

    def __init__(self, user_id: str = "local") -> None:
        self.user_id = user_id
        self._private = Ed25519PrivateKey.generate()
        raw = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._x = _b64url(raw)
        self.kid = hashlib.sha256(raw).hexdigest()[:16]

    def jwks(self) -> dict[str, Any]:
        """The public key as fal serves it: ``{"keys": [{"kty": "OKP", "crv": "Ed25519", ..}]}``."""
        return {
            "keys": [{"kty": "OKP", "crv": "Ed25519", "x": self._x, "kid": self.kid, "use": "sig"}]
        }

    def sign(self, message: bytes) -> str:
        """Hex Ed25519 signature of ``message``."""
        return self._private.sign(message).hex()

    def headers(self, request_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The ``X-Fal-Webhook-*`` headers for one delivery of ``body``."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        digest = hashlib.sha256(body).hexdigest()
        message = f"{request_id}\n{self.user_id}\n{ts}\n{digest}".encode()
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": self.user_id,
            "X-Fal-Webhook-Timestamp": ts,
            "X-Fal-Webhook-Signature": self.sign(message),
        }


def webhook_body(*, request_id: str, ok: bool, payload: Any, error: str | None) -> bytes:
    """The JSON body fal posts; an unserialisable payload becomes ``null`` + ``payload_error``."""
    body: dict[str, Any] = {
        "request_id": request_id,
        "gateway_request_id": request_id,
        "status": "OK" if ok else "ERROR",
    }
    if not ok:
        body["error"] = error or "Request failed"
    try:
        encoded = json.dumps({**body, "payload": payload}, separators=(",", ":"))
    except (TypeError, ValueError):
        encoded = json.dumps(
            {**body, "payload": None, "payload_error": PAYLOAD_ERROR}, separators=(",", ":")
        )
    return encoded.encode()


class Webhooks:
    """Delivers completion notices, signed by ``signer``, and journals each attempt."""

    def __init__(self, signer: WebhookSigner, journal: Journal) -> None:
        self.signer = signer
        self.journal = journal

    async def deliver(
        self, url: str, *, request_id: str, ok: bool, payload: Any, error: str | None
    ) -> None:
        """POST the signed completion notice to ``url``, retrying a few times on failure.

        Never raises: a receiver that is down only costs log lines.
        """
        body = webhook_body(request_id=request_id, ok=ok, payload=payload, error=error)
        shown = redact_url(url)  # a receiver's URL may carry its own token
        async with httpx.AsyncClient(timeout=LOCAL_WEBHOOK_TIMEOUT, trust_env=False) as http:
            for attempt, delay in enumerate((0.0, *LOCAL_WEBHOOK_RETRY_DELAYS), start=1):
                if delay:
                    await asyncio.sleep(delay)
                signed = self.signer.headers(request_id, body)
                headers = {"Content-Type": "application/json", **signed}
                try:
                    response = await http.post(url, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    logger.info(
                        "webhook to %s failed (%s), attempt %d", shown, type(exc).__name__, attempt
                    )
                    self.journal.record_webhook(url=url, status=None, attempt=attempt)
                    continue
                self.journal.record_webhook(url=url, status=response.status_code, attempt=attempt)
                if response.is_success:
                    return
                logger.info(
                    "webhook to %s got %d, attempt %d", shown, response.status_code, attempt
                )
        logger.warning("webhook for request %s was not delivered to %s", request_id, shown)

"""Verifying fal's webhook deliveries (fal-protocol.md section 8).

fal signs each delivery with Ed25519: the hex signature in ``X-Fal-Webhook-Signature`` covers
``"{request_id}\\n{user_id}\\n{timestamp}\\n{sha256hex(body)}"``, and the public keys are a
JWKS at ``{rest_url}/.well-known/jwks.json``.

Example, in a web framework's handler::

    jwks = await fetch_jwks(transport)
    verify_webhook(await request.body(), request.headers, jwks)   # raises if forged
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Mapping
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from falnb._config import JWKS_TIMEOUT
from falnb.client._transport import Transport
from falnb.client.errors import WebhookVerificationError

__all__ = ["JWKS_CACHE_SECONDS", "fetch_jwks", "verify_webhook", "verify_webhook_with"]

JWKS_CACHE_SECONDS = 24 * 3600.0
_HEADERS = ("request-id", "user-id", "timestamp", "signature")

_jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}


class _SignatureMismatchError(WebhookVerificationError):
    """No key accepts the signature; the one failure that fresh keys could cure."""


def _public_keys(jwks: Mapping[str, Any]) -> list[Ed25519PublicKey]:
    keys: list[Ed25519PublicKey] = []
    for entry in jwks.get("keys") or []:
        if not isinstance(entry, Mapping) or entry.get("kty") != "OKP":
            continue
        if entry.get("crv") != "Ed25519" or not isinstance(entry.get("x"), str):
            continue
        x: str = entry["x"]
        try:
            raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except (ValueError, binascii.Error):
            continue
    return keys


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str],
    jwks: Mapping[str, Any],
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> None:
    """Check that ``body`` was signed by one of ``jwks``'s keys, recently.

    ``headers`` may use any letter case. Raises :class:`WebhookVerificationError` saying what
    is wrong: a missing header, a timestamp more than ``tolerance`` seconds off, or a
    signature that no key accepts.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    values: dict[str, str] = {}
    for name in _HEADERS:
        value = lowered.get(f"x-fal-webhook-{name}", "").strip()
        if not value:
            raise WebhookVerificationError(f"missing header X-Fal-Webhook-{name.title()}")
        values[name] = value
    try:
        timestamp = int(values["timestamp"])
    except ValueError:
        raise WebhookVerificationError(
            f"X-Fal-Webhook-Timestamp is not unix seconds: {values['timestamp'][:40]!r}"
        ) from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError(
            f"timestamp is {abs(current - timestamp):.0f}s off the current time "
            f"(tolerance {tolerance:g}s): a replayed or delayed delivery"
        )
    try:
        signature = bytes.fromhex(values["signature"])
    except ValueError:
        raise WebhookVerificationError("X-Fal-Webhook-Signature is not hex") from None
    keys = _public_keys(jwks)
    if not keys:
        raise WebhookVerificationError("the JWKS holds no Ed25519 key")
    digest = hashlib.sha256(body).hexdigest()
    message = f"{values['request-id']}\n{values['user-id']}\n{timestamp}\n{digest}".encode()
    for key in keys:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return
    raise _SignatureMismatchError(
        "signature does not match the body with any key in the JWKS (tampered, or wrong keys)"
    )


def _jwks_url(source: Transport | str) -> str:
    if isinstance(source, Transport):
        return f"{source.target.rest_url}/.well-known/jwks.json"
    return source


async def fetch_jwks(source: Transport | str, *, refresh: bool = False) -> dict[str, Any]:
    """fal's webhook keys from ``{rest_url}/.well-known/jwks.json`` (or a JWKS URL), cached 24 h."""
    url = _jwks_url(source)
    cached = _jwks_cache.get(url)
    if cached is not None and not refresh and time.monotonic() - cached[0] < JWKS_CACHE_SECONDS:
        return cached[1]
    if isinstance(source, Transport):
        # The JWKS is public; no key is sent, so this works on a receiver without one.
        response = await source.request("GET", url, auth=False)
    else:
        async with httpx.AsyncClient(timeout=JWKS_TIMEOUT) as http:
            response = await http.get(url)
            response.raise_for_status()
    jwks = response.json()
    if not isinstance(jwks, dict):
        raise WebhookVerificationError(f"{url} did not answer with a JWKS object")
    _jwks_cache[url] = (time.monotonic(), jwks)
    return jwks


async def verify_webhook_with(
    source: Transport | str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    tolerance: float = 300,
) -> None:
    """:func:`verify_webhook` with the JWKS fetched (and cached) from ``source``.

    A signature that no cached key accepts is checked once more against freshly fetched
    keys, so a key rotation does not reject genuine deliveries.
    """
    jwks = await fetch_jwks(source)
    try:
        verify_webhook(body, headers, jwks, tolerance=tolerance)
    except _SignatureMismatchError:
        verify_webhook(body, headers, await fetch_jwks(source, refresh=True), tolerance=tolerance)

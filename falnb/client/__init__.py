"""fal's protocol over httpx: the client core, with no notebook imports.

Use it through the package: ``from falnb import SyncClient, AsyncClient``.
"""

from __future__ import annotations

from falnb.client._client import AsyncClient, SyncClient
from falnb.client._status import Completed, InProgress, Queued, Status
from falnb.client._transport import RetryPolicy
from falnb.client.errors import (
    ConnectionFailedError,
    FalError,
    HTTPError,
    MissingCredentialsError,
    RateLimitedError,
    RealtimeError,
    RequestCancelledError,
    RequestPendingError,
    RequestTimeoutError,
    StreamError,
    ValidationError,
    WebhookVerificationError,
)
from falnb.client.lifecycle import StorageACL, StorageACLRule, StorageSettings
from falnb.client.queue import AsyncRequestHandle, RequestHandle
from falnb.client.stream import AsyncStream, Stream

__all__ = [
    "AsyncClient",
    "AsyncRequestHandle",
    "AsyncStream",
    "Completed",
    "ConnectionFailedError",
    "FalError",
    "HTTPError",
    "InProgress",
    "MissingCredentialsError",
    "Queued",
    "RateLimitedError",
    "RealtimeError",
    "RequestCancelledError",
    "RequestHandle",
    "RequestPendingError",
    "RequestTimeoutError",
    "RetryPolicy",
    "Status",
    "StorageACL",
    "StorageACLRule",
    "StorageSettings",
    "Stream",
    "StreamError",
    "SyncClient",
    "ValidationError",
    "WebhookVerificationError",
]

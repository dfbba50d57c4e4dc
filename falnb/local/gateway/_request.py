"""One request's gateway state, the role its path stands for, and request-id stamping."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from falnb._protocol import LOCAL_CDN, LOCAL_QUEUE, LOCAL_REST, strip_namespace
from falnb.local.journal import Role

__all__ = [
    "HTTPMiddleware",
    "RequestIdMiddleware",
    "RequestInfo",
    "app_alias",
    "respond",
    "respond_json",
    "role_of",
]

REQUEST_ID = b"x-fal-request-id"
_SCOPE_KEY = "falnb"


def _nothing() -> None:
    """What an unjournaled request does when it is answered by a reset."""


@dataclass(eq=False)
class RequestInfo:
    """What the gateway knows about one HTTP request, shared by its middlewares and routes.

    Lives in ``scope["state"]``; :meth:`of` creates it on first use.
    """

    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    #: ``time.monotonic()`` when the request came in (start timeouts count from here).
    received: float = field(default_factory=time.monotonic)
    #: Whether the caller holds credentials valid for the path (public paths admit others).
    authenticated: bool = False
    #: The fault spec applied, for the journal.
    fault: str | None = None
    #: An SSE route closes its stream after the first event (fault ``drop``).
    drop: bool = False
    #: An SSE route's connection is aborted after the first event (fault ``cut``).
    cut: bool = False
    #: The answer imitates fal's ingress: no ``x-fal-request-id`` is stamped.
    ingress: bool = False
    #: The server's transport (uvicorn's), to abort the connection; None elsewhere.
    transport: object | None = field(default=None, repr=False)
    #: Set by the journal: record the request now as answered with no response at all.
    journal_unanswered: Callable[[], None] = field(default=_nothing, repr=False)

    @classmethod
    def of(cls, scope: Scope) -> RequestInfo:
        state = scope.setdefault("state", {})
        info = state.get(_SCOPE_KEY)
        if not isinstance(info, RequestInfo):
            info = state[_SCOPE_KEY] = cls()
        return info

    def abort(self) -> bool:
        """Abort the request's TCP connection (uvicorn's transport); False when there is none."""
        abort = getattr(self.transport, "abort", None)
        if abort is None:
            return False
        abort()
        return True


class HTTPMiddleware:
    """A gateway layer over HTTP requests: WebSockets and lifespan pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


def role_of(path: str) -> Role:
    """Which fal host this path stands for."""
    for prefix, role in ((LOCAL_QUEUE, "queue"), (LOCAL_REST, "rest"), (LOCAL_CDN, "cdn")):
        if path.startswith(prefix + "/"):
            return role  # type: ignore[return-value]
    return "other" if path.startswith("/_falnb") else "run"


def app_alias(path: str) -> str | None:
    """The app alias a run/queue/ws path addresses (what realtime tokens are scoped to)."""
    if path.startswith(LOCAL_QUEUE + "/"):
        path = path[len(LOCAL_QUEUE) :]
    parts = strip_namespace(path).split("/")
    return parts[1] if len(parts) >= 2 else None


class RequestIdMiddleware(HTTPMiddleware):
    """Stamps the request's id on answers that carry no ``x-fal-request-id`` of their own."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = RequestInfo.of(scope)

        async def stamping_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not info.ingress:
                headers = list(message.get("headers", []))
                if not any(k.lower() == REQUEST_ID for k, _ in headers):
                    headers.append((REQUEST_ID, info.request_id.encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, stamping_send)


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer with one complete response from inside a middleware."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def respond_json(
    send: Send, status: int, body: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await respond(send, status, json.dumps(body).encode(), b"application/json", headers)

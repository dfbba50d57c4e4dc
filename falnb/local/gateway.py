"""The local server's gateway: what fal's edge does before a request reaches an app.

A pure ASGI middleware (``BaseHTTPMiddleware`` would buffer streaming responses) that, for
every request: assigns an ``x-fal-request-id``, checks the key (:mod:`falnb.local.auth`),
applies fault rules to authenticated requests, and records the request in the journal.
Routes that know a better id (the queue's request id) set the header themselves and the
gateway leaves it alone.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from falnb.local.faults import FaultRule
from falnb.local.journal import MAX_BODY, JournalEntry, Role, parse_body, redact_query, safe_headers

if TYPE_CHECKING:
    from falnb.local.state import ServerState

__all__ = ["GatewayMiddleware", "app_alias", "role_of", "strip_namespace"]

REQUEST_ID = b"x-fal-request-id"
#: fal's namespaces: ignored when looking endpoints and requests up (fal-protocol.md 3.1).
NAMESPACES = ("workflows", "comfy")
#: Paths anyone may call: health, public file downloads (and uploads that carry their own
#: signature or CDN token, checked by the storage routes), the webhook JWKS.
_PUBLIC_PREFIXES = ("/_falnb/health", "/_cdn/", "/_rest/.well-known/")


def role_of(path: str) -> Role:
    """Which fal host this path stands for."""
    for prefix, role in (("/_queue/", "queue"), ("/_rest/", "rest"), ("/_cdn/", "cdn")):
        if path.startswith(prefix):
            return role  # type: ignore[return-value]
    return "other" if path.startswith("/_falnb") else "run"


def strip_namespace(endpoint_path: str) -> str:
    """``workflows/owner/alias/x`` -> ``owner/alias/x``; other paths unchanged."""
    path = endpoint_path.strip("/")
    head, _, rest = path.partition("/")
    return rest if head in NAMESPACES and rest else path


def app_alias(path: str) -> str | None:
    """The app alias a run/queue/ws path addresses (what realtime tokens are scoped to)."""
    if path.startswith("/_queue/"):
        path = path[len("/_queue") :]
    parts = strip_namespace(path).split("/")
    return parts[1] if len(parts) >= 2 else None


def _is_sse(role: Role, path: str) -> bool:
    return (role == "queue" and path.rstrip("/").endswith("/status/stream")) or (
        role == "run" and path.rstrip("/").endswith("/stream")
    )


class GatewayMiddleware:
    """Request ids, faults, auth and the journal, in front of every route."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = self.state.journal.record(
            JournalEntry(
                role="ws",
                method="WS",
                path=scope["path"],
                query=redact_query(scope.get("query_string", b"").decode("latin-1")),
                headers=safe_headers(scope.get("headers", [])),
            )
        )

        async def journaled_send(message: Message) -> None:
            if message["type"] == "websocket.accept" and entry.status is None:
                entry.status = 101
            elif message["type"] == "websocket.close" and entry.status is None:
                entry.status = 403
            await send(message)

        await self.app(scope, receive, journaled_send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        path: str = scope["path"]
        role = role_of(path)
        request_id = str(uuid.uuid4())
        scope.setdefault("state", {})
        scope["state"]["falnb_request_id"] = request_id
        scope["state"]["falnb_received"] = time.monotonic()
        connection = HTTPConnection(scope)
        entry = JournalEntry(
            role=role,
            method=scope["method"],
            path=path,
            query=redact_query(scope.get("query_string", b"").decode("latin-1")),
            headers=safe_headers(scope.get("headers", [])),
            request_id=request_id,
        )
        body = bytearray()
        recorded = False

        def record(status: int | None, response_id: str | None) -> None:
            nonlocal recorded
            if recorded:
                return
            recorded = True
            entry.status = status
            entry.request_id = response_id
            entry.body = parse_body(bytes(body)) if len(body) <= MAX_BODY else None
            state.journal.record(entry)

        async def teeing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) <= MAX_BODY:
                body.extend(message.get("body", b""))
            return message

        async def stamping_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                ids = [v for k, v in headers if k.lower() == REQUEST_ID]
                if not ids and not scope["state"].get("falnb_ingress"):
                    headers.append((REQUEST_ID, request_id.encode()))
                    ids = [request_id.encode()]
                message = {**message, "headers": headers}
                record(message["status"], ids[0].decode() if ids else None)
            await send(message)

        authenticated = self._authenticated(connection, role, path)
        if not authenticated and not path.startswith(_PUBLIC_PREFIXES):
            await _json(stamping_send, 401, {"detail": "Unauthorized"})
            return
        # The fault header only after auth: a caller without the key must not hold, reset or
        # forge answers. The test's own rules also reach public paths (CDN downloads).
        try:
            rule = state.faults.select(
                role,
                scope["method"],
                path,
                connection.headers.get("x-falnb-fault") if authenticated else None,
            )
        except ValueError as exc:
            await _json(stamping_send, 400, {"detail": f"Invalid x-falnb-fault: {exc}"})
            return
        if rule is not None:
            entry.fault = rule.spec
            if await self._apply_fault(
                rule,
                role=role,
                scope=scope,
                receive=receive,
                send=stamping_send,
                raw_send=send,
                record=record,
            ):
                return
        cut = scope["state"].get("falnb_cut")
        app_send: Send = _cutting(stamping_send, send) if cut else stamping_send
        try:
            await self.app(scope, teeing_receive, app_send)
        finally:
            record(None, request_id)

    def _authenticated(self, connection: HTTPConnection, role: Role, path: str) -> bool:
        """Whether the request carries credentials valid for its role (public paths may not)."""
        auth = self.state.auth
        if role in ("run", "queue"):
            return auth.app_allowed(connection, app_alias(path))
        if role == "cdn":
            return auth.cdn_allowed(connection)
        return auth.has_key(connection)

    async def _apply_fault(
        self,
        rule: FaultRule,
        *,
        role: Role,
        scope: Scope,
        receive: Receive,
        send: Send,
        raw_send: Send,
        record: Callable[[int | None, str | None], None],
    ) -> bool:
        """Apply ``rule``; True when it answered (or killed) the request itself."""
        if rule.delay:
            await asyncio.sleep(rule.delay)
        sse = _is_sse(role, scope["path"])
        if rule.reset or ((rule.drop or rule.cut) and not sse):
            record(None, None)
            await _reset(raw_send, receive)
            return True
        if rule.drop:
            scope["state"]["falnb_drop"] = True
        if rule.cut:
            scope["state"]["falnb_cut"] = True
        if rule.status is None:
            return False
        if rule.ingress and rule.status >= 500:
            scope["state"]["falnb_ingress"] = True
            await _respond(send, rule.status, rule.ingress_body().encode(), b"text/html")
            return True
        headers: list[tuple[bytes, bytes]] = []
        body = rule.error_body()
        if rule.status == 429:
            headers.append((b"retry-after", f"{body['retry_after']:g}".encode()))
        if rule.user_timeout:
            headers.append((b"x-fal-request-timeout-type", b"user"))
        if isinstance(body.get("error_type"), str):
            headers.append((b"x-fal-error-type", body["error_type"].encode()))
        await _json(send, rule.status, body, headers)
        return True


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
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


async def _json(
    send: Send, status: int, body: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _respond(send, status, json.dumps(body).encode(), b"application/json", headers)


def _cutting(send: Send, raw_send: Send) -> Send:
    """A send that aborts the connection once the first event is out (a stream cut short)."""
    cut = False

    async def cutting_send(message: Message) -> None:
        nonlocal cut
        if cut:
            return  # the connection is gone; the route notices the disconnect and stops
        await send(message)
        if message["type"] == "http.response.body" and message.get("body"):
            transport = getattr(getattr(raw_send, "__self__", None), "transport", None)
            if transport is not None:
                cut = True
                transport.abort()

    return cutting_send


async def _reset(send: Send, receive: Receive) -> None:
    """Abort the TCP connection with no response (the client sees a protocol/read error)."""
    # uvicorn's send is a bound method of the request cycle that owns the transport.
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        # Not uvicorn: start a response and end it short, which clients also see as broken.
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]}
        )
        return
    transport.abort()
    # Wait until the server notices, so it does not log a missing response or answer 500.
    while (await receive())["type"] != "http.disconnect":
        pass

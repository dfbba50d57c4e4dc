"""The gateway's outermost layer: every request and handshake goes into the journal."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from falnb.local.gateway._request import REQUEST_ID, RequestInfo, role_of
from falnb.local.journal import (
    MAX_BODY,
    Journal,
    JournalEntry,
    carries_credentials,
    parse_body,
    redact_query,
    safe_headers,
)

__all__ = ["JournalMiddleware"]


def _entry(scope: Scope, **fields: object) -> JournalEntry:
    return JournalEntry(
        path=scope["path"],
        query=redact_query(scope.get("query_string", b"").decode("latin-1")),
        headers=safe_headers(scope.get("headers", [])),
        credentials=carries_credentials(scope.get("headers", [])),
        **fields,  # type: ignore[arg-type]
    )


class JournalMiddleware:
    """Records each request once its response starts (or once it ends without one)."""

    def __init__(self, app: ASGIApp, journal: Journal) -> None:
        self.app = app
        self.journal = journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = self.journal.record(_entry(scope, role="ws", method="WS"))

        async def journaled_send(message: Message) -> None:
            if message["type"] == "websocket.accept" and entry.status is None:
                entry.status = 101
            elif message["type"] == "websocket.close" and entry.status is None:
                entry.status = 403
            await send(message)

        await self.app(scope, receive, journaled_send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = RequestInfo.of(scope)
        # uvicorn's send is a bound method of the request cycle that owns the transport.
        info.transport = getattr(getattr(send, "__self__", None), "transport", None)
        entry = _entry(
            scope, role=role_of(scope["path"]), method=scope["method"], request_id=info.request_id
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
            entry.fault = info.fault
            entry.body = parse_body(bytes(body)) if len(body) <= MAX_BODY else None
            self.journal.record(entry)

        info.journal_unanswered = lambda: record(None, None)

        async def teeing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) <= MAX_BODY:
                body.extend(message.get("body", b""))
            return message

        async def journaled_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                ids = [v for k, v in message.get("headers", []) if k.lower() == REQUEST_ID]
                record(message["status"], ids[0].decode() if ids else None)
            await send(message)

        try:
            await self.app(scope, teeing_receive, journaled_send)
        finally:
            record(None, info.request_id)

"""The gateway's fault layer: the failures fal's gateway and runners produce, on request."""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from falnb.local.faults import FaultRule, Faults
from falnb.local.gateway._request import (
    HTTPMiddleware,
    RequestInfo,
    respond,
    respond_json,
    role_of,
)
from falnb.local.journal import Role

__all__ = ["FaultMiddleware"]


def _is_sse(role: Role, path: str) -> bool:
    return (role == "queue" and path.rstrip("/").endswith("/status/stream")) or (
        role == "run" and path.rstrip("/").endswith("/stream")
    )


class FaultMiddleware(HTTPMiddleware):
    """Applies the rule that matches a request, or its ``x-falnb-fault`` header.

    The header counts only after auth (a caller without the key must not hold, reset or
    forge answers); the test's own rules also reach public paths (CDN downloads).
    """

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        super().__init__(app)
        self.faults = faults

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = RequestInfo.of(scope)
        path: str = scope["path"]
        role = role_of(path)
        header = Headers(scope=scope).get("x-falnb-fault") if info.authenticated else None
        try:
            rule = self.faults.select(role, scope["method"], path, header)
        except ValueError as exc:
            await respond_json(send, 400, {"detail": f"Invalid x-falnb-fault: {exc}"})
            return
        if rule is not None:
            info.fault = rule.spec
            if await self._apply(rule, info, _is_sse(role, path), receive, send):
                return
        await self.app(scope, receive, _cutting(send, info) if info.cut else send)

    async def _apply(
        self, rule: FaultRule, info: RequestInfo, sse: bool, receive: Receive, send: Send
    ) -> bool:
        """Apply ``rule``; True when it answered (or killed) the request itself."""
        if rule.delay:
            await asyncio.sleep(rule.delay)
        if rule.reset or ((rule.drop or rule.cut) and not sse):
            info.journal_unanswered()
            await _reset(info, send, receive)
            return True
        info.drop = info.drop or rule.drop
        info.cut = info.cut or rule.cut
        if rule.status is None:
            return False
        if rule.ingress and rule.status >= 500:
            info.ingress = True
            await respond(send, rule.status, rule.ingress_body().encode(), b"text/html")
            return True
        headers: list[tuple[bytes, bytes]] = []
        body = rule.error_body()
        if rule.status == 429:
            headers.append((b"retry-after", f"{body['retry_after']:g}".encode()))
        if rule.user_timeout:
            headers.append((b"x-fal-request-timeout-type", b"user"))
        if isinstance(body.get("error_type"), str):
            headers.append((b"x-fal-error-type", body["error_type"].encode()))
        await respond_json(send, rule.status, body, headers)
        return True


def _cutting(send: Send, info: RequestInfo) -> Send:
    """A send that aborts the connection once the first event is out (a stream cut short)."""
    cut = False

    async def cutting_send(message: Message) -> None:
        nonlocal cut
        if cut:
            return  # the connection is gone; the route notices the disconnect and stops
        await send(message)
        if message["type"] == "http.response.body" and message.get("body"):
            cut = info.abort()

    return cutting_send


async def _reset(info: RequestInfo, send: Send, receive: Receive) -> None:
    """Abort the TCP connection with no response (the client sees a protocol/read error)."""
    if not info.abort():
        # Not uvicorn: start a response and end it short, which clients also see as broken.
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]}
        )
        return
    # Wait until the server notices, so it does not log a missing response or answer 500.
    while (await receive())["type"] != "http.disconnect":
        pass

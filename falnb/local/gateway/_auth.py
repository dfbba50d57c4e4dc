"""The gateway's key check: 401 unless the credentials fit the role the path stands for."""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from falnb.local.auth import Auth
from falnb.local.gateway._request import (
    HTTPMiddleware,
    RequestInfo,
    app_alias,
    respond_json,
    role_of,
)

__all__ = ["PUBLIC_PREFIXES", "AuthMiddleware"]

#: Paths anyone may call: health, public file downloads (and uploads that carry their own
#: signature or CDN token, checked by the storage routes), the webhook JWKS.
PUBLIC_PREFIXES = ("/_falnb/health", "/_cdn/", "/_rest/.well-known/")


class AuthMiddleware(HTTPMiddleware):
    """Refuses HTTP requests without valid credentials; WebSockets check their own."""

    def __init__(self, app: ASGIApp, auth: Auth) -> None:
        super().__init__(app)
        self.auth = auth

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        authenticated = self.authenticated(HTTPConnection(scope), path)
        if not authenticated and not path.startswith(PUBLIC_PREFIXES):
            await respond_json(send, 401, {"detail": "Unauthorized"})
            return
        RequestInfo.of(scope).authenticated = authenticated
        await self.app(scope, receive, send)

    def authenticated(self, connection: HTTPConnection, path: str) -> bool:
        """Whether the request carries credentials valid for its role (public paths may not)."""
        role = role_of(path)
        if role in ("run", "queue"):
            return self.auth.app_allowed(connection, app_alias(path))
        if role == "cdn":
            return self.auth.cdn_allowed(connection)
        return self.auth.has_key(connection)

"""The local server's gateway: what fal's edge does before a request reaches an app.

Four small pure ASGI middlewares (``BaseHTTPMiddleware`` would buffer streaming responses),
outermost first, sharing one typed :class:`RequestInfo` per request:

1. :class:`JournalMiddleware` records every request and WebSocket handshake;
2. :class:`RequestIdMiddleware` stamps ``x-fal-request-id`` on answers that carry none
   (routes that know a better id, the queue's request id, set it themselves);
3. :class:`AuthMiddleware` answers 401 unless the credentials fit the path's role
   (:mod:`falnb.local.auth`), public paths aside;
4. :class:`FaultMiddleware` applies fault rules (:mod:`falnb.local.faults`), after auth, so a
   caller without the key can never hold, reset or forge an answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from falnb.local.gateway._auth import AuthMiddleware
from falnb.local.gateway._faults import FaultMiddleware
from falnb.local.gateway._journal import JournalMiddleware
from falnb.local.gateway._request import RequestIdMiddleware, RequestInfo, app_alias, role_of

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from falnb.local.state import ServerState

__all__ = [
    "AuthMiddleware",
    "FaultMiddleware",
    "JournalMiddleware",
    "RequestIdMiddleware",
    "RequestInfo",
    "app_alias",
    "gateway",
    "role_of",
]


def gateway(app: ASGIApp, state: ServerState) -> ASGIApp:
    """``app`` behind the gateway's middlewares, in the order the module docstring gives."""
    app = FaultMiddleware(app, state.faults)
    app = AuthMiddleware(app, state.auth)
    app = RequestIdMiddleware(app)
    return JournalMiddleware(app, state.journal)

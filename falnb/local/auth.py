"""The one place the local server reads credentials from a request.

Every route (gateway, REST, CDN, realtime) asks :class:`Auth`, so the same header means the
same thing everywhere. Accepted forms, scheme case-insensitive and spaces around the value
ignored:

* ``Authorization: Key <server key>`` anywhere;
* ``Authorization: Bearer <token>`` with a token this server minted: an app token (from
  ``/tokens/``, scoped to app aliases) on run, queue and realtime; a CDN token on the CDN;
* ``?fal_jwt_token=<app token>`` on run, queue and realtime (what fal's clients send).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from falnb.local.tokens import TokenStore

__all__ = ["Auth", "Credentials", "parse_authorization"]


@dataclass(frozen=True)
class Credentials:
    """An ``Authorization`` header split into its scheme (lower case) and value."""

    scheme: str
    value: str


def parse_authorization(header: str | None) -> Credentials | None:
    """``"Key  abc "`` -> ``Credentials("key", "abc")``; None when absent or without a value."""
    parts = (header or "").split(None, 1)
    if len(parts) != 2 or not parts[1].strip():
        return None
    return Credentials(parts[0].lower(), parts[1].strip())


class Auth:
    """Checks a request's credentials against one server's key and tokens."""

    def __init__(self, key: str, tokens: TokenStore) -> None:
        self._key = key.encode()
        self._tokens = tokens

    def _credentials(self, connection: HTTPConnection) -> Credentials | None:
        return parse_authorization(connection.headers.get("authorization"))

    def has_key(self, connection: HTTPConnection) -> bool:
        """The server's own key (what may mint tokens and upload URLs)."""
        found = self._credentials(connection)
        return (
            found is not None
            and found.scheme == "key"
            and hmac.compare_digest(found.value.encode(), self._key)
        )

    def _bearer(self, connection: HTTPConnection) -> str | None:
        found = self._credentials(connection)
        return found.value if found is not None and found.scheme == "bearer" else None

    def app_allowed(self, connection: HTTPConnection, alias: str | None) -> bool:
        """The key, or an app token (Bearer or ``fal_jwt_token``) that allows ``alias``."""
        if self.has_key(connection):
            return True
        tokens = (self._bearer(connection), connection.query_params.get("fal_jwt_token"))
        return any(t and self._tokens.check(t, "app", alias) for t in tokens)

    def cdn_allowed(self, connection: HTTPConnection) -> bool:
        """The key, or a Bearer CDN token (what fal's clients upload with)."""
        if self.has_key(connection):
            return True
        token = self._bearer(connection)
        return bool(token and self._tokens.check(token, "cdn"))

"""Short-lived tokens the local server mints: realtime/stream JWT stand-ins and CDN tokens.

Tokens are opaque random strings, as far as fal's clients are concerned (they never decode
them). Each remembers what it allows and when it expires.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

__all__ = ["Token", "TokenStore"]


@dataclass(frozen=True)
class Token:
    value: str
    kind: str  # "app" (realtime / status stream) or "cdn"
    allowed_apps: tuple[str, ...]
    expires_at: float  # time.time()

    def allows(self, alias: str | None) -> bool:
        return alias is None or not self.allowed_apps or alias in self.allowed_apps


class TokenStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, Token] = {}

    def mint(self, kind: str, *, allowed_apps: tuple[str, ...] = (), ttl: float = 120.0) -> Token:
        token = Token(secrets.token_urlsafe(24), kind, allowed_apps, time.time() + ttl)
        with self._lock:
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > time.time()}
            self._tokens[token.value] = token
        return token

    def check(self, value: str, kind: str, alias: str | None = None) -> bool:
        """Whether ``value`` is a live token of ``kind`` that allows ``alias``."""
        with self._lock:
            token = self._tokens.get(value)
        return (
            token is not None
            and token.kind == kind
            and token.expires_at > time.time()
            and token.allows(alias)
        )

    def expire(self, value: str) -> None:
        """Expire a token now (tests use this to exercise token expiry)."""
        with self._lock:
            self._tokens.pop(value, None)

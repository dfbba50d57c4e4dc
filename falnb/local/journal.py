"""The local server's request journal: what came in, what went out, for tests to assert on.

Every HTTP request and WebSocket handshake is recorded once its response starts (or once it
ends without one). Secrets never enter the journal: credential headers (``Authorization``)
are dropped and secret query values (``fal_jwt_token``, upload ``sig``, keys; also inside a
``fal_webhook`` URL) are replaced by ``***``.

Example::

    server.journal.clear()
    httpx.post(f"{server.target.queue_url}/local/echo", json={}, headers=auth)
    assert len(server.journal.accepted_submissions()) == 1
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from falnb.local.bodies import loads_strict

__all__ = ["Journal", "JournalEntry", "Role", "redact_query", "redact_url"]

Role = Literal["run", "queue", "rest", "cdn", "ws", "webhook", "other"]

#: Headers that carry credentials; never journaled.
_SECRET_HEADERS = frozenset(
    {"authorization", "cookie", "proxy-authorization", "x-api-key", "x-fal-key"}
)
#: Query parameters whose values are credentials: tokens, upload signatures (``sig``), keys.
_SECRET_PARAMS = frozenset({"sig", "signature", "key", "api_key", "apikey", "auth", "code"})
_SECRET_WORDS = ("token", "secret", "signature", "password", "credential")
#: Bodies larger than this are not kept (uploads would bloat the journal).
MAX_BODY = 64 * 1024


def _is_secret(name: str) -> bool:
    name = name.lower()
    return name in _SECRET_PARAMS or any(word in name for word in _SECRET_WORDS)


def redact_url(value: str) -> str:
    """A URL (a webhook's, a signed upload's) with its secret query values hidden."""
    parts = urlsplit(value)
    if parts.scheme in ("http", "https", "ws", "wss") and parts.query:
        return urlunsplit(parts._replace(query=redact_query(parts.query)))
    return value


def redact_query(query: str) -> str:
    """``query`` with secret parameter values (tokens, signatures, keys) replaced by ``***``."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "***" if _is_secret(k) else redact_url(v)) for k, v in pairs])


def safe_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Request headers as a dict, minus the ones that carry credentials."""
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if name not in _SECRET_HEADERS:
            out[name] = raw_value.decode("latin-1")
    return out


def carries_credentials(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request sent a credential header (whose value the journal never keeps)."""
    return any(raw_name.decode("latin-1").lower() in _SECRET_HEADERS for raw_name, _ in headers)


def parse_body(raw: bytes) -> Any:
    """The JSON value of a small body, or None (binary, large, empty or not strict JSON)."""
    if not raw or len(raw) > MAX_BODY:
        return None
    try:
        return loads_strict(raw)
    except ValueError:
        return None


@dataclass
class JournalEntry:
    """One request as the server saw it."""

    role: Role
    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    status: int | None = None
    request_id: str | None = None
    fault: str | None = None
    #: Whether it carried a credential header (``Authorization``...): the header is dropped.
    credentials: bool = False
    time: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Journal:
    """A bounded, thread-safe list of :class:`JournalEntry`, oldest first."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[JournalEntry] = deque(maxlen=max_entries)

    def record(self, entry: JournalEntry) -> JournalEntry:
        with self._lock:
            self._entries.append(entry)
        return entry

    def record_event(
        self,
        role: Role,
        method: str,
        path: str,
        *,
        status: int | None = None,
        body: Any = None,
        request_id: str | None = None,
    ) -> JournalEntry:
        """Record something that is not an incoming request (e.g. a webhook delivery)."""
        return self.record(
            JournalEntry(
                role=role,
                method=method,
                path=path,
                body=body,
                status=status,
                request_id=request_id,
            )
        )

    def record_webhook(self, *, url: str, status: int | None, attempt: int) -> JournalEntry:
        """Record one webhook delivery attempt (``status`` None: the receiver was unreachable)."""
        scheme, _, rest = url.partition("://")
        path = "/" + rest.partition("/")[2].partition("?")[0] if scheme else url
        return self.record(
            JournalEntry(
                role="webhook",
                method="POST",
                path=path,
                status=status,
                headers={"x-falnb-attempt": str(attempt)},
            )
        )

    def entries(
        self,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        role: Role | None = None,
        status: int | None = None,
    ) -> list[JournalEntry]:
        """Entries matching every given filter."""
        with self._lock:
            items = list(self._entries)
        return [
            e
            for e in items
            if (method is None or e.method == method.upper())
            and (path_contains is None or path_contains in e.path)
            and (role is None or e.role == role)
            and (status is None or e.status == status)
        ]

    def accepted_submissions(self, endpoint_id: str | None = None) -> list[JournalEntry]:
        """Queue submits the server accepted (200, not faulted): the requests that would be paid."""
        return [
            e
            for e in self.entries(method="POST", role="queue", status=200)
            if "/requests/" not in e.path
            and (e.fault is None or e.fault.startswith("delay"))
            and (endpoint_id is None or e.path.endswith("/" + endpoint_id.strip("/")))
        ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def as_json(self) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._entries)
        return [e.as_dict() for e in items]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

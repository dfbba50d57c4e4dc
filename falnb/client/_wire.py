"""What falnb's own httpx clients put on the wire: each request in one write, and no cookies.

* **One write.** httpcore writes a request's head and its body as separate writes, so each
  reaches the server as its own TCP segment (httpcore sets TCP_NODELAY) and the server wakes
  twice to read one request. Over HTTP/1.1 a client reads after every request it writes, so
  :class:`OneWriteTransport` (the sync front's blocking transport) holds writes until the
  next read and sends them together then. Nothing else changes: a write that fails fails
  in that read, as the ``WriteError`` it is (a request that creates work is not sent again
  after one, as before), and bytes never read for are never sent. A body bigger than
  :data:`HELD_WRITE` (an upload) goes out as it comes, so a request is never copied whole.
  The async front's connections are httpx's own: with its anyio streams wrapped the same
  way, a 1000-job sweep (submit, status stream, result per job on falnb's loop) measured
  15.0-16.5 s of client CPU against 10.7-13.2 s without (benchmarks/bench_sweep.py, single
  noisy runs), for one wake-up fewer on the server.
* **No cookies.** fal's APIs are keyed by the ``Authorization`` header and ask for no cookie
  state; a jar would keep whatever any host a client talks to (the CDN, a signed URL's host,
  a redirect's) sets and send it back on later requests, and httpx's extraction of each
  response's cookies into it was a few percent of a direct run's client CPU.

httpx's transports take no network backend (encode/httpx#3749 would add one), so this builds
its pool again, as httpx builds it, with httpcore's own sockets wrapped: the one httpx
internal relied on is that a transport sends through ``self._pool``. Proxies from the
environment are unaffected (httpx mounts transports of its own for them).
"""

from __future__ import annotations

from collections.abc import Iterable
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

if TYPE_CHECKING:
    import ssl
    from http.cookiejar import Cookie
    from urllib.request import Request

__all__ = ["HELD_WRITE", "NoCookies", "OneWriteTransport"]

#: The most a connection holds back before a read (a request's head and a JSON body fit).
HELD_WRITE = 64 * 1024
#: httpx's default pool limits (``httpx.Client``'s own), spelled out for the pools built here.
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)

Socket = Iterable[httpcore.SOCKET_OPTION] | None


class NoCookies(CookieJar):
    """A cookie jar that keeps nothing (httpx takes any ``CookieJar`` as a client's cookies)."""

    def extract_cookies(self, response: object, request: Request) -> None:  # noqa: ARG002 - jar API
        return None

    def set_cookie(self, cookie: Cookie) -> None:  # noqa: ARG002 - CookieJar's signature
        return None


class _OneWriteStream(httpcore.NetworkStream):
    """A blocking connection that holds its writes and sends them when it next reads."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream
        self._held = bytearray()
        self._timeout: float | None = None

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if len(self._held) + len(buffer) > HELD_WRITE:
            self._flush()
            self._stream.write(buffer, timeout)
        elif buffer:
            self._held += buffer
            self._timeout = timeout

    def _flush(self) -> None:
        if self._held:
            data = bytes(self._held)
            self._held.clear()
            self._stream.write(data, self._timeout)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._flush()
        return self._stream.read(max_bytes, timeout)

    def close(self) -> None:
        self._held.clear()
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        self._flush()
        return _OneWriteStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _OneWriteBackend(httpcore.NetworkBackend):
    """httpcore's blocking sockets, each wrapped in a :class:`_OneWriteStream`."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Socket = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _OneWriteStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Socket = None
    ) -> httpcore.NetworkStream:
        return _OneWriteStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class OneWriteTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connections send each request in one write."""

    def __init__(self) -> None:
        ssl_context = httpx.create_ssl_context()
        super().__init__(verify=ssl_context, limits=_LIMITS)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=_LIMITS.max_connections,
            max_keepalive_connections=_LIMITS.max_keepalive_connections,
            keepalive_expiry=_LIMITS.keepalive_expiry,
            network_backend=_OneWriteBackend(),
        )

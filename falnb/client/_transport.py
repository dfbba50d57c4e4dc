"""HTTP under the protocol: auth header, retries with backoff, errors from responses.

Two transports speak it: :class:`Transport` (an ``httpx.AsyncClient`` on falnb's loop) and
:class:`BlockingTransport` (an ``httpx.Client``, for the sync front's plain requests). They
share how a request is built and every retry decision (:class:`_Attempts`); only their send
loops differ, one awaiting, one blocking, as httpx's own two clients do. Both keep no
cookies, and the blocking one sends each request in one write (:mod:`falnb.client._wire`).

Retry rules (fal-protocol.md section 7.4, plus Retry-After):

* transport errors, and 408 / 409 / 429 / 502 / 503 / 504 are retried with exponential
  backoff and jitter, honouring ``Retry-After`` and a body's ``retry_after``;
* a 504 whose ``x-fal-request-timeout-type`` is ``user`` is never retried;
* a request that creates work (run, submit) is retried only when the server certainly did
  not accept it: a connect failure, 408/409/429, or a 5xx from the ingress (no
  ``x-fal-request-id``). A 5xx that carries a request id, or a connection lost after the body
  was sent, is raised instead, so a paid-for request is never submitted twice.

Waiting on a request the server has accepted is more patient than one call: the wait keeps
reconnecting for ``RetryPolicy.reconnect`` seconds without contact (``$FALNB_RECONNECT_TIMEOUT``,
default two minutes) before it gives up, and gives up without cancelling (see
:func:`settles_request` for which answers end a wait).
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json as jsonlib
import logging
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypedDict, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from falnb import _runtime
from falnb._config import (
    BACKUP_CONNECT_TIMEOUT,
    BACKUP_HOSTS,
    DEFAULT_RECONNECT,
    DOWNLOAD_TIMEOUT,
    MAX_RECONNECT_DELAY,
    RECONNECT_ENV,
    REQUEST_TIMEOUT,
    RETRY_ATTEMPTS,
    RETRY_BASE_DELAY,
    RETRY_MAX_DELAY,
    RETRYABLE_STATUSES,
)
from falnb.client.errors import (
    ConnectionFailedError,
    FalError,
    HTTPError,
    RateLimitedError,
    ValidationError,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from falnb._settings import Target

__all__ = [
    "RECONNECT_ENV",
    "BlockingTransport",
    "RetryPolicy",
    "Transport",
    "connection_failed",
    "download",
    "download_blocking",
    "error_from_response",
    "forget_credentials",
    "redact_url",
    "settles_request",
    "sign_media_with",
    "user_agent",
]

logger = logging.getLogger("falnb.client")


@functools.cache
def user_agent() -> str:
    """falnb's User-Agent, read on the first request: the version's metadata lookup
    (importlib.metadata) would otherwise cost ``import falnb`` a sixth of its time."""
    from falnb._version import __version__

    return f"falnb/{__version__} (python)"


#: Query values that are credentials: tokens, and the signatures of signed URLs (fal's signed
#: media URLs carry ``identity``, the local server's ``sig``).
_SECRET_PARAMS = frozenset({"fal_jwt_token", "token", "sig", "signature", "identity"})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry. ``max_attempts`` counts the first try."""

    max_attempts: int = RETRY_ATTEMPTS
    base_delay: float = RETRY_BASE_DELAY
    max_delay: float = RETRY_MAX_DELAY
    statuses: frozenset[int] = field(default=RETRYABLE_STATUSES)
    reconnect: float | None = None
    """Seconds without contact a wait on an accepted request keeps reconnecting (None:
    ``$FALNB_RECONNECT_TIMEOUT``, else two minutes)."""

    def reconnect_budget(self) -> float:
        """:attr:`reconnect`, else ``$FALNB_RECONNECT_TIMEOUT``, else the default."""
        if self.reconnect is not None:
            return self.reconnect
        raw = os.environ.get(RECONNECT_ENV, "").strip()
        try:
            return max(0.0, float(raw)) if raw else DEFAULT_RECONNECT
        except ValueError:
            logger.warning("ignoring %s=%r: not a number of seconds", RECONNECT_ENV, raw)
            return DEFAULT_RECONNECT

    def reconnect_delay(self, attempt: int) -> float:
        """Seconds before reconnection attempt ``attempt + 1``: backoff, capped short."""
        return min(self.delay(attempt), MAX_RECONNECT_DELAY)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_delay * 4))
        backoff = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
        return float(backoff * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not crypto


NO_RETRY = RetryPolicy(max_attempts=1)


def redact_url(url: str | httpx.URL) -> str:
    """The URL with token-like query values hidden, for messages and logs."""
    parts = urlsplit(str(url))
    if not parts.query:
        return str(url)
    query = [
        (k, "***" if k in _SECRET_PARAMS else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


class _RedactedURLs(logging.Filter):
    """httpx logs every request's URL (INFO): signed-upload and token query values go."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


# httpx has one logger for every client, and no per-client one to hand it: the filter only
# hides the query values _SECRET_PARAMS names, whichever client logs them.
logging.getLogger("httpx").addFilter(_RedactedURLs())


def forget_credentials(*requests: httpx.Request | None) -> None:
    """Blank the ``Authorization`` header of requests that have been sent.

    httpx's errors (and responses) keep their request, headers and all, and users reach them
    through ``.request`` or an exception's ``__cause__``/``__context__``. Once a request has
    gone out (redirects included), its copy of the key serves nothing, so it goes.
    """
    for request in requests:
        if request is not None and "authorization" in request.headers:
            request.headers["authorization"] = "[redacted]"


def _sent_requests(response: httpx.Response) -> list[httpx.Request]:
    return [response.request, *(earlier.request for earlier in response.history)]


def parse_retry_after(response: httpx.Response, body: Any = None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or HTTP date) or a body's ``retry_after``."""
    value = response.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            if when is not None:
                return max(0.0, when.timestamp() - time.time())
    if isinstance(body, dict):
        raw = body.get("retry_after")
        if isinstance(raw, (int, float)):
            return max(0.0, float(raw))
    return None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None


def error_from_response(response: httpx.Response) -> HTTPError:
    """The one error a failed response turns into, with a readable one-line message."""
    body = _json_or_none(response)
    status = response.status_code
    detail: Any = body.get("detail") if isinstance(body, dict) else None
    if detail is None and body is None:
        text = response.text.strip()
        detail = text[:200] if text and "<html" not in text.lower() else None
    error_type = (
        body.get("error_type") if isinstance(body, dict) else None
    ) or response.headers.get("x-fal-error-type")
    request = response.request
    where = f"{request.method} {redact_url(request.url)}"
    reason = response.reason_phrase or "Error"
    kw: dict[str, Any] = {
        "status_code": status,
        "url": redact_url(request.url),
        "detail": detail,
        "error_type": error_type,
        "request_id": response.headers.get("x-fal-request-id"),
        "body": body,
        "headers": {k.lower(): v for k, v in response.headers.items()},
    }
    if status == 422:
        return ValidationError(
            f"422 invalid arguments for {where}: {ValidationError.describe(detail)}", **kw
        )
    if status == 429:
        retry_after = parse_retry_after(response, body)
        hint = f"; retry after {retry_after:g}s" if retry_after is not None else ""
        return RateLimitedError(
            f"429 rate limited by {where}{hint}: too many concurrent requests",
            retry_after=retry_after,
            **kw,
        )
    if status in (401, 403):
        message = (
            f"{status} {reason} from {where}: the key was rejected; check FAL_KEY "
            "(or FAL_KEY_ID/FAL_KEY_SECRET) for this target"
        )
        return HTTPError(message, **kw)
    text = detail if isinstance(detail, str) else (jsonlib.dumps(detail) if detail else reason)
    suffix = f" [{error_type}]" if error_type else ""
    return HTTPError(f"{status} from {where}: {text}{suffix}", **kw)


#: Transport failures that leave the request unsent: safe to send again even when it creates work.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _closed_early(exc: httpx.TransportError) -> bool:
    """Whether ``exc`` says the connection closed after the request went out, before any answer.

    The same event reaches httpx as a reset (``ReadError``, often with no message) or as an
    end of stream (``RemoteProtocolError: Server disconnected ...``), depending on timing.
    """
    if isinstance(exc, (httpx.ReadError, httpx.WriteError)):
        return True
    return isinstance(exc, httpx.RemoteProtocolError) and str(exc).startswith("Server disconnected")


def connection_failed(
    exc: httpx.TransportError, request: httpx.Request, *, creates_work: bool = False
) -> ConnectionFailedError:
    """The one-line error for a transport failure on ``request`` (the URL redacted).

    A connection that closed before its answer reads the same whichever way httpx saw it;
    for a request that creates work it says why it was not sent again.
    """
    where = f"{request.method} {redact_url(request.url)}"
    if _closed_early(exc):
        message = f"the connection closed before {where} was answered"
        if creates_work:
            message += "; not sent again, as the server may have started (and billed) it"
    else:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        message = f"could not reach {where}: {reason}"
    return ConnectionFailedError(message, request=request)


def settles_request(error: BaseException) -> bool:
    """Whether ``error``, met while waiting on an accepted request, is the server's final word.

    Only a definitive answer ends a request for good (a lock entry may then say ``failed``):
    a 4xx about that request, or the app's own recorded failure (a 5xx carrying the request
    id, from its result). Transport failures, gateway errors (5xx without a request id,
    408/409/429) and a rejected key (401/403, about the caller, not the request) settle
    nothing: the request may still be running, or done and paid for.
    """
    from falnb.client.errors import (  # errors imports nothing from here
        RequestCancelledError,
        RequestPendingError,
        RequestTimeoutError,
    )

    if isinstance(error, (RequestCancelledError, RequestTimeoutError)):
        return True
    if isinstance(error, RequestPendingError) or not isinstance(error, HTTPError):
        return False
    status = error.status_code
    if status in (401, 403, 408, 409, 429):
        return False
    if status >= 500:
        return error.request_id is not None
    return True


def _accepted_by_server(response: httpx.Response) -> bool:
    """Whether a 5xx comes from the app or gateway (which may have accepted the request)."""
    return "x-fal-request-id" in response.headers


class RequestParts(TypedDict, total=False):
    """What one HTTP request is made of, as :meth:`Transport.request` and ``stream`` take it
    (the defaults are :meth:`Transport._build`'s)."""

    json: Any
    content: bytes | None
    params: Mapping[str, str] | None
    headers: Mapping[str, str] | None
    #: Whether the key goes along (not to a signed URL, a CDN token's host or a webhook).
    auth: bool
    timeout: httpx.Timeout | float | object | None


HTTP = TypeVar("HTTP", httpx.Client, httpx.AsyncClient)


def _http_options(timeout: httpx.Timeout | float | None) -> dict[str, Any]:
    """How falnb's own httpx clients (async and blocking alike) are configured."""
    # Imported on the first client, as httpx imports httpcore: ``import falnb`` stays light.
    from falnb.client._wire import NoCookies

    return {
        "timeout": timeout if timeout is not None else REQUEST_TIMEOUT,
        "headers": {"User-Agent": user_agent()},
        "follow_redirects": True,
        "cookies": NoCookies(),
    }


class _BaseTransport(Generic[HTTP]):
    """What both transports share: the target and its key, the retry policy, and how a request
    is built and retried. Only sending differs (awaited on falnb's loop, or blocking)."""

    def __init__(self, target: Target, http: HTTP, retry: RetryPolicy | None, owned: bool) -> None:
        self.target = target
        self.retry = retry or RetryPolicy()
        sign_media_with(target)
        self._owns_http = owned
        self._http: HTTP = http

    @property
    def http(self) -> HTTP:
        return self._http

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": self.target.require_key().header()}

    def _build(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        timeout: httpx.Timeout | float | object | None = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Request:
        merged = {**(self.auth_headers() if auth else {}), **(headers or {})}
        extensions = {}
        if timeout is not httpx.USE_CLIENT_DEFAULT:
            extensions["timeout"] = httpx.Timeout(timeout).as_dict()  # type: ignore[arg-type]
        return self._http.build_request(
            method,
            url,
            json=json,
            content=content,
            params=params,
            headers=merged,
            extensions=extensions or None,
        )

    def _attempts(
        self,
        method: str,
        url: str | httpx.URL,
        parts: RequestParts,
        *,
        retry: RetryPolicy | None,
        creates_work: bool,
        final_app_errors: bool = False,
        raise_for_status: bool = True,
    ) -> _Attempts:
        """The retry decisions for one request, which either transport's send loop follows.

        ``creates_work`` marks run/submit: those are retried only when the server certainly
        did not accept them. ``final_app_errors`` marks reads whose 5xx with a request id is
        the app's own recorded answer (a queue result replays it), so retrying cannot change it.
        """
        return _Attempts(
            functools.partial(self._build, method, url, **parts),
            retry or self.retry,
            creates_work=creates_work,
            final_app_errors=final_app_errors,
            raise_for_status=raise_for_status,
        )


class Transport(_BaseTransport[httpx.AsyncClient]):
    """An ``httpx.AsyncClient`` that knows fal's auth and retry rules (on falnb's loop).

    Pass ``http`` to inject a client (e.g. one with a custom transport) in tests.
    """

    def __init__(
        self,
        target: Target,
        *,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float | None = None,
    ) -> None:
        own = http or httpx.AsyncClient(**_http_options(timeout))
        super().__init__(target, own, retry, owned=http is None)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        creates_work: bool = False,
        retry: RetryPolicy | None = None,
        raise_for_status: bool = True,
        final_app_errors: bool = False,
        **parts: Unpack[RequestParts],
    ) -> httpx.Response:
        """Send with retries; return the 2xx response or raise the matching ``HTTPError``
        (``creates_work``, ``final_app_errors``: see :meth:`_attempts`)."""
        attempts = self._attempts(
            method,
            url,
            parts,
            retry=retry,
            creates_work=creates_work,
            final_app_errors=final_app_errors,
            raise_for_status=raise_for_status,
        )
        return await _send(self._http, attempts, stream=False)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        creates_work: bool = False,
        retry: RetryPolicy | None = None,
        **parts: Unpack[RequestParts],
    ) -> AsyncIterator[httpx.Response]:
        """Open a streaming response (SSE) with the same retry rules for opening it.

        Errors are raised before any body is read, from the status and the JSON error body.
        """
        attempts = self._attempts(method, url, parts, retry=retry, creates_work=creates_work)
        response = await _send(self._http, attempts, stream=True)
        try:
            yield response
        finally:
            await response.aclose()


class BlockingTransport(_BaseTransport[httpx.Client]):
    """:class:`Transport`'s twin for the sync front: an ``httpx.Client`` used from the calling
    thread (any thread: its pool is thread-safe), with the same requests, retries and errors."""

    def __init__(
        self,
        target: Target,
        *,
        http: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float | None = None,
    ) -> None:
        from falnb.client._wire import OneWriteTransport  # see _http_options

        own = http or httpx.Client(transport=OneWriteTransport(), **_http_options(timeout))
        super().__init__(target, own, retry, owned=http is None)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        creates_work: bool = False,
        retry: RetryPolicy | None = None,
        raise_for_status: bool = True,
        final_app_errors: bool = False,
        **parts: Unpack[RequestParts],
    ) -> httpx.Response:
        """:meth:`Transport.request`, blocking."""
        attempts = self._attempts(
            method,
            url,
            parts,
            retry=retry,
            creates_work=creates_work,
            final_app_errors=final_app_errors,
            raise_for_status=raise_for_status,
        )
        return _send_blocking(self._http, attempts, stream=False)


class _Attempts:
    """One request's retry decisions (the module doc's rules): the one home of the policy.

    Each transport's send loop (:func:`_send`, :func:`_send_blocking`) only does the I/O and
    asks this what each outcome means: the answer to return, a delay before trying again, or
    the error to raise.
    """

    def __init__(
        self,
        build: Callable[[], httpx.Request],
        policy: RetryPolicy,
        *,
        creates_work: bool,
        final_app_errors: bool = False,
        raise_for_status: bool = True,
    ) -> None:
        self.build = build
        self.policy = policy
        self.creates_work = creates_work
        self.final_app_errors = final_app_errors
        self.raise_for_status = raise_for_status
        self.attempt = 0

    def next_request(self) -> httpx.Request:
        """The next try's request, built afresh (its key header is blanked once sent)."""
        self.attempt += 1
        return self.build()

    def failed(self, exc: httpx.HTTPError, request: httpx.Request) -> float:
        """The delay before trying again after ``exc``; raises what ends the request."""
        forget_credentials(request, getattr(exc, "_request", None))
        if not isinstance(exc, httpx.TransportError):
            raise exc
        if self.attempt >= self.policy.max_attempts or not _may_retry_exception(
            exc, request, creates_work=self.creates_work
        ):
            raise connection_failed(exc, request, creates_work=self.creates_work) from exc
        return self._delay(None, f"{type(exc).__name__} on {request.method}")

    def answered(self, response: httpx.Response) -> bool:
        """Whether to return ``response``; if not, read its body, then ask :meth:`refused`."""
        # The request went out as ``response.request`` (or the first of its redirects).
        forget_credentials(*_sent_requests(response))
        return response.is_success or not self.raise_for_status

    def refused(self, response: httpx.Response) -> float:
        """The delay before trying again after a read error answer; raises it when final."""
        error = error_from_response(response)
        if self.attempt >= self.policy.max_attempts or not _may_retry_status(
            response, self.policy, creates_work=self.creates_work or self.final_app_errors
        ):
            raise error
        retry_after = parse_retry_after(response, error.body)
        return self._delay(retry_after, f"{response.status_code} on {response.request.method}")

    def _delay(self, retry_after: float | None, why: str) -> float:
        delay = self.policy.delay(self.attempt, retry_after)
        logger.debug("retrying after %.2fs (%s, attempt %d)", delay, why, self.attempt)
        return delay


async def _send(http: httpx.AsyncClient, attempts: _Attempts, *, stream: bool) -> httpx.Response:
    """falnb's retry loop on its event loop: every awaited request to fal (and every output
    download) goes here."""
    while True:
        request = attempts.next_request()
        try:
            response = await _send_or_backup(http, request, stream=stream)
        except httpx.HTTPError as exc:
            delay = attempts.failed(exc, request)
        else:
            if attempts.answered(response):
                return response
            try:
                await response.aread()
            finally:
                await response.aclose()
            delay = attempts.refused(response)
        await asyncio.sleep(delay)


def _send_blocking(http: httpx.Client, attempts: _Attempts, *, stream: bool) -> httpx.Response:
    """:func:`_send`'s twin for the blocking transport: the same loop, blocking I/O."""
    while True:
        request = attempts.next_request()
        try:
            response = _send_or_backup_blocking(http, request, stream=stream)
        except httpx.HTTPError as exc:
            delay = attempts.failed(exc, request)
        else:
            if attempts.answered(response):
                return response
            try:
                response.read()
            finally:
                response.close()
            delay = attempts.refused(response)
        time.sleep(delay)


async def _send_or_backup(
    http: httpx.AsyncClient, request: httpx.Request, *, stream: bool
) -> httpx.Response:
    """Send ``request``; if its host has a backup (fal.run's falrun.com) and cannot be
    connected to, send it there instead. Safe for run and submit alike: a request that never
    connected was never sent."""
    backup = _backup_of(request)
    if backup is None:
        return await http.send(request, stream=stream)
    try:
        return await http.send(request, stream=stream)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        _move_to_backup(request, backup, exc)
        return await http.send(request, stream=stream)


def _send_or_backup_blocking(
    http: httpx.Client, request: httpx.Request, *, stream: bool
) -> httpx.Response:
    """:func:`_send_or_backup`'s blocking twin."""
    backup = _backup_of(request)
    if backup is None:
        return http.send(request, stream=stream)
    try:
        return http.send(request, stream=stream)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        _move_to_backup(request, backup, exc)
        return http.send(request, stream=stream)


def _backup_of(request: httpx.Request) -> str | None:
    """The backup host of ``request``'s host, if it has one (then connecting is capped short)."""
    # raw_host: fal's hosts are ASCII, and ``url.host`` IDNA-decodes on every request.
    backup = BACKUP_HOSTS.get(request.url.raw_host.decode("ascii", "replace"))
    if backup is not None:
        _cap_connect_timeout(request)
    return backup


def _move_to_backup(request: httpx.Request, backup: str, exc: httpx.TransportError) -> None:
    logger.info(
        "could not connect to %s (%s); trying its backup domain %s",
        request.url.host,
        type(exc).__name__,
        backup,
    )
    request.url = request.url.copy_with(host=backup)
    request.headers["Host"] = request.url.netloc.decode("ascii")
    _cap_connect_timeout(request)


def _cap_connect_timeout(request: httpx.Request) -> None:
    """At most :data:`BACKUP_CONNECT_TIMEOUT` to connect (None, no limit, included)."""
    timeouts = dict(request.extensions.get("timeout") or {})
    connect = timeouts.get("connect")
    timeouts["connect"] = (
        BACKUP_CONNECT_TIMEOUT if connect is None else min(connect, BACKUP_CONNECT_TIMEOUT)
    )
    request.extensions["timeout"] = timeouts


def _may_retry_exception(
    exc: httpx.TransportError, request: httpx.Request, *, creates_work: bool
) -> bool:
    if isinstance(exc, httpx.TimeoutException) and "x-fal-request-timeout" in request.headers:
        return False
    if creates_work:
        # Only failures before the request reached the server are safe to repeat.
        return isinstance(exc, _NOT_SENT)
    return True


def _may_retry_status(response: httpx.Response, policy: RetryPolicy, *, creates_work: bool) -> bool:
    status = response.status_code
    if status not in policy.statuses:
        return False
    if status == 504 and response.headers.get("x-fal-request-timeout-type") == "user":
        return False
    return not (creates_work and status >= 500 and _accepted_by_server(response))


DOWNLOAD_STATUSES = RETRYABLE_STATUSES | {500}
#: A media file's answers that may mean "restricted" (fal's ACL ``forbid``; ``hide`` hides
#: the file, so 404): worth asking for a signed URL when a key is at hand.
RESTRICTED_STATUSES = frozenset({401, 403, 404})
#: How long a signed download URL is asked to live: long enough to fetch one file.
SIGNED_URL_TTL = 600
#: The targets whose keys may sign their CDN's restricted files, by CDN (newest wins).
_media_signers: dict[tuple[str, str], Target] = {}
#: The download pools: the async one with the loop it belongs to (a pool cannot cross event
#: loops), and the blocking one (thread-safe, shared by every thread).
_downloads: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None
_blocking_downloads: httpx.Client | None = None
_blocking_downloads_lock = threading.Lock()


def sign_media_with(target: Target) -> None:
    """Let downloads of ``target``'s media ask it for signed URLs (each client's transport
    registers its target: the download path itself knows only the URL)."""
    _media_signers[(target.name, target.cdn_url)] = target


def _signer_for(error: HTTPError, url: str) -> Target | None:
    """The target that may sign ``url``, when ``error`` may mean the file is restricted."""
    if error.status_code not in RESTRICTED_STATUSES:
        return None
    for target in reversed(list(_media_signers.values())):
        if target.key is not None and target.serves_media(url):
            return target
    return None


class _Download:
    """One output file's download, as both download loops make it: its GET, and the signing
    request (``POST /storage/files/sign`` on the signer's Platform API) that a restricted file
    needs. The signed URL is used for one GET and never kept."""

    def __init__(self, http: httpx.Client | httpx.AsyncClient, retry: RetryPolicy | None) -> None:
        self.http = http
        self.policy = retry or RetryPolicy(statuses=DOWNLOAD_STATUSES)

    def get(self, url: str) -> _Attempts:
        return _Attempts(
            lambda: self.http.build_request("GET", url), self.policy, creates_work=False
        )

    def sign(self, target: Target, url: str) -> _Attempts:
        key = target.require_key()
        return _Attempts(
            lambda: self.http.build_request(
                "POST",
                f"{target.platform_url}/storage/files/sign",
                params={"url": url},
                json={"expiration_seconds": SIGNED_URL_TTL},
                headers={"Authorization": key.header(), "Accept": "application/json"},
            ),
            self.policy,
            creates_work=False,
        )

    @staticmethod
    def signed_url(response: httpx.Response, url: str) -> str:
        body = _json_or_none(response)
        signed = body.get("signed_url") if isinstance(body, dict) else None
        if not isinstance(signed, str) or not signed.startswith(("https://", "http://")):
            raise FalError(f"the storage API answered no signed URL for {redact_url(url)}")
        logger.debug("%s is restricted; fetching it by signed URL", redact_url(url))
        return signed


async def download(url: str, *, retry: RetryPolicy | None = None) -> httpx.Response:
    """GET an output file (fal.media, the local server's ``/_cdn``) with falnb's retries.

    No key is sent to the CDN: media URLs are public unless the account restricts them. A
    restricted file (401/403, or 404 for a hidden one) is fetched once more through a signed
    URL that the file's target (a client with a key for that CDN) asks fal's storage API for.
    A download repeats nothing paid for, so transport errors and 408/409/429/500/502/503/504
    are retried. Downloads on one event loop (falnb's) share one connection pool.
    """
    global _downloads  # noqa: PLW0603 - one pool per loop
    loop = asyncio.get_running_loop()
    if _downloads is None or _downloads[0] is not loop:
        _downloads = (loop, httpx.AsyncClient(**_http_options(DOWNLOAD_TIMEOUT)))
    http = _downloads[1]
    plan = _Download(http, retry)
    try:
        return await _send(http, plan.get(url), stream=False)
    except HTTPError as exc:
        signer = _signer_for(exc, url)
        if signer is None:
            raise
        try:
            signed = plan.signed_url(await _send(http, plan.sign(signer, url), stream=False), url)
        except FalError:
            raise exc from None  # not a file the key may read: the CDN's answer stands
        return await _send(http, plan.get(signed), stream=False)


def download_blocking(url: str, *, retry: RetryPolicy | None = None) -> httpx.Response:
    """:func:`download` for blocking callers: from the calling thread (one pool shared by
    every thread) when :func:`falnb._runtime.may_block`, else waiting on falnb's loop."""
    global _blocking_downloads  # noqa: PLW0603 - one pool per process
    if not _runtime.may_block():
        return _runtime.run(download(url, retry=retry))
    with _blocking_downloads_lock:
        if _blocking_downloads is None:
            _blocking_downloads = httpx.Client(**_http_options(DOWNLOAD_TIMEOUT))
        http = _blocking_downloads
    plan = _Download(http, retry)
    try:
        return _send_blocking(http, plan.get(url), stream=False)
    except HTTPError as exc:
        signer = _signer_for(exc, url)
        if signer is None:
            raise
        try:
            signed = plan.signed_url(
                _send_blocking(http, plan.sign(signer, url), stream=False), url
            )
        except FalError:
            raise exc from None  # not a file the key may read: the CDN's answer stands
        return _send_blocking(http, plan.get(signed), stream=False)

"""REST and CDN routes of the local server: tokens, uploads, and public file downloads.

REST (mounted at ``/_rest``, fal's ``rest.fal.ai``):

* ``POST /tokens/``: a short-lived app token (realtime, client-mode streams), as a JSON string;
* ``POST /storage/auth/token``: a CDN token for ``/files/upload``;
* ``POST /storage/upload/initiate`` and ``/initiate-multipart``: signed upload URLs;
* ``POST /v1/storage/files/sign?url=...`` (fal's Platform API, ``api.fal.ai/v1``): a signed
  download URL for a restricted file, ``{"signed_url": ...}``;
* ``GET/PUT /v1/storage/settings``: the account-wide lifecycle of files stored without one;
* ``GET /.well-known/jwks.json``: the webhook signing key.

Uploads (and app outputs, via the request's header) take a lifecycle from
``X-Fal-Object-Lifecycle-Preference`` or ``X-Fal-Object-Lifecycle``: an expiry, and an
``initial_acl`` default; a file whose ACL is ``forbid`` answers 403 to a GET without a valid
signature, ``hide`` 404.

CDN (mounted at ``/_cdn``, fal's ``v3.fal.media``):

* ``POST /files/upload`` (Bearer CDN token) and the CDN multipart flow;
* ``PUT /files/{id}/{name}?expires=..&sig=..``: a signed upload (the JS client sends no key);
* ``GET /files/{id}/{name}``: public by unguessable id, unless restricted (then signed).

These routes check their own credentials (Key, CDN token or URL signature), so the server's
auth middleware must let ``/_cdn/...`` and ``/_rest/.well-known/...`` through; see
:data:`SELF_AUTHENTICATED_PREFIXES`.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import math
import re
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from falnb._protocol import LIFECYCLE_HEADERS
from falnb.local.bodies import BodyTooLargeError, loads_strict, read_limited
from falnb.local.files import Lifecycle, StoredFile, valid_id

if TYPE_CHECKING:
    from falnb.local.state import ServerState

__all__ = [
    "SELF_AUTHENTICATED_PREFIXES",
    "UploadSigner",
    "cdn_routes",
    "lifecycle_of",
    "rest_routes",
    "storage_api_routes",
]

#: Paths (under the server root) whose routes authenticate requests themselves.
SELF_AUTHENTICATED_PREFIXES = ("/_cdn/", "/_rest/.well-known/")

CDN_TOKEN_TTL = 3600.0
SIGNED_URL_TTL = 900
MAX_APP_TOKEN_TTL = 24 * 3600
MAX_UPLOAD_BYTES = 1 << 30
#: fal's bounds on a signed download URL's lifetime (``expiration_seconds``).
MAX_SIGNED_TTL = 7 * 24 * 3600


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _unauthorized() -> JSONResponse:
    return _error(401, "Unauthorized")


async def _json_object(request: Request, limit: int) -> dict[str, Any] | None:
    """The JSON object of a REST body; None when it is too large or not a strict JSON object."""
    try:
        raw = await read_limited(request, limit)
        value = loads_strict(raw) if raw.strip() else {}
    except ValueError:  # BodyTooLargeError, InvalidJSONError
        return None
    return value if isinstance(value, dict) else None


def lifecycle_of(headers: Any, fallback: Lifecycle) -> Lifecycle:
    """The lifecycle a request's headers ask for (``fallback`` without one).

    Raises ValueError with a readable reason for a header that is not a valid preference.
    """
    for name in LIFECYCLE_HEADERS:
        raw = headers.get(name)
        if raw:
            try:
                value = loads_strict(raw.encode())
            except ValueError:
                raise ValueError(f"{name} must be JSON") from None
            try:
                return Lifecycle.from_json(value, fallback)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
    return fallback


class UploadSigner:
    """HMAC signatures over a subject (path) and an expiry, keyed by a secret derived from the
    server key: signed upload URLs, and signed download URLs of restricted files."""

    def __init__(self, server_key: str) -> None:
        self._secret = hashlib.sha256(b"falnb-upload-url\0" + server_key.encode()).digest()

    def _mac(self, subject: str, expires: int) -> str:
        message = f"{subject}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def query(self, subject: str, ttl: int = SIGNED_URL_TTL) -> str:
        # Rounded up: a URL signed for ttl seconds works for at least ttl seconds (rounding
        # down left a 1 s signature anywhere between 0 and 1 s).
        expires = math.ceil(time.time() + ttl)
        return urlencode({"expires": expires, "sig": self._mac(subject, expires)})

    def check(self, subject: str, request: Request) -> bool:
        try:
            expires = int(request.query_params.get("expires", ""))
        except ValueError:
            return False
        given = request.query_params.get("sig", "")
        return expires >= time.time() and hmac.compare_digest(given, self._mac(subject, expires))


def _signer(state: ServerState) -> UploadSigner:
    return UploadSigner(state.key)


def _file_subject(stored: StoredFile) -> str:
    return f"put:{stored.file_id}/{stored.file_name}"


def _read_subject(file_id: str, name: str) -> str:
    return f"get:{file_id}/{name}"


def _part_answer(request: Request, number: int, etag: str) -> Response:
    """A stored part: the Python client reads the ETag header, the JS client the JSON body.

    As fal's CDN, a compressed answer loses its ETag header, which is why fal-client asks
    for ``Accept-Encoding: identity`` on part PUTs.
    """
    body = {"partNumber": number, "etag": etag}
    if _accepts_compression(request):
        packed = gzip.compress(json.dumps(body).encode())
        return Response(packed, media_type="application/json", headers={"Content-Encoding": "gzip"})
    return JSONResponse(body, headers={"ETag": etag})


def _accepts_compression(request: Request) -> bool:
    """Whether ``Accept-Encoding`` allows a coding other than identity (q above 0)."""
    for item in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = item.strip().partition(";")
        q = params.strip().removeprefix("q=").strip() if params.strip().startswith("q=") else "1"
        try:
            weight = float(q)
        except ValueError:
            weight = 0.0
        if coding.strip().lower() not in ("", "identity") and weight > 0:
            return True
    return False


def _multipart_subject(file_id: str, name: str, upload_id: str) -> str:
    return f"multipart:{file_id}/{name}/{upload_id}"


def rest_routes(state: ServerState) -> list[BaseRoute]:
    """Routes relative to the REST root (the server mounts them at ``/_rest``)."""

    async def tokens(request: Request) -> Response:
        if not state.auth.has_key(request):
            return _unauthorized()
        body = await _json_object(request, state.max_body_bytes)
        if body is None:
            return _error(422, "body must be a JSON object")
        apps = body.get("allowed_apps", [])
        ttl = body.get("token_expiration", 120)
        if not isinstance(apps, list) or not all(isinstance(a, str) and a for a in apps):
            return _error(422, "allowed_apps must be a list of app aliases")
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_APP_TOKEN_TTL:
            return _error(422, f"token_expiration must be an integer in 1..{MAX_APP_TOKEN_TTL}")
        token = state.tokens.mint("app", allowed_apps=tuple(apps), ttl=float(ttl))
        # fal answers with a bare JSON string, which both official clients expect.
        return JSONResponse(token.value)

    async def cdn_token(request: Request) -> Response:
        if not state.auth.has_key(request):
            return _unauthorized()
        token = state.tokens.mint("cdn", ttl=CDN_TOKEN_TTL)
        expires = datetime.fromtimestamp(token.expires_at, tz=timezone.utc)
        return JSONResponse(
            {
                "token": token.value,
                "token_type": "Bearer",
                "base_url": state.cdn_url,
                # Python's fal-client parses this with fromisoformat: an offset, never "Z".
                "expires_at": expires.isoformat(),
            }
        )

    async def _reserve(request: Request) -> StoredFile | Response:
        if not state.auth.has_key(request):
            return _unauthorized()
        body = await _json_object(request, state.max_body_bytes)
        if body is None:
            return _error(422, "body must be a JSON object")
        content_type = body.get("content_type") or "application/octet-stream"
        file_name = body.get("file_name")
        if not isinstance(content_type, str) or not isinstance(file_name, (str, type(None))):
            return _error(422, "file_name and content_type must be strings")
        lifecycle = _lifecycle_or_422(request, state)
        if isinstance(lifecycle, Response):
            return lifecycle
        return state.files.reserve(content_type, file_name, lifecycle)

    async def initiate(request: Request) -> Response:
        stored = await _reserve(request)
        if isinstance(stored, Response):
            return stored
        file_url = stored.url(state.cdn_url)
        query = _signer(state).query(_file_subject(stored))
        return JSONResponse({"upload_url": f"{file_url}?{query}", "file_url": file_url})

    async def initiate_multipart(request: Request) -> Response:
        stored = await _reserve(request)
        if isinstance(stored, Response):
            return stored
        upload_id = state.files.begin_multipart(stored.file_id, stored.file_name)
        if upload_id is None:  # pragma: no cover - the entry was just created
            return _error(500, "could not start the upload")
        file_url = stored.url(state.cdn_url)
        subject = _multipart_subject(stored.file_id, stored.file_name, upload_id)
        query = _signer(state).query(subject, ttl=4 * SIGNED_URL_TTL)
        upload_url = f"{file_url}/multipart/{upload_id}?{query}"
        return JSONResponse({"upload_url": upload_url, "file_url": file_url})

    async def jwks(_: Request) -> Response:
        return JSONResponse(state.signer.jwks(), headers={"Cache-Control": "max-age=86400"})

    return [
        Route("/tokens/", tokens, methods=["POST"]),
        Route("/tokens", tokens, methods=["POST"]),
        Route("/storage/auth/token", cdn_token, methods=["POST"]),
        Route("/storage/upload/initiate", initiate, methods=["POST"]),
        Route("/storage/upload/initiate-multipart", initiate_multipart, methods=["POST"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    ]


def storage_api_routes(state: ServerState) -> list[BaseRoute]:
    """fal's Platform API storage routes, relative to the REST root (``/_rest/v1/...``)."""

    async def sign(request: Request) -> Response:
        if not state.auth.has_key(request):
            return _unauthorized()
        body = await _json_object(request, state.max_body_bytes)
        ttl = body.get("expiration_seconds") if body is not None else None
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_SIGNED_TTL:
            return _error(422, f"expiration_seconds must be an integer in 1..{MAX_SIGNED_TTL}")
        url = request.query_params.get("url", "")
        prefix = f"{state.cdn_url}/files/"
        file_id, _, name = url.removeprefix(prefix).partition("/")
        if not url.startswith(prefix) or "?" in url:
            return _error(422, "url must be a file URL of this server's CDN, without a query")
        if state.files.get(file_id, name) is None:
            return _error(404, "Not Found")
        query = _signer(state).query(_read_subject(file_id, name), ttl=ttl)
        return JSONResponse({"signed_url": f"{url}?{query}"})

    async def settings(request: Request) -> Response:
        if not state.auth.has_key(request):
            return _unauthorized()
        if request.method == "PUT":
            body = await _json_object(request, state.max_body_bytes)
            try:
                # fal: omitted or null fields are cleared, so the fallback is the plain default.
                state.files.defaults = Lifecycle.from_json(body, Lifecycle())
            except ValueError as exc:
                return _error(422, str(exc))
        defaults = state.files.defaults
        return JSONResponse(
            {
                "expiration_duration_seconds": defaults.expires_in,
                "initial_acl": None if defaults.acl == "allow" else {"default": defaults.acl},
            }
        )

    return [
        Route("/v1/storage/files/sign", sign, methods=["POST"]),
        Route("/v1/storage/settings", settings, methods=["GET", "PUT"]),
    ]


def _lifecycle_or_422(request: Request, state: ServerState) -> Lifecycle | JSONResponse:
    try:
        return lifecycle_of(request.headers, state.files.defaults)
    except ValueError as exc:
        return _error(422, str(exc))


async def _read_body(request: Request) -> bytes | None:
    """The request body, or None when it is larger than the store accepts."""
    try:
        return await read_limited(request, MAX_UPLOAD_BYTES)
    except BodyTooLargeError:
        return None


def _too_large() -> JSONResponse:
    return _error(413, f"uploads are limited to {MAX_UPLOAD_BYTES} bytes")


#: Uploads are anyone's bytes served from the server's own origin: the browser must never
#: sniff them into HTML or run script from them (a sandboxed CSP if it tries).
_DOWNLOAD_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox",
}
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
#: Types a browser shows inline without running script; anything else (HTML, SVG, XML,
#: PDF, ...) is served as an attachment.
_INLINE_PREFIXES = ("audio/", "video/")
_INLINE_IMAGES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"}
)


def _served_type(content_type: str) -> tuple[str, bool]:
    """The Content-Type to serve an upload with, and whether it may be shown inline."""
    media_type = content_type.partition(";")[0].strip().lower()
    if not _MEDIA_TYPE.fullmatch(media_type):
        return "application/octet-stream", False
    return media_type, media_type in _INLINE_IMAGES or media_type.startswith(_INLINE_PREFIXES)


def _file_response(stored: StoredFile) -> FileResponse:
    media_type, inline = _served_type(stored.content_type)
    # FileResponse answers HEAD and single Range requests itself.
    return FileResponse(
        stored.path,
        media_type=media_type,
        headers=_DOWNLOAD_HEADERS,
        filename=None if inline else stored.file_name,
        content_disposition_type="attachment",
    )


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").strip() or "application/octet-stream"


def _download(state: ServerState, request: Request) -> Response:
    """A stored file: anyone's by its unguessable URL, a restricted one only when signed."""
    p = request.path_params
    file_id, name = p["file_id"], p["name"]
    stored = state.files.get(file_id, name) if valid_id(file_id) else None
    if stored is None:
        return _error(404, "Not Found")
    if stored.restricted and not _signer(state).check(_read_subject(file_id, name), request):
        # "hide" denies the file exists; "forbid" says it is there and not for you.
        return _error(404, "Not Found") if stored.acl == "hide" else _error(403, "Forbidden")
    return _file_response(stored)


def cdn_routes(state: ServerState) -> list[BaseRoute]:
    """Routes relative to the CDN root (the server mounts them at ``/_cdn``)."""

    async def upload(request: Request) -> Response:
        if not state.auth.cdn_allowed(request):
            return _unauthorized()
        data = await _read_body(request)
        if data is None:
            return _too_large()
        name = request.headers.get("x-fal-file-name")
        lifecycle = _lifecycle_or_422(request, state)
        if isinstance(lifecycle, Response):
            return lifecycle
        stored = state.files.put(data, _content_type(request), name, lifecycle)
        return JSONResponse({"access_url": stored.url(state.cdn_url)})

    async def multipart_create(request: Request) -> Response:
        if not state.auth.cdn_allowed(request):
            return _unauthorized()
        name = request.headers.get("x-fal-file-name")
        lifecycle = _lifecycle_or_422(request, state)
        if isinstance(lifecycle, Response):
            return lifecycle
        stored = state.files.reserve(_content_type(request), name, lifecycle)
        upload_id = state.files.begin_multipart(stored.file_id, stored.file_name)
        return JSONResponse({"access_url": stored.url(state.cdn_url), "uploadId": upload_id})

    def _multipart_allowed(request: Request) -> bool:
        p = request.path_params
        subject = _multipart_subject(p["file_id"], p["name"], p["upload_id"])
        return state.auth.cdn_allowed(request) or _signer(state).check(subject, request)

    async def multipart_part(request: Request) -> Response:
        if not _multipart_allowed(request):
            return _unauthorized()
        p = request.path_params
        data = await _read_body(request)
        if data is None:
            return _too_large()
        number: int = p["part"]
        etag = state.files.put_part(p["file_id"], p["name"], p["upload_id"], number, data)
        if etag is None:
            return _error(404, "Unknown upload or part number")
        return _part_answer(request, number, etag)

    async def multipart_complete(request: Request) -> Response:
        if not _multipart_allowed(request):
            return _unauthorized()
        p = request.path_params
        body = await _json_object(request, state.max_body_bytes)
        parts = body.get("parts") if body else None
        if not isinstance(parts, list) or not parts:
            return _error(422, "parts must be a non-empty list of {partNumber, etag}")
        try:
            listed = [(int(part["partNumber"]), str(part["etag"])) for part in parts]
        except (KeyError, TypeError, ValueError):
            return _error(422, "each part needs an integer partNumber and an etag")
        stored = state.files.complete_multipart(p["file_id"], p["name"], p["upload_id"], listed)
        if stored is None:
            return _error(400, "Unknown upload, or a part is missing or its etag differs")
        url = stored.url(state.cdn_url)
        return JSONResponse({"access_url": url, "file_url": url})

    async def signed_put(request: Request) -> Response:
        p = request.path_params
        stored = state.files.get(p["file_id"], p["name"], include_pending=True)
        if stored is None:
            return _error(404, "Not Found")
        if not _signer(state).check(_file_subject(stored), request):
            return _error(403, "Invalid or expired upload signature")
        data = await _read_body(request)
        if data is None:
            return _too_large()
        state.files.fill(
            stored.file_id, stored.file_name, data, request.headers.get("content-type")
        )
        return JSONResponse({"file_url": stored.url(state.cdn_url)})

    async def download(request: Request) -> Response:
        return _download(state, request)

    file_path = "/files/{file_id}/{name}"
    part_path = file_path + "/multipart/{upload_id}"
    return [
        Route("/files/upload", upload, methods=["POST"]),
        Route("/files/upload/multipart", multipart_create, methods=["POST"]),
        Route(part_path + "/{part:int}", multipart_part, methods=["PUT"]),
        Route(part_path + "/complete", multipart_complete, methods=["POST"]),
        Route(file_path, download, methods=["GET", "HEAD"]),
        Route(file_path, signed_put, methods=["PUT"]),
    ]

"""Uploads to fal's storage, and automatic upload of local files found in arguments.

``upload`` follows fal's Python client (fal-protocol.md section 6.1): a short-lived CDN token
from REST (cached until it expires), then ``POST {cdn_url}/files/upload``; if that fails, the
REST ``initiate`` + signed ``PUT`` path. Large data goes in parts (multipart) on either path.
Small data can instead be inlined as a ``data:`` URI, which fal endpoints accept wherever a
URL is expected.

Example::

    url = await upload(transport, b"...", "image/png", "cat.png")
    arguments = await upload_inputs(transport, {"image_url": Path("cat.png")})
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import mimetypes
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx

from falnb._values import data_uri, is_pil_image
from falnb.client._transport import Transport
from falnb.client.errors import FalError
from falnb.client.lifecycle import StorageSettings, lifecycle_headers

if TYPE_CHECKING:
    from PIL.Image import Image

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup  # anyio's own dependency before 3.11

T = TypeVar("T")

__all__ = [
    "MULTIPART_CHUNK_SIZE",
    "MULTIPART_THRESHOLD",
    "encode",
    "encode_file",
    "encode_image",
    "has_uploads",
    "upload",
    "upload_file",
    "upload_image",
    "upload_inputs",
]

logger = logging.getLogger("falnb.client")

#: Data larger than this is uploaded in parts (fal's Python client uses 100 MiB).
MULTIPART_THRESHOLD = 100 * 1024 * 1024
MULTIPART_CHUNK_SIZE = 10 * 1024 * 1024
MULTIPART_MAX_CONCURRENCY = 10
DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: Renew a cached CDN token this many seconds before it expires.
TOKEN_MARGIN = 60.0


def _guess_type(file_name: str | None) -> str:
    if file_name:
        guessed, _ = mimetypes.guess_type(file_name)
        if guessed:
            return guessed
    return DEFAULT_CONTENT_TYPE


def _default_name(content_type: str) -> str:
    return "upload" + (mimetypes.guess_extension(content_type) or ".bin")


# Inline data URIs


def encode(data: bytes, content_type: str | None = None) -> str:
    """``data:<content_type>;base64,<data>``: an inline URL that needs no upload."""
    return data_uri(data, content_type or DEFAULT_CONTENT_TYPE)


def encode_file(path: str | PurePath) -> str:
    """A file's bytes as a data URI, with its content type guessed from the name."""
    file = Path(path)
    return encode(file.read_bytes(), _guess_type(file.name))


def _image_bytes(image: Image, format: str) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    fmt = format.lower()
    content_type = f"image/{'jpeg' if fmt == 'jpg' else fmt}"
    return buffer.getvalue(), content_type


def encode_image(image: Image, format: str = "png") -> str:
    """A PIL image as a data URI (PNG unless ``format`` says otherwise)."""
    data, content_type = _image_bytes(image, format)
    return encode(data, content_type)


# CDN tokens, cached per transport


@dataclass(frozen=True)
class _CdnToken:
    token: str
    token_type: str
    base_url: str
    expires_at: float

    def header(self) -> str:
        return f"{self.token_type} {self.token}"


class _TokenCache:
    def __init__(self) -> None:
        self.token: _CdnToken | None = None
        self.lock = asyncio.Lock()


_token_caches: weakref.WeakKeyDictionary[Transport, _TokenCache] = weakref.WeakKeyDictionary()


def _parse_expiry(value: Any) -> float:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return time.time() + 300.0
    if moment.tzinfo is None:  # fal sends an offset; read a naive time as UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


async def _cdn_token(transport: Transport) -> _CdnToken:
    cache = _token_caches.setdefault(transport, _TokenCache())
    async with cache.lock:
        token = cache.token
        if token is None or token.expires_at - TOKEN_MARGIN <= time.time():
            response = await transport.request(
                "POST",
                f"{transport.target.rest_url}/storage/auth/token",
                params={"storage_type": "fal-cdn-v3"},
                json={},
                headers={"Accept": "application/json"},
            )
            body = response.json()
            token = _CdnToken(
                token=str(body["token"]),
                token_type=str(body.get("token_type") or "Bearer"),
                base_url=str(body.get("base_url") or transport.target.cdn_url).rstrip("/"),
                expires_at=_parse_expiry(body.get("expires_at")),
            )
            cache.token = token
        return token


def _forget_token(transport: Transport) -> None:
    cache = _token_caches.get(transport)
    if cache is not None:
        cache.token = None


# The two upload paths


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


async def _all_or_none(
    calls: Sequence[Callable[[], Awaitable[T]]], limit: int | None = None
) -> list[T]:
    """Run ``calls`` concurrently, at most ``limit`` at once, and return their results in order.

    The first failure stops the others (and waits until they have stopped) and is raised as
    itself: nothing keeps uploading for an upload that has failed. The stopping is anyio's
    cancel scope, which holds until each call returns, not one ``Task.cancel()``: on Python 3.10
    a single cancel landing in anyio's own task group inside ``connect_tcp`` is absorbed, and that
    part went on sending for as long as the server held it, after its upload had failed.
    """
    results: list[Any] = [None] * len(calls)
    limiter = anyio.CapacityLimiter(limit or max(len(calls), 1))

    async def one(index: int, call: Callable[[], Awaitable[T]]) -> None:
        async with limiter:
            results[index] = await call()

    try:
        async with anyio.create_task_group() as group:
            for index, call in enumerate(calls):
                group.start_soon(one, index, call)
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return results


async def _gather_parts(
    chunks: list[bytes], put: Callable[[int, bytes], Awaitable[dict[str, Any]]]
) -> list[dict[str, Any]]:
    calls = [functools.partial(put, number, chunk) for number, chunk in enumerate(chunks, start=1)]
    return await _all_or_none(calls, MULTIPART_MAX_CONCURRENCY)


@dataclass(frozen=True)
class _Upload:
    """One upload, as both storage routes take it."""

    data: bytes
    content_type: str
    file_name: str
    multipart_threshold: int
    chunk_size: int
    #: The file's lifecycle preference headers (expiry, ACL).
    lifecycle: dict[str, str]


async def _upload_cdn(transport: Transport, upload: _Upload) -> str:
    data, content_type, file_name = upload.data, upload.content_type, upload.file_name
    lifecycle = upload.lifecycle
    token = await _cdn_token(transport)
    headers = {
        "Authorization": token.header(),
        "Content-Type": content_type,
        "X-Fal-File-Name": file_name,
        "Accept": "application/json",
        **lifecycle,
    }
    if len(data) <= upload.multipart_threshold:
        response = await transport.request(
            "POST",
            f"{transport.target.cdn_url}/files/upload",
            content=data,
            headers=headers,
            auth=False,
            timeout=None,
        )
        return str(response.json()["access_url"])
    created = await transport.request(
        "POST", f"{token.base_url}/files/upload/multipart", headers=headers, auth=False
    )
    access_url = str(created.json()["access_url"])
    upload_id = str(created.json()["uploadId"])

    async def put(number: int, chunk: bytes) -> dict[str, Any]:
        response = await transport.request(
            "PUT",
            f"{access_url}/multipart/{upload_id}/{number}",
            content=chunk,
            headers={
                "Authorization": token.header(),
                "Content-Type": content_type,
                # A compressed answer can lose its ETag header, and with it the part.
                "Accept-Encoding": "identity",
            },
            auth=False,
            timeout=None,
        )
        return {"partNumber": number, "etag": response.headers["etag"]}

    parts = await _gather_parts(_chunks(data, upload.chunk_size), put)
    await transport.request(
        "POST",
        f"{access_url}/multipart/{upload_id}/complete",
        json={"parts": parts},
        headers={"Authorization": token.header()},
        auth=False,
    )
    return access_url


def _with_path(url: str, suffix: str) -> str:
    """``url`` with ``suffix`` appended to its path, keeping its (signed) query."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + suffix))


async def _upload_rest(transport: Transport, upload: _Upload) -> str:
    data, content_type, file_name = upload.data, upload.content_type, upload.file_name
    lifecycle = upload.lifecycle
    multipart = len(data) > upload.multipart_threshold
    initiated = await transport.request(
        "POST",
        f"{transport.target.rest_url}/storage/upload/"
        + ("initiate-multipart" if multipart else "initiate"),
        params={"storage_type": "fal-cdn-v3"},
        json={"file_name": file_name, "content_type": content_type},
        headers={"Accept": "application/json", **lifecycle},
    )
    body = initiated.json()
    upload_url, file_url = str(body["upload_url"]), str(body["file_url"])
    # The upload URL carries its own signature: the key is not sent to it.
    if not multipart:
        await _put(transport, upload_url, data, content_type)
        return file_url

    async def put(number: int, chunk: bytes) -> dict[str, Any]:
        response = await _put(transport, _with_path(upload_url, f"/{number}"), chunk, content_type)
        part = response.json()
        return {"partNumber": number, "etag": str(part.get("etag") or response.headers["etag"])}

    parts = await _gather_parts(_chunks(data, upload.chunk_size), put)
    await transport.request(
        "POST", _with_path(upload_url, "/complete"), json={"parts": parts}, auth=False
    )
    return file_url


async def _put(transport: Transport, url: str, data: bytes, content_type: str) -> httpx.Response:
    return await transport.request(
        "PUT", url, content=data, headers={"Content-Type": content_type}, auth=False, timeout=None
    )


async def upload(
    transport: Transport,
    data: bytes,
    content_type: str | None = None,
    file_name: str | None = None,
    *,
    multipart_threshold: int = MULTIPART_THRESHOLD,
    chunk_size: int = MULTIPART_CHUNK_SIZE,
    storage_settings: StorageSettings | None = None,
) -> str:
    """Upload ``data`` to fal's storage and return its URL.

    ``content_type`` defaults to a guess from ``file_name``. Data over ``multipart_threshold``
    bytes goes in ``chunk_size`` parts. ``storage_settings`` sets the file's expiry and ACL.
    """
    content_type = content_type or _guess_type(file_name)
    name = file_name or _default_name(content_type)
    prepared = _Upload(
        bytes(data),
        content_type,
        name,
        multipart_threshold,
        chunk_size,
        lifecycle_headers(storage_settings, upload=True),
    )
    try:
        return await _upload_cdn(transport, prepared)
    except (FalError, httpx.HTTPError, KeyError, ValueError) as exc:
        # A refused token is likely stale or revoked: fetch a fresh one next time.
        _forget_token(transport)
        logger.info("CDN upload failed (%s); falling back to REST storage", type(exc).__name__)
        try:
            return await _upload_rest(transport, prepared)
        except (KeyError, ValueError) as rest_exc:
            raise FalError(f"storage answered an unexpected body: {rest_exc}") from exc


async def upload_file(
    transport: Transport,
    file: str | PurePath | bytes | bytearray | memoryview | Image,
    *,
    storage_settings: StorageSettings | None = None,
) -> str:
    """Upload a local file, raw bytes or a PIL image and return its URL.

    A path's content type is guessed from its name; bytes go up as
    ``application/octet-stream``, an image as PNG. A missing file raises :class:`FalError`.
    """
    if isinstance(file, (bytes, bytearray, memoryview)):
        return await upload(transport, bytes(file), storage_settings=storage_settings)
    if is_pil_image(file):
        return await upload_image(transport, file, storage_settings=storage_settings)  # type: ignore[arg-type]
    if not isinstance(file, (str, PurePath)):
        raise TypeError(
            f"upload_file takes a path, bytes or a PIL image, not {type(file).__name__}"
        )
    path = Path(file)
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise FalError(f"upload_file: no such file: {path}") from None
    return await upload(
        transport, data, _guess_type(path.name), path.name, storage_settings=storage_settings
    )


async def upload_image(
    transport: Transport,
    image: Image,
    format: str = "png",
    *,
    storage_settings: StorageSettings | None = None,
) -> str:
    """Upload a PIL image, encoded as ``format`` (PNG by default)."""
    data, content_type = _image_bytes(image, format)
    name = f"image.{format.lower()}"
    return await upload(transport, data, content_type, name, storage_settings=storage_settings)


# Automatic upload of inputs


def _where(path: tuple[str | int, ...]) -> str:
    text = "arguments"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


class _Collector:
    """Finds uploadable leaves, uploads each distinct one once, then rebuilds the arguments."""

    def __init__(self, transport: Transport, inline_threshold: int) -> None:
        self.transport = transport
        self.inline_threshold = inline_threshold
        self.found: dict[object, tuple[object, str]] = {}
        self.urls: dict[object, str] = {}

    @staticmethod
    def _key(value: object) -> object:
        if isinstance(value, PurePath):
            return ("path", str(Path(value).resolve()))
        return ("object", id(value))  # the arguments keep the object alive, so ids are stable

    @staticmethod
    def _data(value: object, where: str) -> tuple[bytes, str, str | None]:
        if isinstance(value, PurePath):
            file = Path(value)
            if not file.is_file():
                raise FalError(f"{where}: no such file: {file}")
            return file.read_bytes(), _guess_type(file.name), file.name
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value), DEFAULT_CONTENT_TYPE, None
        data, content_type = _image_bytes(value, "png")  # type: ignore[arg-type]
        return data, content_type, "image.png"

    async def _resolve(self, value: object, where: str) -> str:
        data, content_type, name = await asyncio.to_thread(self._data, value, where)
        if len(data) <= self.inline_threshold:
            return encode(data, content_type)
        return await upload(self.transport, data, content_type, name)

    def scan(self, arguments: object) -> None:
        for value, path in _uploadables(arguments, ()):
            self.found.setdefault(self._key(value), (value, _where(path)))

    async def run(self) -> None:
        keys = list(self.found)
        # One failure stops the others: nothing uploads for nothing.
        urls = await _all_or_none([functools.partial(self._resolve, *self.found[k]) for k in keys])
        self.urls = dict(zip(keys, urls, strict=True))

    def rebuild(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self.rebuild(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.rebuild(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.rebuild(item) for item in value)
        if _uploadable(value):
            return self.urls[self._key(value)]
        return value


def _uploadable(value: object) -> bool:
    return isinstance(value, (PurePath, bytes, bytearray, memoryview)) or is_pil_image(value)


def _uploadables(
    value: object, path: tuple[str | int, ...]
) -> Iterator[tuple[object, tuple[str | int, ...]]]:
    """Each leaf of ``value`` that is local data to upload, with where it sits."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _uploadables(item, (*path, str(key)))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _uploadables(item, (*path, index))
    elif _uploadable(value):
        yield value, path


#: Types that are never local data (by exact type: subclasses take the full walk).
_PLAIN = frozenset({str, int, float, bool, type(None)})


def has_uploads(arguments: Mapping[str, Any]) -> bool:
    """Whether :func:`upload_inputs` would upload anything from ``arguments``."""
    if all(type(value) in _PLAIN for value in arguments.values()):
        return False  # the usual flat prompt-and-numbers arguments: nothing to walk
    return next(_uploadables(arguments, ()), None) is not None


async def upload_inputs(
    transport: Transport, arguments: dict[str, Any], *, inline_threshold: int = 0
) -> dict[str, Any]:
    """A copy of ``arguments`` with local data replaced by URLs, uploading concurrently.

    ``pathlib.Path`` values, PIL images and ``bytes``/``bytearray``/``memoryview`` anywhere in
    nested dicts, lists and tuples are uploaded (or, when no bigger than ``inline_threshold``
    bytes, inlined as data URIs). Strings, data URIs included, are left as they are; the input
    is not mutated. A missing file raises :class:`FalError` naming the argument.
    """
    collector = _Collector(transport, inline_threshold)
    collector.scan(arguments)
    if not collector.found:
        return dict(arguments)
    await collector.run()
    result: dict[str, Any] = collector.rebuild(arguments)
    return result

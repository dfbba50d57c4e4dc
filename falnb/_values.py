"""Kinds of value falnb recognises in inputs and outputs, each decided in one place.

PIL images (without importing Pillow), ``data:`` URIs, content hashes, media signatures,
fal's ``File`` objects in an output, and a file's size as people read it. The client, the local
server, the lock and the renderer all ask here, so they agree on what a file or an image is.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from collections.abc import Iterator
from typing import Any, Literal
from urllib.parse import unquote_to_bytes

__all__ = [
    "KIND_BY_KEY",
    "MediaKind",
    "data_uri",
    "decode_data_uri",
    "describe_size",
    "fal_files",
    "is_pil_image",
    "sha256_hex",
    "sniff",
    "sniff_image_type",
]

MediaKind = Literal["image", "video", "audio", "file"]
#: Output fields whose value is a file of that kind even without a content type.
KIND_BY_KEY: dict[str, MediaKind] = {
    "images": "image",
    "image": "image",
    "video": "video",
    "audio": "audio",
    "audio_file": "audio",
    "audio_url": "audio",
}
#: ``(signature, offset, content type, extension)`` of the media kinds falnb recognises.
_SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", "png"),
    (b"\xff\xd8\xff", 0, "image/jpeg", "jpg"),
    (b"GIF8", 0, "image/gif", "gif"),
    (b"WEBP", 8, "image/webp", "webp"),
    (b"WAVE", 8, "audio/wav", "wav"),
    (b"ftyp", 4, "video/mp4", "mp4"),
)


def is_pil_image(value: object) -> bool:
    """Whether ``value`` is a PIL image; Pillow is never imported to find out."""
    # PIL can only have made an image if it was imported: no import cost for everyone else.
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(value, module.Image)


def describe_size(count: int) -> str:
    """A byte count as outputs and notes show it (``157 kB``, ``5.2 MB``)."""
    if count < 1000:
        return f"{count} B"
    if count < 1_000_000:
        return f"{count / 1000:.0f} kB"
    return f"{count / 1_000_000:.1f} MB"


def sha256_hex(data: bytes) -> str:
    """The hex sha256 of ``data``: how the lock, the media store and fingerprints name bytes."""
    return hashlib.sha256(data).hexdigest()


def data_uri(data: bytes, content_type: str) -> str:
    """``data:<content_type>;base64,<data>``: an inline URL that needs no upload."""
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def decode_data_uri(uri: str) -> bytes:
    """The bytes of a ``data:`` URI (fal's ``sync_mode`` outputs); ValueError if malformed."""
    header, sep, payload = uri.partition(",")
    if not sep:
        raise ValueError("a data: URI needs a ',' before its payload")
    if header.endswith(";base64"):
        return base64.b64decode(payload)  # binascii.Error is a ValueError
    return unquote_to_bytes(payload)


def sniff(data: bytes) -> tuple[str, str] | None:
    """``(content type, extension)`` of media bytes by their signature, or None."""
    for signature, offset, content_type, extension in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return content_type, extension
    return None


def sniff_image_type(data: bytes, declared: str | None = None) -> str:
    """The MIME type of image bytes, from their signature (falling back to ``declared``)."""
    found = sniff(data)
    if found is not None and found[0].startswith("image/"):
        return found[0]
    return declared or "application/octet-stream"


def fal_files(output: Any, key: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every fal ``File`` object in ``output``: a dict with a ``url`` and a content type, a
    file name, or a field name of :data:`KIND_BY_KEY`.

    Yields ``(key, file)`` where ``key`` is the field that held it (``images``, ``video`` ...).
    The one walker: what a Result shows, what is downloaded and what the lock pins.
    """
    if isinstance(output, dict):
        url = output.get("url")
        if isinstance(url, str) and (
            "content_type" in output or "file_name" in output or key in KIND_BY_KEY
        ):
            yield key, output
            return
        for name, value in output.items():
            yield from fal_files(value, str(name))
    elif isinstance(output, list):
        for item in output:
            yield from fal_files(item, key)

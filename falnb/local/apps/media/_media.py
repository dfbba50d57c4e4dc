"""Bytes in and out of the media apps: encoding, storing, and reading input images.

Encoders run with fixed parameters so the same pixels always give the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any
from urllib.parse import unquote_to_bytes

import httpx
import numpy as np
from PIL import Image, UnidentifiedImageError

from falnb.local.registry import Context

from ._args import invalid

__all__ = [
    "decode_image",
    "deliver",
    "encode_image",
    "fetch_bytes",
    "image_answer",
    "image_file",
    "read_image_url",
]

_CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png"}
_FETCH_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_MAX_INPUT_BYTES = 64 * 1024 * 1024


def encode_image(pixels: np.ndarray[Any, np.dtype[np.uint8]], fmt: str) -> bytes:
    """``HxWx3`` uint8 pixels as JPEG (quality 90, 4:2:0) or PNG (level 3)."""
    image = Image.fromarray(pixels, "RGB")
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, "PNG", compress_level=3)
    else:
        image.save(out, "JPEG", quality=90, subsampling=2)
    return out.getvalue()


def deliver(
    ctx: Context, data: bytes, content_type: str, file_name: str, *, sync_mode: bool = False
) -> dict[str, Any]:
    """fal's ``File`` for ``data``: stored on the CDN, or inline as a data URI with sync_mode."""
    if sync_mode:
        encoded = base64.b64encode(data).decode("ascii")
        return {
            "url": f"data:{content_type};base64,{encoded}",
            "content_type": content_type,
            "file_name": file_name,
            "file_size": len(data),
        }
    return ctx.store(data, content_type, file_name)


def image_file(
    ctx: Context,
    pixels: np.ndarray[Any, np.dtype[np.uint8]],
    fmt: str,
    file_name: str,
    *,
    sync_mode: bool = False,
) -> dict[str, Any]:
    """fal's ``Image`` (a File plus width and height) for ``pixels``."""
    data = encode_image(pixels, fmt)
    extension = "jpg" if fmt == "jpeg" else fmt
    file = deliver(ctx, data, _CONTENT_TYPES[fmt], f"{file_name}.{extension}", sync_mode=sync_mode)
    height, width = pixels.shape[:2]
    return {**file, "width": width, "height": height}


def image_answer(
    images: list[dict[str, Any]], timings: dict[str, float], seed: int, prompt: str
) -> dict[str, Any]:
    """An image model's answer (``_inputs.image_output``'s shape): nothing is flagged NSFW."""
    return {
        "images": images,
        "timings": timings,
        "seed": seed,
        "has_nsfw_concepts": [False] * len(images),
        "prompt": prompt,
    }


def decode_image(data: bytes, field: str = "image_url") -> Image.Image:
    """RGB image from encoded bytes; undecodable input is the caller's 422."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError):
        invalid(field, "Could not decode the image", "image_load_error")
    return image.convert("RGB")


def fetch_bytes(url: str, field: str = "image_url") -> bytes:
    """The bytes behind a data URI or an http(s) URL (such as this server's own CDN URL)."""
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        try:
            if header.endswith(";base64"):
                return base64.b64decode(payload, validate=False)
            return unquote_to_bytes(payload)
        except (binascii.Error, ValueError):
            invalid(field, "Invalid data URI", "url_parsing")
    if not url.startswith(("http://", "https://")):
        invalid(field, "Input should be an http(s) URL or a data URI", "url_scheme")
    try:
        response = httpx.get(url, timeout=_FETCH_TIMEOUT, follow_redirects=True)
    except httpx.HTTPError as exc:
        invalid(field, f"Could not download the file: {type(exc).__name__}", "file_download_error")
    if response.status_code != 200:
        invalid(
            field,
            f"Could not download the file: HTTP {response.status_code}",
            "file_download_error",
        )
    if len(response.content) > _MAX_INPUT_BYTES:
        invalid(field, "File is too large", "file_too_large")
    return response.content


def read_image_url(url: str, field: str = "image_url") -> Image.Image:
    """Decode the image behind ``url`` (data URI or http(s))."""
    return decode_image(fetch_bytes(url, field), field)

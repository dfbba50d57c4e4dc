"""Turn what an app function returns into a fal output dict, storing media as fal Files.

Anywhere in the returned value (nested dicts, lists, tuples):

* a PIL image becomes an image File (PNG, or the image's own JPEG/WEBP format) with
  ``width``/``height``;
* ``bytes`` become a File whose ``content_type`` is sniffed (PNG, JPEG, GIF, WEBP, MP4, WAV,
  else ``application/octet-stream``);
* a ``pathlib.Path`` to an existing file becomes a File named after it, typed by extension;
* a pydantic model is ``model_dump()``-ed first.

A bare return value that is not a dict follows fal's schemas: a PIL image (or a list of them)
becomes ``{"images": [File, ...]}``, bytes or a Path ``{"file": File}``, a string
``{"output": str}``.

Example::

    to_output(PIL.Image.new("RGB", (8, 8)), ctx)   # {"images": [{"url": ..., "width": 8, ...}]}
"""

from __future__ import annotations

import io
import mimetypes
import sys
from pathlib import Path
from typing import Any

from falnb._values import is_pil_image, sniff
from falnb.local.registry import Context

__all__ = ["binary_stream_output", "sniff_content_type", "to_output"]

_SAVE_AS = {"JPEG": ("JPEG", "image/jpeg", "jpg"), "WEBP": ("WEBP", "image/webp", "webp")}


def _is_model(value: object) -> bool:
    module = sys.modules.get("pydantic")
    return module is not None and isinstance(value, module.BaseModel)


def _store_image(image: Any, ctx: Context) -> dict[str, Any]:
    fmt, content_type, extension = _SAVE_AS.get(image.format or "", ("PNG", "image/png", "png"))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    file = ctx.store(buffer.getvalue(), content_type, f"image.{extension}")
    return {**file, "width": image.width, "height": image.height}


def _sniff(data: bytes) -> tuple[str, str]:
    return sniff(data) or ("application/octet-stream", "bin")


def sniff_content_type(data: bytes) -> str:
    """The content type ``data``'s magic bytes say (``application/octet-stream`` if none)."""
    return _sniff(data)[0]


def binary_stream_output(data: bytes, ctx: Context) -> dict[str, Any]:
    """A binary stream's chunks, joined, as the output run and queue answer with: one File
    under its media kind (``{"audio": File}`` for a WAV), as fal's schemas name them."""
    file = _store_bytes(data, ctx)
    kind = str(file.get("content_type", "")).split("/")[0]
    return {kind if kind in ("audio", "video", "image") else "file": file}


def _store_bytes(data: bytes, ctx: Context) -> dict[str, Any]:
    content_type, extension = _sniff(data)
    return _with_size(ctx.store(data, content_type, f"output.{extension}"), data)


def _store_path(path: Path, ctx: Context) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"the app returned the path {str(path)!r}, which is not a file")
    data = path.read_bytes()
    content_type = mimetypes.guess_type(path.name)[0] or _sniff(data)[0]
    return _with_size(ctx.store(data, content_type, path.name), data)


def _with_size(file: dict[str, Any], data: bytes) -> dict[str, Any]:
    """Images also carry ``width``/``height`` when PIL can read them."""
    if not str(file.get("content_type", "")).startswith("image/"):
        return file
    try:
        from PIL import Image  # only for image outputs

        with Image.open(io.BytesIO(data)) as image:
            return {**file, "width": image.width, "height": image.height}
    except (OSError, ValueError):  # not decodable: a File without a size is still a File
        return file


def _convert(value: Any, ctx: Context) -> Any:
    if _is_model(value):
        value = value.model_dump()
    if isinstance(value, dict):
        return {key: _convert(item, ctx) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_convert(item, ctx) for item in value]
    if is_pil_image(value):
        return _store_image(value, ctx)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _store_bytes(bytes(value), ctx)
    if isinstance(value, Path):
        return _store_path(value, ctx)
    return value


def to_output(value: Any, ctx: Context) -> dict[str, Any]:
    """The output dict for ``value`` (see the module docstring); media go to ``ctx.store``."""
    if _is_model(value):
        value = value.model_dump()
    if isinstance(value, dict):
        return {str(key): _convert(item, ctx) for key, item in value.items()}
    if is_pil_image(value):
        return {"images": [_store_image(value, ctx)]}
    if isinstance(value, (list, tuple)) and value and all(is_pil_image(v) for v in value):
        return {"images": [_store_image(v, ctx) for v in value]}
    if isinstance(value, (bytes, bytearray, memoryview, Path)):
        return {"file": _convert(value, ctx)}
    if isinstance(value, str):
        return {"output": value}
    raise TypeError(
        f"{ctx.endpoint_id} returned {type(value).__name__}; return a dict (or a PIL image, "
        "bytes, a Path, a string or a pydantic model)"
    )

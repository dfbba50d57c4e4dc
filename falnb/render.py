"""A :class:`Result` as a plain MIME bundle: what persists in the .ipynb.

Pure functions, no IPython: images become a grid of JPEG/PNG previews (at most 200 KB per
1024x1024 image) with ``width x height`` and the seed under each, click to enlarge; video
and audio an inline player; text outputs text; anything else a collapsible JSON view.
``text/plain`` is stable across runs (no object ids, no timestamps, no request ids), so a
re-run notebook diffs clean; the run's details go into the output metadata under ``falnb``.
"""

from __future__ import annotations

import base64
import html
import io
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from falnb.result import MediaFile, Result

__all__ = ["MAX_EMBED_BYTES", "PREVIEW_BYTES", "describe", "mimebundle", "preview"]

#: Preview budget per 1024x1024 pixels (scaled by area, never below 40 KB).
PREVIEW_BYTES = 200_000
#: Video and audio larger than this are linked (by URL), not embedded.
MAX_EMBED_BYTES = 8_000_000
_MAX_JSON_STRING = 200


def _budget(width: int, height: int) -> int:
    return max(40_000, int(PREVIEW_BYTES * width * height / (1024 * 1024)))


def preview(data: bytes, content_type: str) -> tuple[str, bytes, int, int]:
    """``(mime, bytes, width, height)``: the image itself if small enough, else a JPEG.

    The JPEG quality drops, then the size, until the preview fits its budget.
    """
    from PIL import Image  # noqa: PLC0415 - rendering images needs Pillow anyway

    image = Image.open(io.BytesIO(data))
    width, height = image.size
    budget = _budget(width, height)
    if content_type in ("image/jpeg", "image/png") and len(data) <= budget:
        return content_type, data, width, height
    rgb = image.convert("RGB")
    while True:
        for quality in (85, 70, 55, 40):
            buffer = io.BytesIO()
            rgb.save(buffer, format="JPEG", quality=quality, optimize=True)
            if buffer.tell() <= budget:
                return "image/jpeg", buffer.getvalue(), width, height
        rgb = rgb.resize((max(1, rgb.width * 3 // 4), max(1, rgb.height * 3 // 4)))


def _size(count: int) -> str:
    if count < 1000:
        return f"{count} B"
    if count < 1_000_000:
        return f"{count / 1000:.0f} kB"
    return f"{count / 1_000_000:.1f} MB"


def describe(result: Result) -> str:
    """One stable line describing ``result``."""
    files = result.files
    images = [f for f in files if f.kind == "image"]
    parts: list[str] = []
    if images:
        sizes = ", ".join(_dimensions(f) for f in images)
        parts.append(f"{len(images)} image{'s' if len(images) != 1 else ''} ({sizes})")
    parts.extend(
        f"{f.kind} {f.content_type}, {_size(len(f.data))}"
        for f in files
        if f.kind in ("video", "audio")
    )
    others = [f for f in files if f.kind == "file"]
    if others:
        parts.append(f"{len(others)} file{'s' if len(others) != 1 else ''}")
    if not parts:
        text = result.text
        parts.append(f"text, {len(text)} characters" if text is not None else "JSON")
    if result.seed is not None:
        parts.append(f"seed {result.seed}")
    return f"{result.endpoint}: " + ", ".join(parts)


def _dimensions(file: MediaFile) -> str:
    if file.width and file.height:
        return f"{file.width}x{file.height}"
    from PIL import Image  # noqa: PLC0415

    width, height = Image.open(io.BytesIO(file.data)).size
    return f"{width}x{height}"


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# Clicking a thumbnail toggles it between the grid width and its full size.
_ENLARGE = (
    "this.style.maxWidth = this.style.maxWidth === 'none' ? '' : 'none';"
    "this.style.maxHeight = this.style.maxHeight === 'none' ? '' : 'none'"
)


def _image_grid(result: Result, images: list[MediaFile]) -> tuple[str, tuple[str, bytes] | None]:
    cells: list[str] = []
    first: tuple[str, bytes] | None = None
    seed = f" · seed {result.seed}" if result.seed is not None else ""
    for index, file in enumerate(images):
        mime, data, width, height = preview(file.data, file.content_type)
        if first is None:
            first = (mime, data)
        caption = f"{width}x{height}{seed}"
        cells.append(
            '<figure class="falnb-image" style="margin:0;display:flex;flex-direction:column;'
            'align-items:flex-start">'
            f'<img src="{_data_uri(mime, data)}" alt="{html.escape(result.endpoint)} image '
            f'{index + 1}" title="click to enlarge" onclick="{_ENLARGE}" '
            'style="max-width:320px;max-height:320px;cursor:zoom-in;border-radius:4px">'
            '<figcaption style="font-size:12px;opacity:0.75;margin-top:2px">'
            f"{html.escape(caption)}</figcaption></figure>"
        )
    grid = (
        '<div class="falnb-images" style="display:flex;flex-wrap:wrap;gap:8px;'
        f'align-items:flex-start">{"".join(cells)}</div>'
    )
    return grid, first


def _player(file: MediaFile) -> str:
    tag = "video" if file.kind == "video" else "audio"
    src = (
        _data_uri(file.content_type, file.data)
        if len(file.data) <= MAX_EMBED_BYTES
        else html.escape(file.url)
    )
    style = ' style="max-width:640px"' if tag == "video" else ""
    extra = " loop muted playsinline" if tag == "video" else ""
    return (
        f'<{tag} class="falnb-{tag}" controls{extra} src="{src}"{style}></{tag}>'
        f'<div style="font-size:12px;opacity:0.75">{html.escape(file.content_type)}, '
        f"{_size(len(file.data))}</div>"
    )


def _shorten(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    if isinstance(value, str) and len(value) > _MAX_JSON_STRING:
        return value[:_MAX_JSON_STRING] + f"… ({len(value)} characters)"
    return value


def _json_view(result: Result, *, open_: bool) -> str:
    text = json.dumps(_shorten(result.json), indent=2, default=str)
    state = " open" if open_ else ""
    return (
        f'<details class="falnb-json"{state}><summary style="cursor:pointer;font-size:12px">'
        f"{html.escape(result.endpoint)} output (JSON)</summary>"
        f'<pre style="font-size:12px;max-height:24em;overflow:auto">{html.escape(text)}</pre>'
        "</details>"
    )


def mimebundle(result: Result) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(data, metadata)`` for IPython: the plain, persistent rendering of ``result``."""
    files = result.files
    images = [f for f in files if f.kind == "image"]
    players = [f for f in files if f.kind in ("video", "audio")]
    summary = describe(result)
    data: dict[str, Any] = {}
    parts: list[str] = []
    plain = summary
    if images:
        grid, first = _image_grid(result, images)
        parts.append(grid)
        if first is not None:
            # Renderers that skip HTML (GitHub's fallback, nbconvert to markdown) show this one.
            data[first[0]] = base64.b64encode(first[1]).decode("ascii")
    parts.extend(_player(f) for f in players)
    text = result.text
    if text is not None and not files:
        parts.append(
            '<pre class="falnb-text" style="white-space:pre-wrap;font-size:13px">'
            f"{html.escape(text)}</pre>"
        )
        plain = f"{summary}\n\n{text}"
    parts.append(_json_view(result, open_=not files and text is None))
    if not files and text is None:
        plain = f"{summary}\n{json.dumps(_shorten(result.json), indent=2, default=str)}"
    data["text/plain"] = plain
    data["text/html"] = f'<div class="falnb-result">{"".join(parts)}</div>'
    return data, {"falnb": result.metadata()}

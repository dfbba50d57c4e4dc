"""A :class:`Result` as a plain MIME bundle: what persists in the .ipynb.

Pure functions, no IPython: images become a grid of JPEG/PNG previews (at most 200 KB per
1024x1024 image) with ``width x height`` and the seed under each, click to enlarge; video
and audio an inline player; text outputs text; anything else a collapsible JSON view.
``text/plain`` is stable across runs (no object ids, no timestamps, no request ids), so a
re-run notebook diffs clean; the run's details go into the output metadata under ``falnb``.

Saved outputs must stay visible where HTML is sanitized (GitHub strips ``style``, scripts,
``<video>`` and ``<audio>``, and may drop ``data:`` images) or skipped. So the bundle also
carries one ``image/jpeg``/``png`` that such renderers pick (the image, a contact sheet of
several, or a video's poster frame), and the HTML degrades: sizes are attributes, not only
styles; a ``<video>`` holds its poster as fallback content; every ``<img>`` has alt text; a
caption line names each video or audio file with its length and size. When the lock holds the
endpoint's ``%fal seedcheck`` verdict, its badge (text that keeps its meaning unstyled) sits
under the output.
"""

from __future__ import annotations

import base64
import html
import io
import json
from typing import TYPE_CHECKING, Any

from falnb._values import data_uri, describe_size

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from falnb.result import MediaFile, Result

__all__ = [
    "MAX_EMBED_BYTES",
    "NO_MATH",
    "PREVIEW_BYTES",
    "contact_sheet",
    "describe",
    "mimebundle",
    "poster",
    "preview",
]

#: Preview budget per 1024x1024 pixels (scaled by area, never below 40 KB).
PREVIEW_BYTES = 200_000
#: Video and audio larger than this are linked (by URL), not embedded.
MAX_EMBED_BYTES = 8_000_000
#: Thumbnails in the grid fit this box (click one to see it at full size).
THUMBNAIL_SIDE = 320
_MAX_JSON_STRING = 200
#: Classes that keep MathJax out of an output (MathJax 2's and 3's names): JupyterLab typesets
#: ``$...$`` in HTML outputs, so "$0.025 = $0.05" in a cost line or a prompt read as maths.
NO_MATH = "tex2jax_ignore mathjax_ignore"


def _budget(width: int, height: int) -> int:
    return max(40_000, int(PREVIEW_BYTES * width * height / (1024 * 1024)))


def preview(data: bytes, content_type: str) -> tuple[str, bytes, int, int]:
    """``(mime, bytes, width, height)``: the image itself if small enough, else a JPEG.

    The JPEG quality drops, then the size, until the preview fits its budget.
    """
    from PIL import Image  # rendering images needs Pillow anyway

    image = Image.open(io.BytesIO(data))
    width, height = image.size
    budget = _budget(width, height)
    if content_type in ("image/jpeg", "image/png") and len(data) <= budget:
        return content_type, data, width, height
    return "image/jpeg", _fit_jpeg(image, budget), width, height


def _fit_jpeg(image: PILImage, budget: int) -> bytes:
    """``image`` as a JPEG of at most ``budget`` bytes: lower quality, then smaller."""
    rgb = image.convert("RGB")
    while True:
        for quality in (85, 70, 55, 40):
            buffer = io.BytesIO()
            rgb.save(buffer, format="JPEG", quality=quality, optimize=True)
            if buffer.tell() <= budget:
                return buffer.getvalue()
        rgb = rgb.resize((max(1, rgb.width * 3 // 4), max(1, rgb.height * 3 // 4)))


def contact_sheet(previews: list[bytes]) -> bytes:
    """One JPEG of several images side by side, each a thumbnail, within one preview budget."""
    from PIL import Image

    gap = 8
    thumbs = []
    for data in previews:
        with Image.open(io.BytesIO(data)) as image:
            thumb = image.convert("RGB")
        thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        thumbs.append(thumb)
    width = sum(t.width for t in thumbs) + gap * (len(thumbs) - 1)
    height = max(t.height for t in thumbs)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    left = 0
    for thumb in thumbs:
        sheet.paste(thumb, (left, 0))
        left += thumb.width + gap
    return _fit_jpeg(sheet, _budget(width, height))


def poster(data: bytes) -> bytes | None:
    """A JPEG of a video's middle frame (within a preview budget), or None if undecodable."""
    import av  # only videos need it

    try:
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.video[0]
            duration = (
                float(stream.duration * stream.time_base)
                if stream.duration is not None and stream.time_base is not None
                else (container.duration or 0) / 1_000_000
            )
            middle, frame = duration / 2, None
            if stream.time_base is not None and middle > 0:
                # Start at the keyframe before the middle: long videos need not decode it all.
                container.seek(int(middle / stream.time_base), stream=stream)
            for decoded in container.decode(stream):
                frame = decoded
                if decoded.time is not None and decoded.time >= middle:
                    break
            if frame is None:
                return None
            image = frame.to_image()
    except (av.FFmpegError, IndexError, ValueError, OSError):
        return None
    return _fit_jpeg(image, _budget(image.width, image.height))


def _duration(file: MediaFile) -> float | None:
    """Seconds of a video or audio file, when its container says."""
    import av

    try:
        with av.open(io.BytesIO(file.data)) as container:
            if container.duration is not None:
                return float(container.duration) / 1_000_000
            streams = [s for s in container.streams if s.duration and s.time_base]
            return float(streams[0].duration * streams[0].time_base) if streams else None
    except (av.FFmpegError, IndexError, ValueError, OSError):
        return None


def describe(result: Result) -> str:
    """One stable line describing ``result``."""
    files = result.files
    images = [f for f in files if f.kind == "image"]
    parts: list[str] = []
    if images:
        sizes = ", ".join(_dimensions(f) for f in images)
        parts.append(f"{len(images)} image{'s' if len(images) != 1 else ''} ({sizes})")
    parts.extend(
        f"{f.kind} {f.content_type}, {describe_size(len(f.data))}"
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


def cost_line(result: Result) -> str | None:
    """What the call cost, for under its output: ``3 images x $0.025 = $0.075``, ``3 units``
    with no price known; None when the server did not say what it billed.

    A replay shows what its recorded run cost (units and price come from the lock), so the
    saved output is the same whether the cell was sent or replayed; that a replay itself
    was free is on the Result (``.replayed``, ``.cost``) and in ``%fal usage``."""
    from falnb.pricing import describe_units, money  # render stays light

    units, price = result.units, result.price
    if units is None:
        return None
    if price is None:
        return describe_units(units, None)
    shown = describe_units(units, price.unit)
    each = money(price.unit_price, price.currency)
    return f"{shown} \u00d7 {each} = {money(price.cost(units), price.currency)}"


def _dimensions(file: MediaFile) -> str:
    if file.width and file.height:
        return f"{file.width}x{file.height}"
    from PIL import Image

    width, height = Image.open(io.BytesIO(file.data)).size
    return f"{width}x{height}"


# Clicking a thumbnail toggles it between its grid width and its full (preview) width.
def _enlarge(thumb_width: int) -> str:
    return f"this.width = this.width < this.naturalWidth ? this.naturalWidth : {thumb_width}"


def _thumbnail_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, THUMBNAIL_SIDE / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _image_grid(result: Result, images: list[MediaFile]) -> tuple[str, list[tuple[str, bytes]]]:
    cells: list[str] = []
    previews: list[tuple[str, bytes]] = []
    seed = f" · seed {result.seed}" if result.seed is not None else ""
    for index, file in enumerate(images):
        mime, data, width, height = preview(file.data, file.content_type)
        previews.append((mime, data))
        caption = f"{width}x{height}{seed}"
        alt = f"{result.endpoint} image {index + 1} ({caption})"
        # width/height attributes survive sanitizers that strip style (GitHub's does).
        thumb_width, thumb_height = _thumbnail_size(width, height)
        cells.append(
            '<figure class="falnb-image" style="margin:0;display:flex;flex-direction:column;'
            'align-items:flex-start">'
            f'<img src="{data_uri(data, mime)}" alt="{html.escape(alt)}" '
            f'width="{thumb_width}" height="{thumb_height}" title="click to enlarge" '
            f'onclick="{_enlarge(thumb_width)}" '
            # height:auto keeps the aspect when a click changes only the width.
            'style="cursor:zoom-in;border-radius:4px;height:auto">'
            '<figcaption style="font-size:12px;opacity:0.75;margin-top:2px">'
            f"{html.escape(caption)}</figcaption></figure>"
        )
    grid = (
        '<div class="falnb-images" style="display:flex;flex-wrap:wrap;gap:8px;'
        f'align-items:flex-start">{"".join(cells)}</div>'
    )
    return grid, previews


def _caption(file: MediaFile, result: Result) -> str:
    """The line that names a video or audio file, visible even where players are stripped."""
    parts = [file.kind, file.content_type]
    seconds = _duration(file)
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    parts.append(describe_size(len(file.data)))
    if result.seed is not None:
        parts.append(f"seed {result.seed}")
    return " · ".join(parts)


def _player(file: MediaFile, result: Result, still: bytes | None) -> str:
    tag = "video" if file.kind == "video" else "audio"
    src = (
        data_uri(file.data, file.content_type)
        if len(file.data) <= MAX_EMBED_BYTES
        else html.escape(file.url)
    )
    caption = _caption(file, result)
    if tag == "video":
        # Fallback content shows only where <video> is unsupported or stripped by a sanitizer.
        poster_uri = data_uri(still, "image/jpeg") if still is not None else ""
        poster_attr = f' poster="{poster_uri}"' if still is not None else ""
        fallback = (
            f'<img src="{poster_uri}" alt="{html.escape(result.endpoint)} video poster '
            f'({html.escape(caption)})">'
            if still is not None
            else ""
        )
        player = (
            f'<video class="falnb-video" controls loop muted playsinline src="{src}"'
            f'{poster_attr} style="max-width:640px">{fallback}</video>'
        )
    else:
        player = f'<audio class="falnb-audio" controls src="{src}"></audio>'
    return (
        f'<div class="falnb-media">{player}'
        f'<div class="falnb-caption" style="font-size:12px;opacity:0.75">'
        f"{html.escape(caption)}</div></div>"
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
    picture: tuple[str, bytes] | None = None
    if images:
        grid, previews = _image_grid(result, images)
        parts.append(grid)
        picture = (
            previews[0]
            if len(previews) == 1
            else ("image/jpeg", contact_sheet([p for _, p in previews]))
        )
    for file in players:
        still = poster(file.data) if file.kind == "video" else None
        if picture is None and still is not None:
            picture = ("image/jpeg", still)
        parts.append(_player(file, result, still))
    if picture is not None:
        # Renderers that skip or sanitize HTML (GitHub, nbconvert to markdown) show this one.
        data[picture[0]] = base64.b64encode(picture[1]).decode("ascii")
    text = result.text
    if text is not None and not files:
        parts.append(
            '<pre class="falnb-text" style="white-space:pre-wrap;font-size:13px">'
            f"{html.escape(text)}</pre>"
        )
        plain = f"{summary}\n\n{text}"
    check = result.seedcheck
    if check is not None:
        # The endpoint's verdict from the lock: does this output's seed reproduce it?
        parts.append(f'<div class="falnb-seed-verdict" style="margin:4px 0">{check.badge()}</div>')
    cost = cost_line(result)
    if cost is not None:
        parts.append(
            f'<div class="falnb-cost" style="font-size:12px;opacity:0.75;margin:4px 0">'
            f"{html.escape(cost)}</div>"
        )
    parts.append(_json_view(result, open_=not files and text is None))
    if not files and text is None:
        plain = f"{summary}\n{json.dumps(_shorten(result.json), indent=2, default=str)}"
    if check is not None:
        plain = f"{plain}\nseed: {check.verdict} (%fal seedcheck)"
    if cost is not None:
        plain = f"{plain}\n{cost}"
    data["text/plain"] = plain
    data["text/html"] = f'<div class="falnb-result {NO_MATH}">{"".join(parts)}</div>'
    return data, {"falnb": result.metadata()}

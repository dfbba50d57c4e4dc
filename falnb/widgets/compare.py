"""Compare results side by side: a before/after swipe for two images, a synced row for more.

::

    falnb.compare(results[0], results[1])           # drag the divider between the two
    falnb.compare(*results[:4])                     # side by side, videos played in sync
    falnb.compare(a, b, labels=["seed 1", "seed 2"])

Takes :class:`~falnb.result.Result` objects (their first image or video), PIL images or
image bytes, from a sweep or not. The view is an anywidget (js/src/compare.js); its
``text/html`` fallback (small stills of the items side by side, sized by attributes; the
full media stay in the view, not a second time in the file) is what a saved notebook shows
where widgets do not render (GitHub, nbconvert).
"""

from __future__ import annotations

import functools
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from falnb._values import data_uri

__all__ = ["MAX_ITEM_BYTES", "compare"]

_STATIC = Path(__file__).resolve().parent.parent / "static"
#: Larger media are shown from their URL rather than sent inline.
MAX_ITEM_BYTES = 8_000_000
_FALLBACK_WIDTH = 320
#: Each still in the saved fallback fits this many bytes.
_FALLBACK_BYTES = 60_000


def _item(value: Any, label: str | None) -> tuple[dict[str, str], bytes]:
    """``{src, kind, label}`` for one thing to compare, and its media's bytes."""
    files = getattr(value, "files", None)
    if files is not None:  # a Result
        for file in files:
            if file.kind in ("image", "video"):
                src = (
                    data_uri(file.data, file.content_type)
                    if len(file.data) <= MAX_ITEM_BYTES
                    else file.url
                )
                seed = getattr(value, "seed", None)
                default = f"{value.endpoint}" + (f" · seed {seed}" if seed is not None else "")
                return {"src": src, "kind": file.kind, "label": label or default}, file.data
        raise ValueError(f"{value!r} has no image or video output to compare")
    if isinstance(value, (bytes, bytearray)):
        from PIL import Image

        with Image.open(io.BytesIO(value)) as image:
            mime = Image.MIME.get(image.format or "", "image/png")
        item = {"src": data_uri(bytes(value), mime), "kind": "image", "label": label or ""}
        return item, bytes(value)
    if hasattr(value, "save") and hasattr(value, "size"):  # a PIL image
        buffer = io.BytesIO()
        value.convert("RGB").save(buffer, format="PNG")
        data = buffer.getvalue()
        return {"src": data_uri(data, "image/png"), "kind": "image", "label": label or ""}, data
    raise ValueError(
        f"cannot compare a {type(value).__name__}: give Results, PIL images or image bytes"
    )


def _still(data: bytes, kind: str) -> str | None:
    """A small JPEG of one item (a video's middle frame) for the saved fallback: the view
    itself has the full media, the notebook file need not carry it a second time."""
    from PIL import Image

    from falnb.render import _fit_jpeg, poster

    picture = poster(data) if kind == "video" else data
    if picture is None:
        return None
    with Image.open(io.BytesIO(picture)) as image:
        thumb = image.convert("RGB")
    thumb.thumbnail((2 * _FALLBACK_WIDTH, 2 * _FALLBACK_WIDTH))  # sharp on 2x screens
    return data_uri(_fit_jpeg(thumb, _FALLBACK_BYTES), "image/jpeg")


def _fallback(items: list[tuple[dict[str, str], bytes]]) -> str:
    """The items side by side as stills, sized by attributes (GitHub strips ``style``)."""
    cells = []
    for item, data in items:
        label = html.escape(item["label"])
        still = _still(data, item["kind"])
        alt = f"{label} (video)" if item["kind"] == "video" else label
        body = (
            f'<img src="{still}" alt="{alt}" width="{_FALLBACK_WIDTH}">'
            if still is not None
            else f"<i>{item['kind']}</i>"
        )
        cells.append(f"<td>{body}<div>{label}</div></td>")
    return f'<table class="falnb-compare-static"><tr>{"".join(cells)}</tr></table>'


def compare(*values: Any, labels: Sequence[str] | None = None, mode: str | None = None) -> Any:
    """A compare view of two or more results (``mode``: ``swipe`` for two images, else
    ``side``; the default picks swipe for exactly two images)."""
    if len(values) == 1 and isinstance(values[0], (list, tuple)):
        values = tuple(values[0])
    kept = [v for v in values if v is not None and (bool(v) or not hasattr(v, "error"))]
    if len(kept) < 2:
        raise ValueError("compare needs two or more results (failed jobs are left out)")
    if labels is not None and len(labels) != len(kept):
        raise ValueError(f"{len(labels)} labels for {len(kept)} results")
    found = [_item(v, labels[i] if labels else None) for i, v in enumerate(kept)]
    items = [item for item, _ in found]
    both_images = len(items) == 2 and all(i["kind"] == "image" for i in items)
    chosen = mode or ("swipe" if both_images else "side")
    if chosen not in ("swipe", "side"):
        raise ValueError(f"mode must be swipe or side, not {mode!r}")
    if chosen == "swipe" and not both_images:
        raise ValueError("the swipe compares exactly two images; use mode='side'")
    return _widget_class()(items=items, mode=chosen, static_html=_fallback(found))


@functools.cache
def _widget_class() -> type[Any]:
    """The anywidget model class, built on first use so importing falnb stays light."""
    import anywidget
    import traitlets

    class CompareWidget(anywidget.AnyWidget):
        _esm = _STATIC / "compare.js"
        _css = _STATIC / "compare.css"
        items = traitlets.List(traitlets.Dict()).tag(sync=True)
        mode = traitlets.Unicode("side").tag(sync=True)
        position = traitlets.Float(50.0).tag(sync=True)
        """The swipe divider, in percent from the left."""
        static_html = traitlets.Unicode("")
        """What a saved notebook shows where widgets do not render (not sent to the view)."""

        def _repr_mimebundle_(self, **kwargs: Any) -> Any:
            # Front ends with widgets pick the view; the others (GitHub) this HTML.
            bundle = super()._repr_mimebundle_(**kwargs)
            data = bundle[0] if isinstance(bundle, tuple) else bundle
            if isinstance(data, dict):
                data["text/html"] = self.static_html
            return bundle

        def __repr__(self) -> str:
            return f"falnb compare: {len(self.items)} items ({self.mode})"

    return CompareWidget

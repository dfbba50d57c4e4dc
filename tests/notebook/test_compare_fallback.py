"""What a saved ``falnb.compare`` leaves for renderers without widgets (GitHub, nbconvert):
small stills of the items, sized by attributes, with their labels; the full media stay in
the view and are not carried a second time in the file."""

from __future__ import annotations

import base64
import io
import os

from PIL import Image
from test_static_renderers import Page, sanitize

import falnb


def noise(side: int) -> bytes:
    """A PNG that does not compress (megabytes at 1024x1024)."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_fallback_shows_small_labelled_stills_not_the_full_media() -> None:
    first, second = noise(1024), noise(1024)
    view = falnb.compare(first, second, labels=["seed 1", "seed 2"])
    data, _ = view._repr_mimebundle_()
    fallback = data["text/html"]
    assert len(first) + len(second) > 6_000_000
    assert len(fallback) < 200_000  # two stills, not the two 3 MB originals
    kept = Page(sanitize(fallback, data_images=True))
    assert [(i["alt"], i["width"]) for i in kept.pictures()] == [
        ("seed 1", "320"),
        ("seed 2", "320"),
    ]
    assert "seed 1" in kept.text
    still = kept.pictures()[0]["src"].split(",", 1)[1]
    width, height = Image.open(io.BytesIO(base64.b64decode(still))).size
    assert 320 <= width == height <= 640  # sharp at its shown width on 2x screens
    # The view itself still shows the originals.
    assert [item["src"] for item in view.items] == [
        f"data:image/png;base64,{base64.b64encode(data).decode()}" for data in (first, second)
    ]

"""A model of one's own, served as a fal endpoint by falnb's local server.

``me/posterize`` is a tiny numpy "model": it reduces ``image_url`` to ``levels`` colour levels
per channel. Importing this module registers it; then call it like any fal endpoint::

    import falnb
    import examples.my_models  # registers me/posterize

    result = falnb.subscribe("me/posterize", {"image_url": "data:image/png;base64,...",
                                              "levels": 3}, with_logs=True)

or serve it to other processes (and fal-client) with::

    falnb serve --app examples.my_models
"""

from __future__ import annotations

import base64
import io
import logging
from typing import Any

import httpx
import numpy as np
from PIL import Image

import falnb.local
from falnb.local import Context, validation_error

log = logging.getLogger(__name__)


def load_image(url: str) -> Image.Image:
    """An input image from a data URI or a URL (falnb uploads local images for you)."""
    if url.startswith("data:"):
        data = base64.b64decode(url.split(",", 1)[1])
    else:
        response = httpx.get(url, timeout=30.0)
        response.raise_for_status()
        data = response.content
    return Image.open(io.BytesIO(data)).convert("RGB")


@falnb.local.app("me/posterize")
def posterize(arguments: dict[str, Any], ctx: Context) -> Image.Image:
    """Posterizes image_url to `levels` colour levels per channel (default 4)."""
    url = arguments.get("image_url")
    if not isinstance(url, str):
        raise validation_error(("image_url", "Field required", "missing"))
    levels = arguments.get("levels", 4)
    if not isinstance(levels, int) or not 2 <= levels <= 256:
        raise validation_error(("levels", "Input should be an integer in 2..256", "value_error"))
    image = load_image(url)
    print(f"posterizing {image.width}x{image.height} to {levels} levels")  # noqa: T201 - goes to the status logs
    step = 255 / (levels - 1)
    pixels = np.asarray(image, dtype=np.float32)
    out = (np.round(pixels / step) * step).clip(0, 255).astype(np.uint8)
    ctx.log("done")
    return Image.fromarray(out)  # -> {"images": [File with width/height]}

"""``local/image-to-image``: restyles an image after a prompt, in fal's image-to-image schema.

Input: ``image_url`` (an uploaded file URL or a data URI), ``prompt``, ``strength`` (0-1,
default 0.95 as flux/dev/image-to-image), ``seed``, ``num_inference_steps``, ``num_images``,
``output_format``, optional ``image_size`` (default: the input's size).
Output: ``{images, timings, seed, has_nsfw_concepts, prompt}``.

The realtime handler takes one msgpack message per frame and answers with JPEG bytes
inline (no upload), as fal's realtime LCM apps do; see :func:`image_to_image_realtime`.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from PIL import Image

from falnb.local.registry import Context

from . import _args
from ._grade import to_uint8
from ._inputs import (
    IMAGE_OPTIONS,
    ImageSize,
    ImageUrl,
    Inputs,
    Integer,
    Number,
    Prompt,
    Seed,
    image_output,
)
from ._media import decode_image, encode_image, fetch_bytes, image_answer, image_file
from ._noise import Array
from ._prompt import rng_for
from ._restyle import Look, blend, look_for, to_float
from ._sampler import Grain, draw_grain, walk
from ._steps import Timer, steps

__all__ = ["INPUT", "OUTPUT", "image_to_image", "image_to_image_realtime"]

INPUT = Inputs(
    "ImageToImageInput",
    ImageUrl(),
    Prompt(),
    Number("strength", "How far to move from the input image", default=0.95, low=0.0, high=1.0),
    Integer("num_images", "How many images to make", default=1, low=1, high=4),
    Integer("num_inference_steps", "Denoising steps", default=28, low=1, high=50),
    Seed(),
    ImageSize(description="A preset name or {width, height}; absent: the input image's size"),
    *IMAGE_OPTIONS,
)
OUTPUT = image_output("ImageToImageOutput")

K = TypeVar("K")
V = TypeVar("V")


class _Newest(Generic[K, V]):
    """The newest few values by key (thread-safe): decoded pictures, a slider's fixed parts."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


@dataclass(frozen=True)
class _Fixed:
    """What a frame's picture, size, prompt, seed and steps fix, whatever the strength.

    A slider drag changes only the strength, so a realtime connection pays for these once.
    """

    source: Array
    look: Look
    noise: Array
    grain: Grain


# Decoded input images by URL (or by content hash), so slider drags are cheap.
_IMAGES: _Newest[str, Image.Image] = _Newest(16)
_FIXED: _Newest[tuple[str, tuple[int, int], str, int, int], _Fixed] = _Newest(4)


def _load(url: str | None, data: bytes | None) -> tuple[str, Image.Image]:
    """The input picture from raw bytes or a URL / data URI, through the cache, and its key."""
    if data is not None:
        key = "sha256:" + hashlib.sha256(data).hexdigest()
    else:
        assert url is not None
        # Data URIs can be megabytes: key them by digest, not by the string itself.
        key = (
            url
            if not url.startswith("data:")
            else "sha256u:" + hashlib.sha256(url.encode()).hexdigest()
        )
    image = _IMAGES.get(key)
    if image is None:
        image = (
            decode_image(data, "image")
            if data is not None
            else decode_image(fetch_bytes(url or ""))
        )
        _IMAGES.put(key, image)
    return key, image


def _size(arguments: dict[str, Any], image: Image.Image) -> tuple[int, int]:
    width, height = _args.image_size(arguments, image.size)
    # Keep within the app's limits; even sides keep JPEG chroma subsampling artefact-free.
    scale = min(1.0, _args.MAX_SIDE / max(width, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def _fix(source: Array, prompt: str, seed: int, num_steps: int) -> _Fixed:
    height, width = source.shape[:2]
    rng = rng_for(seed, prompt, salt=4)
    # Drawn in this order from one rng: the start's noise, then the sampler's grain.
    noise = rng.standard_normal((height, width), dtype=np.float32)[..., None]
    grain = draw_grain(rng, height, width, num_steps)
    for array in (source, noise, *grain):
        array.setflags(write=False)
    return _Fixed(source, look_for(source, prompt, seed), noise, grain)


def _render(
    fixed: _Fixed, strength: float, *, num_steps: int, ctx: Context | None
) -> np.ndarray[Any, np.dtype[np.uint8]]:
    source = fixed.source
    target = blend(source, fixed.look, strength)
    # Start from the source noised in proportion to strength, as img2img samplers do.
    start = source + fixed.noise * np.float32(0.15 * strength)
    indices = steps(ctx, num_steps) if ctx is not None else range(1, num_steps + 1)
    return to_uint8(walk(start, target, num_steps, fixed.grain, indices, churn=0.04 * strength))


def _frame(fixed: _Fixed, strength: float, num_steps: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """A realtime frame: :func:`_render`'s picture in closed form, in a third of its passes.

    Every step of the walk is linear in the fixed parts, so the frame is one weighted sum of
    them: the source, the look's soft light and scene, the start's noise and each step's
    grain, with weights that depend on the strength alone (and 255, folded in). It is the
    same picture up to float rounding, and as deterministic.
    """
    s = strength
    w = 0.35 * s  # the scene's share of the look, as blend() draws it
    # walk(): each step keeps (1 - rate) of the gap; after n steps, keep ** n of the start.
    keep = (0.5 / (num_steps + 1) ** 1.2) ** (1.0 / num_steps)
    left = keep**num_steps
    soft, scene = fixed.look
    scale = 255.0
    out: Array = fixed.source * np.float32(scale * ((1.0 - s) * (1.0 - left) + left))
    term = soft * np.float32(scale * (1.0 - w) * s * (1.0 - left))
    out += term
    np.multiply(scene, np.float32(scale * w * s * (1.0 - left)), out=term)
    out += term
    # The single-channel parts: the start's noise and the grain each step stirs in (none on
    # the last step), each faded by the steps after it; and to_uint8's rounding half.
    height, width = out.shape[:2]
    grey = fixed.noise[..., 0] * np.float32(scale * 0.15 * s * left)
    field, offsets = fixed.grain
    for index in range(1, num_steps):
        sigma = 0.04 * s * (1.0 - index / num_steps) * keep ** (num_steps - index)
        dy, dx = offsets[index]
        grey += field[dy : dy + height, dx : dx + width] * np.float32(scale * sigma)
    grey += np.float32(0.5)
    out += grey[..., None]
    np.clip(out, 0.5, scale + 0.5, out=out)
    pixels: np.ndarray[Any, np.dtype[np.uint8]] = out.astype(np.uint8)
    return pixels


def image_to_image(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Handler for ``local/image-to-image``."""
    values = INPUT.read(arguments, ctx)
    url, prompt, strength = values["image_url"], values["prompt"], values["strength"]
    num_images, num_steps = values["num_images"], values["num_inference_steps"]
    fmt, seed, sync_mode = values["output_format"], values["seed"], values["sync_mode"]

    timer = Timer()
    _, image = _load(url, None)
    source = to_float(image, _size(arguments, image))
    images = []
    for index in range(num_images):
        fixed = _fix(source, prompt, seed + index, num_steps)
        pixels = _render(fixed, strength, num_steps=num_steps, ctx=ctx)
        images.append(image_file(ctx, pixels, fmt, f"image_{index}", sync_mode=sync_mode))
    height, width = source.shape[:2]
    ctx.bill(num_images * width * height / 1e6)  # per megapixel of output
    return image_answer(images, timer.timings(), seed, prompt)


def image_to_image_realtime(arguments: dict[str, Any], _ctx: Context) -> dict[str, Any]:
    """One realtime frame: ``image`` (bytes) or ``image_url`` in; JPEG bytes out.

    Input also takes ``prompt``, ``strength`` (default 0.6), ``seed`` and
    ``num_inference_steps`` (default 2, as realtime LCM apps use few steps).
    """
    args = _args.Arguments(arguments)
    data = arguments.get("image")
    if data is not None and not isinstance(data, (bytes, bytearray)):
        args.invalid("image", "Input should be raw image bytes", "bytes_type")
    url = None if data is not None else args.read(_args.image_url, "")
    prompt = args.prompt()
    strength = args.number("strength", 0.6, 0.0, 1.0)
    num_steps = args.integer("num_inference_steps", 2, 1, 8)
    seed = args.seed()
    args.image_size((1, 1))  # checked now; the default (the input's size) is known once loaded
    args.check()

    timer = Timer()
    key, image = _load(url, bytes(data) if data is not None else None)
    size = _size(arguments, image)
    fixed_key = (key, size, prompt, seed, num_steps)
    fixed = _FIXED.get(fixed_key)
    if fixed is None:
        fixed = _fix(to_float(image, size), prompt, seed, num_steps)
        _FIXED.put(fixed_key, fixed)
    pixels = _frame(fixed, strength, num_steps)
    height, width = pixels.shape[:2]
    output: dict[str, Any] = {
        "images": [
            {
                "content": encode_image(pixels, "jpeg"),
                "content_type": "image/jpeg",
                "width": width,
                "height": height,
            }
        ],
        "seed": seed,
        "timings": timer.timings(),
    }
    if "request_id" in arguments:  # fal's JS client tags inputs; echo it so results match
        output["request_id"] = arguments["request_id"]
    return output

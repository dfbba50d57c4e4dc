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


Terms = tuple[Array, Array, Array]
"""A realtime frame by powers of the strength ``s``: it is ``P0 + s * P1 + s * s * P2``."""


# Decoded input images by URL (or by content hash), so slider drags are cheap.
_IMAGES: _Newest[str, Image.Image] = _Newest(16)
# A slider's frame terms by picture, size, prompt, seed and steps (its fixed parts, folded).
_TERMS: _Newest[tuple[str, tuple[int, int], str, int, int], Terms] = _Newest(4)


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


def _terms(fixed: _Fixed, num_steps: int) -> Terms:
    """:func:`_render`'s picture in closed form, as a polynomial in the strength.

    Every step of the walk is linear in the fixed parts, so the picture is one weighted sum
    of them: the source, the look's soft light and scene, the start's noise and each step's
    grain. Each weight is a polynomial of degree at most 2 in the strength, so the fixed
    parts fold into three pictures once per slider and a frame costs a handful of passes.
    255 and to_uint8's rounding half are folded in too.
    """
    # walk(): each step keeps (1 - rate) of the gap; after n steps, keep ** n of the start.
    keep = (0.5 / (num_steps + 1) ** 1.2) ** (1.0 / num_steps)
    left = keep**num_steps
    soft, scene = fixed.look
    scale = 255.0
    moved = np.float32(scale * (1.0 - left))  # how much of the blend's target the walk reaches
    # With blend()'s target, the source weighs 1 - (1 - left) s, the soft light
    # (1 - left) (s - 0.35 s^2) and the scene (1 - left) 0.35 s^2.
    p0: Array = fixed.source * np.float32(scale)
    p0 += np.float32(0.5)
    p1: Array = np.subtract(soft, fixed.source)
    p1 *= moved
    p2: Array = np.subtract(scene, soft)
    p2 *= np.float32(0.35) * moved
    # The single-channel parts, all linear in s: the start's noise and the grain each step
    # stirs in (none on the last step), each faded by the steps after it.
    height, width = p0.shape[:2]
    grey = fixed.noise[..., 0] * np.float32(scale * 0.15 * left)
    field, offsets = fixed.grain
    for index in range(1, num_steps):
        sigma = 0.04 * (1.0 - index / num_steps) * keep ** (num_steps - index)
        dy, dx = offsets[index]
        grey += field[dy : dy + height, dx : dx + width] * np.float32(scale * sigma)
    p1 += grey[..., None]
    for array in (p0, p1, p2):
        array.setflags(write=False)
    return p0, p1, p2


def _frame(terms: Terms, strength: float) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """A realtime frame from its :func:`_terms`: the same picture as :func:`_render` up to
    float rounding, and as deterministic, in six passes over the image."""
    p0, p1, p2 = terms
    s = np.float32(strength)
    out: Array = p2 * s  # Horner's form: one buffer, no temporaries
    out += p1
    out *= s
    out += p0
    np.clip(out, 0.5, 255.5, out=out)
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
    terms_key = (key, size, prompt, seed, num_steps)
    terms = _TERMS.get(terms_key)
    if terms is None:
        terms = _terms(_fix(to_float(image, size), prompt, seed, num_steps), num_steps)
        _TERMS.put(terms_key, terms)
    pixels = _frame(terms, strength)
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

"""Restyling a picture after a prompt: a palette gradient map, the prompt's scene, light.

Heavy, input-independent parts (the painted scene, the colour ramp) are cached per prompt,
seed and size, so a realtime slider drag only pays for the per-frame blend.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from ._noise import Array
from ._prompt import style_for
from .text_to_image import paint

__all__ = ["Look", "blend", "look_for", "restyle", "scene_for", "to_float"]

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def to_float(image: Image.Image, size: tuple[int, int] | None = None) -> Array:
    """An RGB PIL image (resized to ``size`` if given) as floats in ``0..1``."""
    if size is not None and image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    return np.asarray(image.convert("RGB"), dtype=np.float32) * (1.0 / 255.0)


@functools.lru_cache(maxsize=8)
def scene_for(prompt: str, seed: int, width: int, height: int) -> Array:
    """The prompt's painted scene at this size (cached; treat as read-only)."""
    scene = paint(prompt, seed, width, height)
    scene.setflags(write=False)
    return scene


@functools.lru_cache(maxsize=32)
def _ramp(prompt: str, seed: int) -> Array:
    """256 colours from the palette's darkest to its brightest: a gradient map."""
    pal = style_for(prompt, seed).palette
    stops = np.array([pal.near, pal.far, pal.sky_mid, pal.horizon, pal.light], dtype=np.float32)
    order = np.argsort(stops @ _LUMA, kind="stable")
    stops = stops[order]
    positions = np.linspace(0.0, 1.0, len(stops))
    grid = np.linspace(0.0, 1.0, 256)
    ramp = np.stack([np.interp(grid, positions, stops[:, k]) for k in range(3)], axis=1)
    ramp = ramp.astype(np.float32)
    ramp.setflags(write=False)
    return ramp


Look = tuple[Array, Array]
"""What a prompt and seed make of one picture at any strength: its soft-lit tone and the scene."""


def look_for(source: Array, prompt: str, seed: int) -> Look:
    """The strength-independent part of :func:`restyle` (a realtime slider keeps it per picture)."""
    height, width = source.shape[:2]
    luma = source @ _LUMA
    index = np.clip(luma * 255.0 + 0.5, 0, 255).astype(np.uint8)
    toned: Array = _ramp(prompt, seed)[index]
    # Keep some of the source's own colour so subjects stay recognisable.
    styled = toned * 0.7 + source * 0.3
    scene = scene_for(prompt, seed, width, height)
    # Soft-light the scene over the picture: its light and shapes show through, gently.
    soft: Array = styled + (scene - 0.5) * styled * (1.0 - styled) * 2.0
    soft.setflags(write=False)
    return soft, scene


def restyle(source: Array, prompt: str, seed: int, strength: float) -> Array:
    """``source`` pulled towards the prompt's look; ``strength`` 0 keeps it, 1 goes furthest."""
    return blend(source, look_for(source, prompt, seed), strength)


def blend(source: Array, look: Look, strength: float) -> Array:
    """:func:`restyle` from its look: the per-frame part (in place where the result is ours)."""
    soft, scene = look
    weight = np.float32(0.35 * strength)
    # out = source + (soft * (1 - w) + scene * w - source) * strength, the same operations
    # in the same order, written into one buffer.
    out: Array = soft * (np.float32(1.0) - weight)
    out += scene * weight
    out -= source
    out *= np.float32(strength)
    out += source
    return out

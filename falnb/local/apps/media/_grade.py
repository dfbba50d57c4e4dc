"""Mood grading: haze, bloom, softness, contrast, saturation, vignette and grain."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from ._noise import Array
from ._prompt import Style

__all__ = ["blur", "grade", "to_uint8"]

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def to_uint8(img: Array) -> np.ndarray[Any, np.dtype[np.uint8]]:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def blur(img: Array, radius: float, scale: int = 1) -> Array:
    """Gaussian blur through PIL (fast, deterministic), optionally at ``1/scale`` resolution."""
    h, w = img.shape[:2]
    pil = Image.fromarray(to_uint8(img), "RGB")
    if scale > 1:
        pil = pil.resize((max(1, w // scale), max(1, h // scale)), Image.Resampling.BILINEAR)
    pil = pil.filter(ImageFilter.GaussianBlur(radius / scale))
    if scale > 1:
        pil = pil.resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(pil, dtype=np.float32) * (1.0 / 255.0)


def grade(img: Array, style: Style, rng: np.random.Generator, grain: float = 1.0) -> Array:
    """Apply the style's mood to a rendered scene; returns a new float image."""
    mood = style.mood
    h, w = img.shape[:2]
    ys = ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None]
    if mood.haze:
        near_horizon = np.exp(-(((ys - style.horizon) / 0.18) ** 2)) * mood.haze
        img = img + (np.asarray(style.palette.horizon, np.float32) - img) * near_horizon[..., None]
    if mood.blur:
        img = img * 0.35 + blur(img, mood.blur * h) * 0.65
    if mood.bloom:
        bright = np.clip(img - 0.55, 0.0, 1.0) * 2.0
        img = img + blur(bright, 0.02 * h, scale=4) * mood.bloom
    img = img * mood.exposure
    luma = img @ _LUMA
    mean = float(luma.mean())
    img = (img - mean) * mood.contrast + mean
    luma = (luma - mean) * mood.contrast + mean
    img = luma[..., None] + (img - luma[..., None]) * mood.saturation
    xs = ((np.arange(w, dtype=np.float32) + 0.5) / w)[None, :]
    radius2 = (xs - 0.5) ** 2 + (ys - 0.5) ** 2
    img = img * (1.0 - 0.45 * radius2)[..., None]
    if mood.rain:
        img = _rain(img, rng, mood.rain)
    if grain and mood.grain:
        noise = rng.standard_normal((h, w), dtype=np.float32) * (mood.grain * grain)
        img = img + noise[..., None]
    return img.astype(np.float32, copy=False)


def _rain(img: Array, rng: np.random.Generator, amount: float) -> Array:
    """Slanted streaks: sparse dots stretched tall, then sheared row by row."""
    h, w = img.shape[:2]
    dots = (rng.random((max(1, h // 14), w), dtype=np.float32) > 0.992).astype(np.float32)
    streaks = np.asarray(
        Image.fromarray(dots * 255.0).convert("L").resize((w, h), Image.Resampling.NEAREST),
        dtype=np.float32,
    ) * (1.0 / 255.0)
    shear = (np.arange(h)[:, None] * 0.18).astype(np.int64)
    cols = (np.arange(w)[None, :] + shear) % w
    streaks = streaks[np.arange(h)[:, None], cols]
    rained: Array = img + (0.75 - img) * (streaks * 0.22 * amount)[..., None]
    return rained

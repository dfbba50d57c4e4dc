"""A toy "sampler": walks a noisy start towards the painted target over N steps.

It gives ``num_inference_steps`` the effects users expect from a diffusion model: each step
costs time, and few steps leave visible grain. Noise comes from the caller's seeded rng.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ._noise import Array

__all__ = ["Grain", "draw_grain", "sample", "walk"]


Grain = tuple[Array, "np.ndarray[Any, np.dtype[np.int64]]"]
"""The noise a walk stirs in: one field larger than the image, and each step's window offset."""

_PAD = 97


def draw_grain(rng: np.random.Generator, height: int, width: int, num_steps: int) -> Grain:
    """The noise :func:`walk` stirs in, drawn from ``rng`` (a caller may keep it for reuse)."""
    # One noise field a little larger than the image, read through a window that jumps to a
    # random offset each step: fresh noise per step for the price of generating it once.
    # (Small steady shifts would correlate the steps and draw streaks.)
    field = rng.standard_normal((height + _PAD, width + _PAD), dtype=np.float32)
    offsets = rng.integers(0, _PAD, size=(num_steps + 1, 2))
    return field, offsets


def sample(
    start: Array,
    target: Array,
    num_steps: int,
    rng: np.random.Generator,
    step_indices: Iterable[int],
    *,
    churn: float = 0.06,
) -> Array:
    """Return ``start`` moved onto ``target``; ``step_indices`` yields ``1..num_steps``.

    Each step closes a fixed fraction of the gap and, like an ancestral sampler, stirs in
    fresh noise that fades to nothing by the last step. What is left of the start's noise
    after N steps is about ``0.5 / (N + 1) ** 1.2``.
    """
    height, width = target.shape[:2]
    grain = draw_grain(rng, height, width, num_steps)
    return walk(start, target, num_steps, grain, step_indices, churn=churn)


def walk(
    start: Array,
    target: Array,
    num_steps: int,
    grain: Grain,
    step_indices: Iterable[int],
    *,
    churn: float = 0.06,
) -> Array:
    """:func:`sample` with its noise already drawn (a realtime frame reuses its seed's grain)."""
    height, width = target.shape[:2]
    field, offsets = grain
    latent: Array = start.copy()
    gap = np.empty_like(latent)
    residual = 0.5 / (num_steps + 1) ** 1.2
    rate = np.float32(1.0 - residual ** (1.0 / num_steps))
    for index in step_indices:
        # latent += (target - latent) * rate, in place: a frame allocates no new images.
        np.subtract(target, latent, out=gap)
        gap *= rate
        latent += gap
        sigma = np.float32(churn * (1.0 - index / num_steps))
        if sigma:
            dy, dx = offsets[index]
            latent += (field[dy : dy + height, dx : dx + width] * sigma)[..., None]
    return latent

"""Smooth seeded noise in one and two dimensions, vectorised (no per-pixel Python)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

__all__ = ["Array", "Noise1D", "fbm2d", "smoothstep"]

# Float images and fields; float32 at run time (numpy's stubs can't follow dtypes through
# arithmetic, so the alias doesn't try).
Array = np.ndarray[Any, np.dtype[Any]]


def smoothstep(edge0: float, edge1: float, x: Array) -> Array:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32, copy=False)


class Noise1D:
    """Fractal value noise on the real line, periodic over ``cells`` lattice steps.

    Being a function of continuous ``x`` (not a sampled array) lets a video pan across it.
    """

    def __init__(self, rng: np.random.Generator, cells: int = 256, octaves: int = 5) -> None:
        self._cells = cells
        self._octaves = octaves
        self._lattice = rng.uniform(-1.0, 1.0, (octaves, cells)).astype(np.float32)

    def __call__(self, x: Array, frequency: float = 1.0, ridged: bool = False) -> Array:
        total = np.zeros_like(x, dtype=np.float32)
        norm = 0.0
        amplitude = 1.0
        for octave in range(self._octaves):
            position = x * frequency * (2.0**octave)
            base = np.floor(position)
            frac = (position - base).astype(np.float32)
            i0 = base.astype(np.int64) % self._cells
            i1 = (i0 + 1) % self._cells
            lattice = self._lattice[octave]
            w = frac * frac * (3.0 - 2.0 * frac)
            value = lattice[i0] * (1.0 - w) + lattice[i1] * w
            if ridged:
                value = 1.0 - 2.0 * np.abs(value)
            total += amplitude * value
            norm += amplitude
            amplitude *= 0.5
        return (total / norm).astype(np.float32)


def fbm2d(
    rng: np.random.Generator,
    width: int,
    height: int,
    cells: tuple[int, int] = (6, 4),
    octaves: int = 4,
) -> Array:
    """``height x width`` fractal noise in ``0..1``: random grids upsampled bicubically by PIL."""
    total = np.zeros((height, width), dtype=np.float32)
    amplitude, norm = 1.0, 0.0
    cols, rows = cells
    for _ in range(octaves):
        grid = rng.random((rows + 1, cols + 1), dtype=np.float32)
        layer = Image.fromarray(grid, "F").resize((width, height), Image.Resampling.BICUBIC)
        total += amplitude * np.asarray(layer, dtype=np.float32)
        norm += amplitude
        amplitude *= 0.5
        cols, rows = cols * 2, rows * 2
    field: Array = np.clip(total / norm, 0.0, 1.0)
    return field

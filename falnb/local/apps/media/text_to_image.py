"""``local/text-to-image``: a procedural painter in fal's text-to-image schema (flux/dev's).

Input: ``prompt`` (required), ``image_size``, ``num_images`` (1-4), ``seed``,
``num_inference_steps`` (1-50), ``output_format``, ``sync_mode``; fal's other flux fields
(``guidance_scale``, ``enable_safety_checker``, ``acceleration``) are accepted and ignored.
Output: ``{images, timings, seed, has_nsfw_concepts, prompt}``. Image ``i`` of a request
uses seed ``seed + i``, as fal's batched models do, so any single image can be re-made.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from falnb.local.registry import Context

from ._grade import grade, to_uint8
from ._inputs import IMAGE_OPTIONS, ImageSize, Inputs, Integer, Prompt, Seed, image_output
from ._media import image_answer, image_file
from ._noise import Array, fbm2d
from ._prompt import rng_for, style_for
from ._sampler import sample
from ._scene import render
from ._steps import Timer, steps

__all__ = ["INPUT", "OUTPUT", "generate", "paint", "text_to_image"]

INPUT = Inputs(
    "TextToImageInput",
    Prompt(),
    ImageSize(default="landscape_4_3"),
    Integer("num_images", "How many images to make", default=1, low=1, high=4),
    Seed(),
    Integer("num_inference_steps", "Denoising steps", default=28, low=1, high=50),
    *IMAGE_OPTIONS,
)
OUTPUT = image_output("TextToImageOutput")


def paint(prompt: str, seed: int, width: int, height: int) -> Array:
    """The finished (graded) picture for ``prompt`` and ``seed``, as floats in ``0..1``."""
    style = style_for(prompt, seed)
    return grade(render(style, width, height), style, rng_for(seed, prompt, salt=2))


def generate(
    ctx: Context, prompt: str, seed: int, width: int, height: int, *, num_steps: int
) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """One image, "denoised" over ``num_steps`` logged steps (few steps leave some grain)."""
    target = paint(prompt, seed, width, height)
    noise_rng = rng_for(seed, prompt, salt=3)
    latent = np.repeat(fbm2d(noise_rng, width, height, cells=(4, 3))[..., None], 3, axis=2)
    latent += noise_rng.standard_normal((height, width, 3), dtype=np.float32) * 0.25
    latent = sample(latent, target, num_steps, noise_rng, steps(ctx, num_steps))
    return to_uint8(latent)


def text_to_image(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Handler for ``local/text-to-image``."""
    values = INPUT.read(arguments, ctx)
    prompt, (width, height), seed = values["prompt"], values["image_size"], values["seed"]
    num_images, num_steps = values["num_images"], values["num_inference_steps"]
    fmt, sync_mode = values["output_format"], values["sync_mode"]

    timer = Timer()
    images = []
    for index in range(num_images):
        pixels = generate(ctx, prompt, seed + index, width, height, num_steps=num_steps)
        images.append(image_file(ctx, pixels, fmt, f"image_{index}", sync_mode=sync_mode))
    ctx.bill(num_images)  # per image, as flux
    return image_answer(images, timer.timings(), seed, prompt)

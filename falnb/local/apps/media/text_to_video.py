"""``local/text-to-video``: an animated scene as an H.264 mp4, in fal's ``{video: File}`` schema.

Input: ``prompt`` (required), ``seed``, ``duration`` (seconds, 1-10, number or string as
kling's ``"5"``; default 3), ``aspect_ratio`` (``16:9`` default, ``9:16``, ``1:1``),
``fps`` (8-30, default 12), optional ``image_size`` overriding the aspect ratio.
Output: ``{video: File, seed, timings, prompt}``. Encoded with PyAV's bundled libx264
(yuv420p, even sides); frames are logged as ``step i/N`` for progress bars.
"""

from __future__ import annotations

import io
from typing import Any

import av
import numpy as np

from falnb.local.registry import Context

from . import _args
from ._grade import grade, to_uint8
from ._media import deliver
from ._prompt import rng_for, style_for
from ._scene import render
from ._steps import Timer, steps

__all__ = ["encode_mp4", "text_to_video"]

KNOWN_FIELDS = frozenset(
    {"prompt", "seed", "duration", "aspect_ratio", "fps", "image_size", "negative_prompt",
     "cfg_scale", "sync_mode"}
)  # fmt: skip
_ASPECTS = {"16:9": (512, 288), "9:16": (288, 512), "1:1": (384, 384)}


def encode_mp4(frames: list[np.ndarray[Any, np.dtype[np.uint8]]], fps: int) -> bytes:
    """H.264 (yuv420p) in mp4; single-threaded with fixed settings so bytes are reproducible."""
    height, width = frames[0].shape[:2]
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.thread_count = 1
        stream.options = {"crf": "23", "preset": "veryfast", "tune": "film"}
        for pixels in frames:
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def _size(args: _args.Arguments) -> tuple[int, int]:
    aspect = args.arguments.get("aspect_ratio")
    if aspect is not None and aspect not in _ASPECTS:
        args.invalid("aspect_ratio", "Input should be '16:9', '9:16' or '1:1'", "literal_error")
        aspect = None
    width, height = args.image_size(_ASPECTS[aspect or "16:9"])
    if max(width, height) > 1920:
        args.invalid("image_size", "Video sides should be at most 1920", "range_error")
    return max(2, width // 2 * 2), max(2, height // 2 * 2)  # yuv420p needs even sides


def text_to_video(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Handler for ``local/text-to-video``."""
    args = _args.Arguments(arguments)
    prompt = args.prompt()
    seed = args.seed()
    duration = args.number("duration", 3.0, 1.0, 10.0)
    fps = args.integer("fps", 12, 8, 30)
    width, height = _size(args)
    sync_mode = args.flag("sync_mode")
    args.check()
    _args.warn_unknown(arguments, KNOWN_FIELDS, ctx)

    timer = Timer()
    style = style_for(prompt, seed)
    count = max(1, round(duration * fps))
    frames = []
    for index in steps(ctx, count):
        t = (index - 1) / fps
        # Grain from a per-frame seed: it shimmers like film, yet the video stays reproducible.
        grain_rng = rng_for(seed, prompt, salt=100 + index)
        frames.append(to_uint8(grade(render(style, width, height, t), style, grain_rng, 0.5)))
    data = encode_mp4(frames, fps)
    video = deliver(ctx, data, "video/mp4", "output.mp4", sync_mode=sync_mode)
    ctx.bill(count / fps)  # per second of the video made (its frames), not of the asked duration
    return {"video": video, "seed": seed, "timings": timer.timings(), "prompt": prompt}

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

from ._grade import grade, to_uint8
from ._inputs import (
    Choice,
    Flag,
    Ignored,
    ImageSize,
    Inputs,
    Integer,
    Number,
    Prompt,
    Seed,
    media_output,
)
from ._media import deliver
from ._prompt import rng_for, style_for
from ._scene import render
from ._steps import Timer, steps

__all__ = ["INPUT", "OUTPUT", "encode_mp4", "text_to_video"]

_ASPECTS = {"16:9": (512, 288), "9:16": (288, 512), "1:1": (384, 384)}
MAX_VIDEO_SIDE = 1920

INPUT = Inputs(
    "TextToVideoInput",
    Prompt(),
    Seed(),
    Number("duration", "Seconds of video", default=3.0, low=1.0, high=10.0, numeric_text=True),
    Choice("aspect_ratio", "The frame's shape", choices=tuple(_ASPECTS), default="16:9"),
    Integer("fps", "Frames per second", default=12, low=8, high=30),
    ImageSize(
        description="{width, height} or a preset name; overrides aspect_ratio",
        max_side=MAX_VIDEO_SIDE,
    ),
    Flag("sync_mode", "Return the video as a data URI instead of a CDN URL"),
    Ignored("negative_prompt", type="string"),
    Ignored("cfg_scale"),
)
OUTPUT = media_output("TextToVideoOutput", "video")


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


def text_to_video(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Handler for ``local/text-to-video``."""
    values = INPUT.read(arguments, ctx)
    prompt, seed, duration, fps = (values[k] for k in ("prompt", "seed", "duration", "fps"))
    width, height = values["image_size"] or _ASPECTS[values["aspect_ratio"]]
    width, height = max(2, width // 2 * 2), max(2, height // 2 * 2)  # yuv420p: even sides
    sync_mode = values["sync_mode"]

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

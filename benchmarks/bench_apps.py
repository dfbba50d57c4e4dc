"""Timings of falnb's built-in local media apps (figures, not pass/fail).

Run: ``.venv/bin/python benchmarks/bench_apps.py [--frames N]``. Prints text-to-image
1024x768 time, the realtime image-to-image 512x512 per-frame median and p95 (a slider drag:
the same input, strength changing every frame), video generation+encode time, audio time.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from falnb.local.apps.media._grade import to_uint8
from falnb.local.apps.media.image_to_image import image_to_image_realtime
from falnb.local.apps.media.text_to_audio import text_to_audio
from falnb.local.apps.media.text_to_image import paint, text_to_image
from falnb.local.apps.media.text_to_video import text_to_video
from falnb.local.files import FileStore
from falnb.local.registry import Context


def context(store: FileStore) -> Context:
    return Context(
        request_id="bench",
        endpoint_id="local/bench",
        log_sink=lambda _message, _level: None,
        store_sink=lambda data, ctype, name: dict(store.put(data, ctype, name).as_file("x")),
    )


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=60, help="realtime frames to time")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as root:
        ctx = context(FileStore(Path(root)))
        t2i = {"prompt": "a calm sunset over mountains and a lake", "seed": 1}
        timed(text_to_image, {**t2i, "image_size": "square"}, ctx)  # warm up imports, caches
        for steps in (4, 28):
            seconds = timed(text_to_image, {**t2i, "num_inference_steps": steps}, ctx)
            print(f"text-to-image 1024x768, {steps:2d} steps: {seconds * 1000:7.0f} ms")

        source = Image.fromarray(to_uint8(paint("green forest by a lake", 5, 512, 512)))
        buffer = io.BytesIO()
        source.save(buffer, "JPEG", quality=90)
        frame = {"image": buffer.getvalue(), "prompt": "neon night", "seed": 3}
        first = timed(image_to_image_realtime, {**frame, "strength": 0.5}, ctx)
        times = sorted(
            timed(image_to_image_realtime, {**frame, "strength": i / options.frames}, ctx)
            for i in range(options.frames)
        )
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        print(
            f"image-to-image realtime 512x512: first frame {first * 1000:.0f} ms, then "
            f"median {statistics.median(times) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms "
            f"over {len(times)} frames"
        )

        seconds = timed(text_to_video, {"prompt": "neon city by the sea", "seed": 1}, ctx)
        print(f"text-to-video 512x288, 3 s at 12 fps (render + H.264 encode): {seconds:.2f} s")
        seconds = timed(text_to_audio, {"prompt": "calm ocean", "seed": 1, "duration": 10}, ctx)
        print(f"text-to-audio 10 s WAV: {seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()

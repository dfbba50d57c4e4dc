"""local/image-to-image: data URIs and loopback URLs, strength, realtime frames, 422s."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
import pytest
from PIL import Image

from falnb.local.apperror import AppError
from falnb.local.apps.media.image_to_image import image_to_image, image_to_image_realtime
from tests.kit import plain_http


def make_png(width: int = 80, height: int = 60) -> bytes:
    """A gradient with a bright square: structure the restyle should keep."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 90)], axis=2)
    pixels[10:30, 20:40] = 240
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(out, "PNG")
    return out.getvalue()


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


@pytest.fixture
def file_server() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server with one PNG at /input.png; yields (base url, paths requested)."""
    body = make_png()
    requested: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            if self.path != "/input.png":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with plain_http(Handler) as base_url:
        yield base_url, requested


def decode(data: bytes) -> np.ndarray[Any, Any]:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)


def test_data_uri_in_restyled_image_out(harness: Any) -> None:
    ctx = harness.context("local/image-to-image")
    out = image_to_image(
        {"image_url": data_uri(make_png()), "prompt": "neon night", "seed": 4}, ctx
    )
    assert set(out) == {"images", "timings", "seed", "has_nsfw_concepts", "prompt"}
    image = out["images"][0]
    assert (image["width"], image["height"]) == (80, 60)  # the input's size by default
    restyled = decode(harness.read(image))
    assert restyled.shape == (60, 80, 3)
    assert np.abs(restyled - decode(make_png())).mean() > 10  # visibly restyled
    assert "step 28/28" in harness.messages()


def test_deterministic_per_seed(harness: Any) -> None:
    uri = data_uri(make_png())

    def once(seed: int) -> bytes:
        args = {"image_url": uri, "prompt": "golden", "seed": seed, "num_inference_steps": 3}
        out = image_to_image(args, harness.context())
        return harness.read(out["images"][0])

    assert once(1) == once(1)
    assert once(1) != once(2)


def test_strength_controls_how_far_it_moves(harness: Any) -> None:
    uri = data_uri(make_png())
    source = decode(make_png())

    def distance(strength: float) -> float:
        args = {"image_url": uri, "prompt": "red", "seed": 1, "strength": strength,
                "output_format": "png"}  # fmt: skip
        out = image_to_image(args, harness.context())
        return float(np.abs(decode(harness.read(out["images"][0])) - source).mean())

    low, high = distance(0.1), distance(0.9)
    assert low < 8
    assert high > low * 3


def test_http_url_on_loopback_and_image_size(harness: Any, file_server: Any) -> None:
    base, requested = file_server
    args = {"image_url": f"{base}/input.png", "prompt": "ocean", "seed": 2,
            "image_size": {"width": 40, "height": 30}, "num_inference_steps": 2}  # fmt: skip
    out = image_to_image(args, harness.context())
    assert requested == ["/input.png"]
    assert Image.open(io.BytesIO(harness.read(out["images"][0]))).size == (40, 30)


def test_unreachable_or_missing_file_is_a_422(harness: Any, file_server: Any) -> None:
    base, _ = file_server
    with pytest.raises(AppError) as caught:
        image_to_image({"image_url": f"{base}/missing.png", "prompt": "x"}, harness.context())
    assert caught.value.status_code == 422
    assert caught.value.detail[0]["loc"] == ["body", "image_url"]
    assert "404" in caught.value.detail[0]["msg"]


@pytest.mark.parametrize(
    ("arguments", "loc"),
    [
        ({"prompt": "x"}, ["body", "image_url"]),
        ({"image_url": "ftp://host/file.png", "prompt": "x"}, ["body", "image_url"]),
        (
            {"image_url": "data:image/png;base64,bm90IGFuIGltYWdl", "prompt": "x"},
            ["body", "image_url"],
        ),
        (
            {"image_url": "data:image/png;base64,", "strength": 2, "prompt": "x"},
            ["body", "strength"],
        ),
        ({"image_url": "data:image/png;base64,"}, ["body", "prompt"]),
    ],
)
def test_invalid_input_is_a_422(harness: Any, arguments: dict[str, Any], loc: list[str]) -> None:
    with pytest.raises(AppError) as caught:
        image_to_image(arguments, harness.context())
    assert caught.value.status_code == 422
    assert caught.value.detail[0]["loc"] == loc


def test_realtime_frame_returns_jpeg_bytes_inline(harness: Any) -> None:
    ctx = harness.context()
    out = image_to_image_realtime(
        {"image": make_png(), "prompt": "sunset", "strength": 0.5, "seed": 9, "request_id": "a1"},
        ctx,
    )
    assert set(out) == {"images", "seed", "timings", "request_id"}
    assert out["request_id"] == "a1"
    frame = out["images"][0]
    assert frame["content_type"] == "image/jpeg"
    assert frame["content"].startswith(b"\xff\xd8\xff")
    assert (frame["width"], frame["height"]) == (80, 60)
    assert list(harness.store.root.iterdir()) == []  # nothing uploaded
    again = image_to_image_realtime(
        {"image": make_png(), "prompt": "sunset", "strength": 0.5, "seed": 9}, ctx
    )
    assert again["images"][0]["content"] == frame["content"]


def test_realtime_fetches_a_url_once_across_frames(harness: Any, file_server: Any) -> None:
    base, requested = file_server
    url = f"{base}/input.png"
    ctx = harness.context()
    frames = [
        image_to_image_realtime({"image_url": url, "prompt": "blue", "strength": s, "seed": 1}, ctx)
        for s in (0.2, 0.4, 0.6)
    ]
    assert requested == ["/input.png"]  # decoded once, then served from the cache
    contents = {frame["images"][0]["content"] for frame in frames}
    assert len(contents) == 3  # each strength is a different picture


def test_a_drag_frame_is_the_frame_a_fresh_connection_draws(
    harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slider drag keeps each picture's strength-free parts; they must not leak across
    prompts, seeds, steps or pictures, nor make a frame differ from an uncached one."""
    from falnb.local.apps.media import image_to_image as module

    ctx = harness.context()
    picture, other = make_png(), make_png(64, 48)

    def frame(image: bytes, **extra: Any) -> bytes:
        arguments = {"image": image, "prompt": "sunset", "strength": 0.5, "seed": 9, **extra}
        content: bytes = image_to_image_realtime(arguments, ctx)["images"][0]["content"]
        return content

    variants: list[dict[str, Any]] = [
        {},
        {"prompt": "a wolf at night"},
        {"seed": 10},
        {"num_inference_steps": 4},
        {"strength": 0.9},
    ]
    fresh = []
    for extra in variants:
        monkeypatch.setattr(module, "_TERMS", module._Newest(4))  # a fresh server process
        fresh.append(frame(picture, **extra))
    assert len(set(fresh)) == len(variants)  # every knob changes the picture
    monkeypatch.setattr(module, "_TERMS", module._Newest(4))
    frame(other)
    for extra, expected in zip(variants * 2, fresh * 2, strict=True):  # one long drag
        assert frame(picture, **extra) == expected
    assert frame(other) != fresh[0]


@pytest.mark.parametrize("num_steps", [1, 2, 5, 8])
def test_a_realtime_frame_is_the_step_by_step_picture_in_closed_form(num_steps: int) -> None:
    """Realtime frames fold the fixed parts into a polynomial in the strength (three pictures,
    once per slider) instead of walking the steps; the picture is the walk's, up to float
    rounding."""
    from falnb.local.apps.media import image_to_image as module
    from falnb.local.apps.media._restyle import to_float

    image = Image.open(io.BytesIO(make_png(96, 64))).convert("RGB")
    fixed = module._fix(to_float(image, (96, 64)), "a fox at dusk", 7, num_steps)
    terms = module._terms(fixed, num_steps)
    for strength in (0.0, 0.25, 0.6, 1.0):
        walked = module._render(fixed, strength, num_steps=num_steps, ctx=None).astype(int)
        summed = module._frame(terms, strength).astype(int)
        assert summed.shape == walked.shape
        difference = np.abs(summed - walked)
        assert difference.max() <= 1, (strength, difference.max())
        assert (difference == 0).mean() > 0.99, strength  # a rounding tie here and there
    # Not vacuous: the strength moves the picture far more than the rounding does.
    apart = module._frame(terms, 0.9).astype(int) - module._frame(terms, 0.1)
    assert np.abs(apart).mean() > 5

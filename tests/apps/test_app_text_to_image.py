"""local/text-to-image: schema, sizes, formats, determinism, steps, cancellation, 422s."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from falnb.local.apperror import AppError
from falnb.local.apps.media import ENDPOINTS
from falnb.local.apps.media.text_to_image import text_to_image

SMALL = {"width": 96, "height": 64}


def run(harness: Any, **arguments: Any) -> dict[str, Any]:
    return text_to_image(arguments, harness.context("local/text-to-image"))


def image_bytes(harness: Any, output: dict[str, Any], index: int = 0) -> bytes:
    return harness.read(output["images"][index])


def test_endpoints_are_registered_under_local() -> None:
    ids = {endpoint.endpoint_id for endpoint in ENDPOINTS}
    assert ids == {
        "local/text-to-image",
        "local/image-to-image",
        "local/text-to-video",
        "local/text-to-audio",
        "local/llm",
    }


def test_output_follows_fal_schema(harness: Any) -> None:
    out = run(harness, prompt="a red sun over the ocean", image_size=SMALL, seed=7)
    assert set(out) == {"images", "timings", "seed", "has_nsfw_concepts", "prompt"}
    assert out["seed"] == 7
    assert out["prompt"] == "a red sun over the ocean"
    assert out["has_nsfw_concepts"] == [False]
    assert isinstance(out["timings"]["inference"], float)
    image = out["images"][0]
    assert set(image) >= {"url", "content_type", "file_name", "file_size", "width", "height"}
    assert (image["width"], image["height"]) == (96, 64)
    assert image["content_type"] == "image/jpeg"
    assert image["file_size"] == len(image_bytes(harness, out))


def test_same_seed_same_bytes_other_seed_other_image(harness: Any) -> None:
    first = image_bytes(harness, run(harness, prompt="calm lake", image_size=SMALL, seed=1))
    again = image_bytes(harness, run(harness, prompt="calm lake", image_size=SMALL, seed=1))
    other = image_bytes(harness, run(harness, prompt="calm lake", image_size=SMALL, seed=2))
    assert first == again
    assert first != other


def test_prompt_changes_the_picture(harness: Any) -> None:
    red = run(harness, prompt="red", image_size=SMALL, seed=3, output_format="png")
    blue = run(harness, prompt="blue", image_size=SMALL, seed=3, output_format="png")
    mean_red = Image.open(io.BytesIO(image_bytes(harness, red))).convert("RGB").resize((1, 1))
    mean_blue = Image.open(io.BytesIO(image_bytes(harness, blue))).convert("RGB").resize((1, 1))
    r1, _, b1 = mean_red.getpixel((0, 0))  # type: ignore[misc]
    r2, _, b2 = mean_blue.getpixel((0, 0))  # type: ignore[misc]
    assert r1 > b1
    assert b2 > r2


def test_missing_seed_is_chosen_and_returned(harness: Any) -> None:
    out = run(harness, prompt="stars", image_size=SMALL)
    assert isinstance(out["seed"], int)
    assert 0 <= out["seed"] < 2**31
    pinned = run(harness, prompt="stars", image_size=SMALL, seed=out["seed"])
    assert image_bytes(harness, out) == image_bytes(harness, pinned)


@pytest.mark.parametrize(
    ("preset", "size"),
    [
        ("square_hd", (1024, 1024)),
        ("square", (512, 512)),
        ("portrait_4_3", (768, 1024)),
        ("portrait_16_9", (576, 1024)),
        ("landscape_4_3", (1024, 768)),
        ("landscape_16_9", (1024, 576)),
    ],
)
def test_image_size_presets(harness: Any, preset: str, size: tuple[int, int]) -> None:
    out = run(harness, prompt="mountains", image_size=preset, seed=1, num_inference_steps=1)
    image = out["images"][0]
    assert (image["width"], image["height"]) == size
    assert Image.open(io.BytesIO(image_bytes(harness, out))).size == size


def test_default_size_is_landscape_4_3(harness: Any) -> None:
    out = run(harness, prompt="city", seed=1, num_inference_steps=1)
    assert (out["images"][0]["width"], out["images"][0]["height"]) == (1024, 768)


@pytest.mark.parametrize(
    ("fmt", "magic", "pil_format", "content_type"),
    [("jpeg", b"\xff\xd8\xff", "JPEG", "image/jpeg"), ("png", b"\x89PNG", "PNG", "image/png")],
)
def test_output_formats(
    harness: Any, fmt: str, magic: bytes, pil_format: str, content_type: str
) -> None:
    out = run(harness, prompt="forest", image_size=SMALL, seed=1, output_format=fmt)
    data = image_bytes(harness, out)
    assert data.startswith(magic)
    assert Image.open(io.BytesIO(data)).format == pil_format
    assert out["images"][0]["content_type"] == content_type


def test_num_images_gives_distinct_images(harness: Any) -> None:
    out = run(harness, prompt="grid", image_size=SMALL, seed=5, num_images=3)
    assert len(out["images"]) == 3
    assert out["has_nsfw_concepts"] == [False] * 3
    blobs = {image_bytes(harness, out, i) for i in range(3)}
    assert len(blobs) == 3
    # Image i is seed + i, so it can be re-made alone.
    alone = run(harness, prompt="grid", image_size=SMALL, seed=6)
    assert image_bytes(harness, alone) == image_bytes(harness, out, 1)


def test_steps_are_logged(harness: Any) -> None:
    run(harness, prompt="moon", image_size=SMALL, seed=1, num_inference_steps=5)
    assert [m for m in harness.messages() if m.startswith("step")] == [
        f"step {i}/5" for i in range(1, 6)
    ]


def test_sync_mode_returns_a_data_uri(harness: Any) -> None:
    out = run(harness, prompt="moon", image_size=SMALL, seed=1, sync_mode=True)
    assert out["images"][0]["url"].startswith("data:image/jpeg;base64,")
    assert list(harness.store.root.iterdir()) == []


@pytest.mark.parametrize(("value", "inline"), [("true", True), ("false", False), (0, False)])
def test_sync_mode_reads_booleans_as_fal_does(harness: Any, value: Any, inline: bool) -> None:
    out = run(harness, prompt="moon", image_size=SMALL, seed=1, sync_mode=value)
    assert out["images"][0]["url"].startswith("data:") is inline


def test_sync_mode_that_is_no_boolean_is_a_422(harness: Any) -> None:
    with pytest.raises(AppError) as caught:
        run(harness, prompt="moon", image_size=SMALL, seed=1, sync_mode="maybe")
    assert caught.value.status_code == 422
    assert caught.value.detail[0]["loc"] == ["body", "sync_mode"]


def test_cancellation_stops_early(harness: Any) -> None:
    ctx = harness.context()
    logged: list[str] = []

    def sink(message: str, level: str) -> None:
        logged.append(message)
        if message == "step 2/10":
            ctx.cancelled.set()

    ctx.log_sink = sink
    with pytest.raises(AppError) as caught:
        text_to_image({"prompt": "sun", "image_size": SMALL, "num_inference_steps": 10}, ctx)
    assert caught.value.status_code == 499
    assert logged[-1] == "step 2/10"


def test_unknown_fields_are_logged_not_rejected(harness: Any) -> None:
    out = run(harness, prompt="sun", image_size=SMALL, seed=1, num_image=2)
    assert len(out["images"]) == 1
    assert ("ignoring unknown argument(s): num_image", "WARN") in harness.logs


@pytest.mark.parametrize(
    ("arguments", "loc", "kind"),
    [
        ({}, ["body", "prompt"], "missing"),
        ({"prompt": ""}, ["body", "prompt"], "string_too_short"),
        ({"prompt": 3}, ["body", "prompt"], "string_type"),
        ({"prompt": "x", "image_size": "huge"}, ["body", "image_size"], "enum"),
        (
            {"prompt": "x", "image_size": {"width": 0}},
            ["body", "image_size", "width"],
            "range_error",
        ),
        ({"prompt": "x", "num_images": 5}, ["body", "num_images"], "range_error"),
        ({"prompt": "x", "num_images": 0}, ["body", "num_images"], "range_error"),
        ({"prompt": "x", "output_format": "gif"}, ["body", "output_format"], "literal_error"),
        ({"prompt": "x", "num_inference_steps": 0}, ["body", "num_inference_steps"], "range_error"),
        ({"prompt": "x", "seed": "abc"}, ["body", "seed"], "int_type"),
    ],
)
def test_invalid_input_is_a_422(
    harness: Any, arguments: dict[str, Any], loc: list[str], kind: str
) -> None:
    with pytest.raises(AppError) as caught:
        text_to_image(arguments, harness.context())
    error = caught.value
    assert error.status_code == 422
    assert error.detail[0]["loc"] == loc
    assert error.detail[0]["type"] == kind
    assert error.detail[0]["msg"]

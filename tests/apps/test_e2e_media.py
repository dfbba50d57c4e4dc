"""The built-in media apps end to end: falnb's client against the session's local server.

Outputs are downloaded from the server's CDN and decoded, as a notebook would.
"""

from __future__ import annotations

import base64
import io
import itertools
import wave
from collections.abc import Iterator
from typing import Any, cast

import av
import httpx
import pytest
from PIL import Image

from falnb import SyncClient
from falnb.local import LocalServer

FAST = {"num_inference_steps": 2}


@pytest.fixture
def client(server: LocalServer) -> Iterator[SyncClient]:
    with SyncClient(server.target) as sync:
        yield sync


def download(file: dict[str, Any]) -> bytes:
    response = httpx.get(file["url"], timeout=15)
    response.raise_for_status()
    assert response.headers["content-type"].startswith(file["content_type"])
    return response.content


def source_image(width: int = 48, height: int = 32) -> Image.Image:
    image = Image.new("RGB", (width, height), (30, 60, 200))
    image.paste((240, 220, 20), (8, 8, 24, 20))
    return image


def test_text_to_image_is_deterministic_per_seed(client: SyncClient) -> None:
    arguments = {"prompt": "a red fox", "image_size": {"width": 96, "height": 64}, **FAST}
    first = client.subscribe("local/text-to-image", {**arguments, "seed": 11})
    again = client.subscribe("local/text-to-image", {**arguments, "seed": 11})
    other = client.subscribe("local/text-to-image", {**arguments, "seed": 12})
    assert first["seed"] == 11
    assert first["prompt"] == "a red fox"
    assert first["has_nsfw_concepts"] == [False]
    assert "inference" in first["timings"]
    image = first["images"][0]
    assert (image["width"], image["height"], image["content_type"]) == (96, 64, "image/jpeg")
    data = download(image)
    assert Image.open(io.BytesIO(data)).size == (96, 64)
    assert download(again["images"][0]) == data  # same seed, same bytes
    assert download(other["images"][0]) != data


@pytest.mark.parametrize(
    ("image_size", "size"), [("square", (512, 512)), ({"width": 80, "height": 40}, (80, 40))]
)
def test_text_to_image_sizes_and_num_images(
    client: SyncClient, image_size: Any, size: tuple[int, int]
) -> None:
    result = client.run(
        "local/text-to-image",
        {
            "prompt": "blue sky",
            "image_size": image_size,
            "num_images": 2,
            "output_format": "png",
            "seed": 1,
            **FAST,
        },
    )
    assert len(result["images"]) == 2
    assert result["has_nsfw_concepts"] == [False, False]
    decoded = [Image.open(io.BytesIO(download(image))) for image in result["images"]]
    assert [(image.format, image.size) for image in decoded] == [("PNG", size)] * 2
    assert decoded[0].tobytes() != decoded[1].tobytes()  # each image has its own seed


def test_image_to_image_with_an_auto_uploaded_pil_image(
    client: SyncClient, server: LocalServer
) -> None:
    server.journal.clear()
    result = client.subscribe(
        "local/image-to-image",
        {"image_url": source_image(), "prompt": "sunset", "strength": 0.5, "seed": 3, **FAST},
    )
    image = result["images"][0]
    assert (image["width"], image["height"]) == (48, 32)  # the input's size
    assert Image.open(io.BytesIO(download(image))).size == (48, 32)
    # The PIL image went up as a file (or inline as a data URI), never as a repr.
    submitted = server.journal.entries(method="POST", path_contains="local/image-to-image")
    assert submitted
    sent = submitted[0].body["image_url"]
    assert sent.startswith(("data:image/", server.base_url))


def test_image_to_image_with_a_data_uri(client: SyncClient) -> None:
    png = io.BytesIO()
    source_image(40, 40).save(png, "PNG")
    uri = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    arguments = {"image_url": uri, "prompt": "forest", "seed": 5, "output_format": "png", **FAST}
    first = client.run("local/image-to-image", arguments)
    again = client.run("local/image-to-image", arguments)
    data = download(first["images"][0])
    assert Image.open(io.BytesIO(data)).size == (40, 40)
    assert download(again["images"][0]) == data


def test_text_to_video_decodes_with_its_duration(client: SyncClient) -> None:
    result = client.subscribe(
        "local/text-to-video",
        {
            "prompt": "neon city",
            "seed": 2,
            "duration": 1,
            "fps": 8,
            "image_size": {"width": 64, "height": 48},
        },
    )
    video = result["video"]
    assert video["content_type"] == "video/mp4"
    data = download(video)
    assert len(data) == video["file_size"]
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = list(container.decode(video=0))
        assert container.duration is not None
        duration = container.duration / av.time_base
    assert duration == pytest.approx(1.0, abs=1 / 8)
    assert (frames[0].width, frames[0].height) == (64, 48)


def test_text_to_audio_decodes_with_its_duration(client: SyncClient) -> None:
    result = client.subscribe(
        "local/text-to-audio", {"prompt": "calm ocean", "seed": 4, "duration": 1.5}
    )
    audio = result["audio"]
    data = download(audio)
    with wave.open(io.BytesIO(data)) as file:
        seconds = file.getnframes() / file.getframerate()
    assert seconds == pytest.approx(1.5, abs=0.01)
    again = client.run("local/text-to-audio", {"prompt": "calm ocean", "seed": 4, "duration": 1.5})
    assert download(again["audio"]) == data


def test_llm_stream_pieces_build_the_final_output(client: SyncClient) -> None:
    arguments = {"prompt": "tell me about foxes", "seed": 9, "token_delay": 0, "max_tokens": 40}
    stream = client.stream("local/llm", arguments)
    pieces = [cast("dict[str, Any]", piece) for piece in stream]
    assert len(pieces) > 2
    texts = [piece["output"] for piece in pieces]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    final = stream.final
    assert isinstance(final, dict)
    assert final["partial"] is False
    assert final["output"] == texts[-2]  # the last partial already holds the whole text
    assert client.run("local/llm", arguments)["output"] == final["output"]


def test_image_to_image_over_realtime(client: SyncClient) -> None:
    png = io.BytesIO()
    source_image(64, 64).save(png, "PNG")
    with client.realtime("local/image-to-image") as connection:
        for width in (32, 48):
            connection.send(
                {
                    "image": png.getvalue(),
                    "prompt": "watercolor",
                    "seed": 1,
                    "image_size": {"width": width, "height": 24},
                }
            )
            reply = connection.recv(timeout=15)
            assert reply is not None
            frame = reply["images"][0]
            decoded = Image.open(io.BytesIO(frame["content"]))
            assert decoded.format == "JPEG"
            assert decoded.size == (width, 24) == (frame["width"], frame["height"])

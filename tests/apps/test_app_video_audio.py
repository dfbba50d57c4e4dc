"""local/text-to-video and local/text-to-audio: files that decode with the stated duration."""

from __future__ import annotations

import io
import wave
from typing import Any

import av
import pytest

from falnb.local.apperror import AppError
from falnb.local.apps.media.text_to_audio import text_to_audio
from falnb.local.apps.media.text_to_video import text_to_video

SMALL_VIDEO = {"width": 96, "height": 54}


def video(harness: Any, **arguments: Any) -> tuple[dict[str, Any], bytes]:
    out = text_to_video(arguments, harness.context("local/text-to-video"))
    return out, harness.read(out["video"])


def test_video_is_h264_mp4_with_stated_duration(harness: Any) -> None:
    out, data = video(harness, prompt="neon city", seed=3, duration=1.5, fps=8,
                      image_size=SMALL_VIDEO)  # fmt: skip
    assert set(out) == {"video", "seed", "timings", "prompt"}
    assert out["video"]["content_type"] == "video/mp4"
    assert out["video"]["file_name"] == "output.mp4"
    assert out["video"]["file_size"] == len(data)
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (96, 54)
        frames = list(container.decode(video=0))
        assert frames[0].format.name == "yuv420p"
        duration = container.duration / av.time_base
    assert len(frames) == 12
    assert duration == pytest.approx(1.5, abs=1 / 8)
    assert "step 12/12" in harness.messages()


def test_video_is_deterministic_per_seed(harness: Any) -> None:
    args = {"prompt": "calm lake", "duration": 1, "fps": 8, "image_size": SMALL_VIDEO}
    _, first = video(harness, seed=1, **args)
    _, again = video(harness, seed=1, **args)
    _, other = video(harness, seed=2, **args)
    assert first == again
    assert first != other


def test_video_frames_move(harness: Any) -> None:
    _, data = video(harness, prompt="clouds over the sea at sunset", seed=1, duration=2, fps=8,
                    image_size=SMALL_VIDEO)  # fmt: skip
    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_ndarray(format="rgb24").astype(int) for f in container.decode(video=0)]
    assert abs(frames[0] - frames[-1]).mean() > 1.0


def test_video_aspect_ratio_and_string_duration(harness: Any) -> None:
    out, data = video(harness, prompt="forest", seed=1, duration="1", fps=8, aspect_ratio="9:16")
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (288, 512)
    assert out["seed"] == 1


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({}, "prompt"),
        ({"prompt": "x", "duration": 0}, "duration"),
        ({"prompt": "x", "duration": "long"}, "duration"),
        ({"prompt": "x", "aspect_ratio": "4:1"}, "aspect_ratio"),
        ({"prompt": "x", "fps": 120}, "fps"),
    ],
)
def test_video_invalid_input_is_a_422(harness: Any, arguments: dict[str, Any], field: str) -> None:
    with pytest.raises(AppError) as caught:
        text_to_video(arguments, harness.context())
    assert caught.value.status_code == 422
    assert caught.value.detail[0]["loc"] == ["body", field]


def audio(harness: Any, **arguments: Any) -> tuple[dict[str, Any], bytes]:
    out = text_to_audio(arguments, harness.context("local/text-to-audio"))
    return out, harness.read(out["audio"])


def test_audio_is_wav_with_stated_duration(harness: Any) -> None:
    out, data = audio(harness, prompt="calm ocean at night", seed=5, duration=2.5)
    assert set(out) == {"audio", "seed", "timings", "prompt"}
    assert out["audio"]["content_type"] == "audio/wav"
    assert out["audio"]["file_size"] == len(data)
    with wave.open(io.BytesIO(data)) as file:
        assert file.getsampwidth() == 2
        assert file.getnframes() / file.getframerate() == pytest.approx(2.5, abs=1 / 1000)
        samples = file.readframes(file.getnframes())
    assert max(samples) > 0  # not silence
    assert any(m.startswith("step 1/") for m in harness.messages())


def test_audio_is_deterministic_per_seed(harness: Any) -> None:
    _, first = audio(harness, prompt="happy piano", seed=1, duration=1)
    _, again = audio(harness, prompt="happy piano", seed=1, duration=1)
    _, other = audio(harness, prompt="happy piano", seed=2, duration=1)
    assert first == again
    assert first != other


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({}, "prompt"),
        ({"prompt": "x", "duration": 600}, "duration"),
        ({"prompt": "x", "seed": -1}, "seed"),
    ],
)
def test_audio_invalid_input_is_a_422(harness: Any, arguments: dict[str, Any], field: str) -> None:
    with pytest.raises(AppError) as caught:
        text_to_audio(arguments, harness.context())
    assert caught.value.status_code == 422
    assert caught.value.detail[0]["loc"] == ["body", field]

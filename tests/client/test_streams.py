"""Output streams as fal's cloud sends them: binary streams (speech audio) yield bytes, and an
error mid-stream raises, whether the app reports it or the stream breaks off."""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest

from falnb import AsyncClient, ConnectionFailedError, StreamError, SyncClient, _runtime
from falnb._values import decode_data_uri
from falnb.local import LocalServer
from falnb.local.apperror import AppError
from falnb.local.registry import Context, Endpoint, Registry
from falnb.local.userapps import as_endpoint
from falnb.session import Session

WAV_HEAD = b"RIFF\x24\x00\x00\x00WAVEfmt "


def speak(arguments: dict[str, Any]) -> Iterator[bytes]:
    """A user app as a TTS endpoint: a generator of audio bytes."""
    yield WAV_HEAD
    for word in str(arguments.get("prompt", "")).split():
        yield word.encode() + b";"


def speak_then_fail(arguments: dict[str, Any]) -> Iterator[bytes]:
    yield WAV_HEAD
    raise RuntimeError("the voice broke")


def write_then_fail(arguments: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield {"text": "one", "error": None}  # fal's LLMs send "error": null in partials
    raise AppError(500, "the model ran out of memory", "runner_server_error")


async def tokens(arguments: dict[str, Any], ctx: Context) -> AsyncIterator[dict[str, Any]]:
    yield {"text": "a"}
    yield {"text": "a b"}


def drain(stream: Iterable[Any], into: list[Any]) -> None:
    """Read ``stream`` into ``into`` (which keeps what came before an error)."""
    for item in stream:
        into.append(item)  # noqa: PERF402 - the items before the error are the point


@pytest.fixture
def apps(make_server: Callable[..., LocalServer]) -> LocalServer:
    return make_server(
        registry=Registry(
            [
                as_endpoint(speak, "me/speak"),
                as_endpoint(speak_then_fail, "me/speak-fail"),
                as_endpoint(write_then_fail, "me/write-fail"),
                Endpoint("me/tokens", stream=tokens),
            ]
        )
    )


def test_a_builtin_binary_stream_yields_wav_chunks(client: SyncClient) -> None:
    stream = client.stream("local/text-to-audio", {"prompt": "calm ocean", "duration": 1})
    chunks = list(stream)
    assert len(chunks) > 1
    assert all(isinstance(chunk, bytes) for chunk in chunks)
    assert stream.content_type == "audio/wav"
    assert stream.request_id
    assert stream.final == chunks[-1]  # as the JS client's currentData
    with wave.open(io.BytesIO(b"".join(chunks))) as audio:  # type: ignore[arg-type]
        assert audio.getframerate() == 32_000
        assert audio.getnframes() == 32_000  # one second, whole


def test_a_user_app_generator_of_bytes_is_a_binary_stream(apps: LocalServer) -> None:
    with SyncClient(apps.target) as client:
        stream = client.stream("me/speak", {"prompt": "hello there"})
        assert b"".join(stream) == WAV_HEAD + b"hello;there;"  # type: ignore[arg-type]
        assert stream.content_type == "audio/wav"
        # Run and queue answer the joined chunks as one File, keyed by its media kind.
        output = client.subscribe("me/speak", {"prompt": "hi"})
    audio = output["audio"]
    assert audio["content_type"] == "audio/wav"
    assert httpx.get(audio["url"]).content == WAV_HEAD + b"hi;"


def test_async_binary_stream(apps: LocalServer) -> None:
    client = AsyncClient(apps.target)

    async def read() -> list[Any]:
        return [chunk async for chunk in client.stream("me/speak", {"prompt": "a b"})]

    try:
        assert b"".join(_runtime.run(read())) == WAV_HEAD + b"a;b;"
    finally:
        _runtime.run(client.aclose())


def test_an_app_error_mid_stream_raises_with_its_detail(apps: LocalServer) -> None:
    received: list[Any] = []
    with SyncClient(apps.target) as client:
        stream = client.stream("me/write-fail", {})
        with pytest.raises(StreamError) as caught:
            drain(stream, received)
    assert received == [{"text": "one", "error": None}]  # "error": null is a partial output
    error = caught.value
    assert error.detail == "the model ran out of memory"
    assert error.error_type == "runner_server_error"
    assert error.request_id == stream.request_id
    assert "the model ran out of memory" in str(error)


def test_the_server_sends_only_data_lines_mid_stream(apps: LocalServer) -> None:
    response = httpx.post(
        f"{apps.base_url}/me/write-fail/stream",
        json={},
        headers={"Authorization": f"Key {apps.key}"},
    )
    lines = [line for line in response.text.splitlines() if line.strip()]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == (
        'data: {"error":"the model ran out of memory","error_type":"runner_server_error"}'
    )


def test_a_binary_stream_that_breaks_off_raises(apps: LocalServer) -> None:
    received: list[Any] = []
    with SyncClient(apps.target) as client, pytest.raises(ConnectionFailedError) as caught:
        drain(client.stream("me/speak-fail", {}), received)
    assert received == [WAV_HEAD]
    assert "broke off mid-stream after 1 items" in str(caught.value)


def test_an_event_stream_cut_short_raises(client: SyncClient, server: LocalServer) -> None:
    server.faults.add("cut", path_contains="/stream-text/stream", times=1)
    received: list[Any] = []
    with pytest.raises(ConnectionFailedError, match="broke off mid-stream"):
        drain(client.stream("local/stream-text", {"prompt": "one two three"}), received)
    assert len(received) == 1


def test_a_clean_event_stream_still_ends_with_its_final_output(apps: LocalServer) -> None:
    with SyncClient(apps.target) as client:
        stream = client.stream("me/tokens", {})
        assert list(stream) == [{"text": "a"}, {"text": "a b"}]
    assert stream.final == {"text": "a b"}
    assert stream.content_type is not None
    assert stream.content_type.startswith("text/event-stream")


def test_a_streamed_call_of_a_binary_stream_is_an_audio_result(
    server: LocalServer, tmp_path: Any
) -> None:
    from falnb.repro import Recorder

    with SyncClient(server.target) as client:
        session = Session(client, recorder=Recorder.default(tmp_path / "x.ipynb"))
        result = session.run(
            "local/text-to-audio", {"prompt": "calm", "duration": 1}, stream=True, seed=3
        )
    audio = result.json["audio"]
    assert audio["content_type"] == "audio/wav"
    data = decode_data_uri(audio["url"])
    assert data.startswith(b"RIFF")
    assert audio["file_size"] == len(data)
    [file] = result.files
    assert (file.kind, file.data) == ("audio", data)

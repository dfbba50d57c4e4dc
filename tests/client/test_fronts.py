"""The two fronts: sync calls inside a running loop, async calls from any loop, streams,
and the upload/realtime delegation."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, cast

import pytest

from falnb import AsyncClient, HTTPError, SyncClient
from falnb.local import LocalServer

WORDS = "the quick brown fox"


def test_sync_api_inside_a_running_loop(client: SyncClient) -> None:
    # A notebook cell: the kernel's loop is running in this very thread.
    async def cell() -> dict[str, Any]:
        handle = client.submit("local/echo", {"in": "cell"})
        assert client.run("local/echo", {"x": 1}) == {"x": 1}
        return handle.get()

    assert asyncio.run(cell()) == {"in": "cell"}


def test_async_api_from_several_loops(aclient: AsyncClient) -> None:
    # Each asyncio.run is a new loop; httpx's pool stays on falnb's loop, so nothing breaks.
    for n in range(3):
        assert asyncio.run(aclient.run("local/echo", {"n": n})) == {"n": n}

    results: list[dict[str, Any]] = []
    thread = threading.Thread(
        target=lambda: results.append(asyncio.run(aclient.subscribe("local/echo", {"t": 1})))
    )
    thread.start()
    thread.join(10)
    assert results == [{"t": 1}]


def test_concurrent_async_calls(aclient: AsyncClient) -> None:
    async def main() -> list[dict[str, Any]]:
        return await asyncio.gather(*(aclient.subscribe("local/echo", {"i": i}) for i in range(5)))

    assert asyncio.run(main()) == [{"i": i} for i in range(5)]


def test_stream_sync_keeps_final(client: SyncClient) -> None:
    stream = client.stream("local/stream-text", {"prompt": WORDS, "delay": 0})
    partials = [cast("dict[str, Any]", event)["text"] for event in stream]
    assert partials[0] == "the"
    assert stream.final == {"text": WORDS, "done": True}
    assert stream.request_id
    assert client.stream("local/stream-text", {"prompt": "a b", "delay": 0}).done() == {
        "text": "a b",
        "done": True,
    }


def test_stream_async_keeps_final(aclient: AsyncClient) -> None:
    async def main() -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        stream = aclient.stream("local/stream-text", {"prompt": WORDS, "delay": 0})
        events = [cast("dict[str, Any]", event) async for event in stream]
        return events, cast("dict[str, Any] | None", stream.final)

    events, final = asyncio.run(main())
    assert len(events) == 5
    assert final == {"text": WORDS, "done": True}


def test_stream_errors_raise_before_events(client: SyncClient) -> None:
    with pytest.raises(HTTPError) as info:
        list(client.stream("local/stream-text", {"prompt": 3}))
    assert info.value.status_code == 422


def test_stream_closed_early(client: SyncClient) -> None:
    with client.stream("local/stream-text", {"prompt": WORDS, "delay": 0.05}) as stream:
        assert next(stream) == {"text": "the"}
    assert stream.final == {"text": "the"}
    assert not stream.finished


def test_arguments_are_uploaded(client: SyncClient, tmp_path: Path, server: LocalServer) -> None:
    path = tmp_path / "note.txt"
    path.write_text("hello")
    result = client.run("local/echo", {"file": path, "nested": [b"raw"]})
    assert result["file"].startswith(server.base_url)
    assert result["nested"][0].startswith(server.base_url)
    assert client.upload(b"abc", "text/plain").startswith(server.base_url)
    assert client.upload_file(path).startswith(server.base_url)


def test_async_upload(aclient: AsyncClient, server: LocalServer) -> None:
    url = asyncio.run(aclient.upload(b"xyz", "text/plain", "x.txt"))
    assert url.startswith(server.base_url)


def test_realtime_sync_and_async(client: SyncClient, aclient: AsyncClient) -> None:
    with client.realtime("local/realtime-echo") as connection:
        connection.send({"prompt": "hi"})
        reply = connection.recv(timeout=10)
    assert reply is not None
    assert reply["prompt"] == "hi"

    async def main() -> dict[str, Any] | None:
        async with aclient.realtime("local/realtime-echo") as connection:
            await connection.send({"prompt": "hey"})
            return await connection.recv(timeout=10)

    # Twice, from two loops: the socket lives on falnb's loop.
    for _ in range(2):
        answer = asyncio.run(main())
        assert answer is not None
        assert answer["prompt"] == "hey"

"""Uploads and auto-upload of inputs, against the local server over loopback."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from falnb import SyncClient, _runtime
from falnb.client._transport import RetryPolicy, Transport
from falnb.client.errors import FalError
from falnb.client.storage import (
    MULTIPART_MAX_CONCURRENCY,
    encode,
    encode_file,
    encode_image,
    upload,
    upload_file,
    upload_image,
    upload_inputs,
)
from falnb.local import LocalServer
from falnb.local.faults import FaultRule
from falnb.local.journal import JournalEntry

run = _runtime.run


@pytest.fixture
def transport(server: LocalServer) -> Iterator[Transport]:
    quick = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05)
    transport = Transport(server.target, retry=quick)
    yield transport
    run(transport.aclose())


def fetch(url: str) -> httpx.Response:
    response = httpx.get(url)
    assert response.status_code == 200
    return response


def count(server: LocalServer, method: str, path: str) -> int:
    return len(server.journal.entries(method=method, path_contains=path))


def test_upload_bytes_through_the_cdn(transport: Transport, server: LocalServer) -> None:
    url = run(upload(transport, b"hello falnb", "text/plain", "hello.txt"))
    response = fetch(url)
    assert response.content == b"hello falnb"
    assert response.headers["content-type"].startswith("text/plain")
    assert url.endswith("/hello.txt")
    run(upload(transport, b"second", file_name="again.json"))
    # One CDN token serves both uploads; the second's content type came from its name.
    assert count(server, "POST", "/_rest/storage/auth/token") == 1
    assert count(server, "POST", "/_cdn/files/upload") == 2
    assert count(server, "POST", "/_rest/storage/upload/initiate") == 0


def test_upload_file_guesses_the_content_type(transport: Transport, tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text('{"a": 1}')
    response = fetch(run(upload_file(transport, path)))
    assert response.json() == {"a": 1}
    assert response.headers["content-type"].startswith("application/json")


def test_upload_image_as_png(transport: Transport) -> None:
    image = Image.new("RGB", (5, 4), (10, 200, 30))
    response = fetch(run(upload_image(transport, image)))
    assert response.headers["content-type"] == "image/png"
    fetched = Image.open(io.BytesIO(response.content))
    assert fetched.format == "PNG"
    assert fetched.size == (5, 4)
    assert fetched.convert("RGB").getpixel((2, 2)) == (10, 200, 30)


def test_falls_back_to_initiate_and_put(transport: Transport, server: LocalServer) -> None:
    server.faults.add("status=500", role="cdn", method="POST", path_contains="/files/upload")
    url = run(upload(transport, b"via rest", "text/plain", "rest.txt"))
    assert fetch(url).content == b"via rest"
    assert count(server, "POST", "/_rest/storage/upload/initiate") == 1
    assert count(server, "PUT", "/_cdn/files/") == 1


def test_multipart_through_the_cdn(transport: Transport, server: LocalServer) -> None:
    data = bytes(range(256)) * 100  # 25,600 bytes -> 4 parts of 8,000
    url = run(
        upload(
            transport,
            data,
            "application/octet-stream",
            "big.bin",
            multipart_threshold=10_000,
            chunk_size=8_000,
        )
    )
    assert fetch(url).content == data
    assert count(server, "POST", "/_cdn/files/upload/multipart") == 1
    assert count(server, "PUT", "/multipart/") == 4
    assert count(server, "POST", "/complete") == 1
    # Sent once: the server drops the ETag from compressed answers, as fal's CDN does, so a
    # part PUT that accepted gzip would lose its ETag and the upload would go again via REST.
    assert count(server, "POST", "/_rest/storage/upload/initiate-multipart") == 0
    parts = server.journal.entries(method="PUT", path_contains="/multipart/")
    assert {entry.headers.get("accept-encoding") for entry in parts} == {"identity"}


def test_a_part_put_that_accepts_gzip_gets_no_etag(
    transport: Transport, server: LocalServer, http: httpx.Client
) -> None:
    created = http.post(
        "/_cdn/files/upload/multipart",
        headers={"X-Fal-File-Name": "x.bin", "Content-Type": "application/octet-stream"},
    ).json()
    part = f"{created['access_url']}/multipart/{created['uploadId']}/1"
    compressed = http.put(part, content=b"abc", headers={"Accept-Encoding": "gzip"})
    assert compressed.status_code == 200
    assert "etag" not in compressed.headers
    assert compressed.json()["etag"]  # the body (what the JS client reads) keeps it
    plain = http.put(part, content=b"abc", headers={"Accept-Encoding": "identity"})
    assert plain.headers["etag"] == compressed.json()["etag"]


async def _parts_still_sending() -> list[str]:
    """The part uploads still running on this loop (asyncio.gather alone leaves them running)."""
    return [
        task.get_coro().__qualname__  # type: ignore[union-attr]
        for task in asyncio.all_tasks()
        if "_all_or_none" in task.get_coro().__qualname__  # type: ignore[union-attr]
    ]


def _drain(server: LocalServer, *rules: FaultRule) -> list[JournalEntry]:
    """The part PUTs the server saw, once each one these rules fired on has been answered: a
    held part is journaled when its delay ends, which would otherwise land in a later test."""
    deadline = time.monotonic() + 10
    while True:
        parts = server.journal.entries(method="PUT", path_contains="/multipart/")
        if len(parts) >= sum(rule.fired for rule in rules) or time.monotonic() > deadline:
            return parts
        time.sleep(0.02)


def test_a_failing_part_stops_its_siblings(transport: Transport, server: LocalServer) -> None:
    # The first part PUT to arrive is refused; the others are held, so they are in flight
    # when it fails. The REST fallback is refused too, so the upload fails as a whole. 40 parts,
    # 10 at once: some are still connecting when the first is refused, where one Task.cancel()
    # was absorbed by anyio's connect_tcp on Python 3.10 (then this failed 30 times in 30).
    refused = server.faults.add("status=403", method="PUT", path_contains="/multipart/", times=1)
    held = server.faults.add("delay=2", method="PUT", path_contains="/multipart/")
    server.faults.add("status=403", method="POST", path_contains="/initiate-multipart")
    started = time.monotonic()
    with pytest.raises(FalError):
        run(upload(transport, b"x" * 40_000, multipart_threshold=10_000, chunk_size=1_000))
    assert time.monotonic() - started < 2  # it did not wait for the held parts to finish
    assert run(_parts_still_sending()) == []
    parts = _drain(server, refused, held)
    assert held.fired <= MULTIPART_MAX_CONCURRENCY  # the parts waiting for a slot never went
    assert [part.status for part in parts].count(403) == 1


def test_cancelling_an_upload_stops_its_parts(transport: Transport, server: LocalServer) -> None:
    # As a Cancel click or an interrupt does: the caller's task is cancelled while parts are in
    # flight, and the task group must pass that on to every part and re-raise it. (The lost
    # cancel of Python 3.10 is caught by the test above, which fails every time without the
    # task group; this one guards the path a caller's cancel takes through it.)
    held = server.faults.add("delay=2", method="PUT", path_contains="/multipart/")

    async def cancel_midway() -> tuple[float, list[str]]:
        data = b"x" * 40_000
        task = asyncio.ensure_future(
            upload(transport, data, multipart_threshold=10_000, chunk_size=10_000)
        )
        while server.faults.fired < 1:  # noqa: ASYNC110 - a part reached the server (its thread)
            await asyncio.sleep(0.005)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started, await _parts_still_sending()

    elapsed, left = run(cancel_midway())
    assert elapsed < 1.5
    assert left == []
    _drain(server, held)
    assert count(server, "POST", "/complete") == 0


def test_multipart_falls_back_to_rest(transport: Transport, server: LocalServer) -> None:
    server.faults.add("status=500", role="cdn", method="POST", path_contains="/files/upload")
    data = b"0123456789" * 2_500
    url = run(
        upload(
            transport, data, "text/plain", "big.txt", multipart_threshold=10_000, chunk_size=10_000
        )
    )
    assert fetch(url).content == data
    assert count(server, "POST", "/_rest/storage/upload/initiate-multipart") == 1
    assert count(server, "PUT", "/multipart/") == 3


def test_upload_inputs_replaces_local_data(
    transport: Transport, server: LocalServer, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.png"
    Image.new("RGB", (3, 3), (1, 2, 3)).save(photo)
    image = Image.new("L", (2, 2), 128)
    blob = b"\x00raw bytes"
    arguments = {
        "image_url": photo,
        "mask": image,
        "nested": {"list": [blob, "keep me", photo], "tuple": (bytearray(b"ba"),)},
        "data_uri": "data:text/plain;base64,aGk=",
        "seed": 7,
    }
    result = run(upload_inputs(transport, arguments))

    assert arguments["image_url"] is photo  # the input is not mutated
    assert arguments["nested"]["list"][0] is blob  # type: ignore[index]
    assert fetch(result["image_url"]).content == photo.read_bytes()
    assert fetch(result["mask"]).headers["content-type"] == "image/png"
    assert fetch(result["nested"]["list"][0]).content == blob
    assert result["nested"]["list"][1] == "keep me"
    assert result["nested"]["list"][2] == result["image_url"]  # one upload per distinct file
    assert isinstance(result["nested"]["tuple"], tuple)
    assert fetch(result["nested"]["tuple"][0]).content == b"ba"
    assert result["data_uri"] == "data:text/plain;base64,aGk="
    assert result["seed"] == 7
    assert count(server, "POST", "/_cdn/files/upload") == 4


def test_upload_inputs_inlines_small_data(transport: Transport, server: LocalServer) -> None:
    result = run(upload_inputs(transport, {"a": b"tiny", "b": b"x" * 100}, inline_threshold=10))
    assert (
        result["a"] == "data:application/octet-stream;base64," + base64.b64encode(b"tiny").decode()
    )
    assert result["b"].startswith("http")
    assert count(server, "POST", "/_cdn/files/upload") == 1


def test_missing_file_names_the_argument(transport: Transport, tmp_path: Path) -> None:
    arguments = {"images": [tmp_path / "here.png", tmp_path / "missing.png"]}
    (tmp_path / "here.png").write_bytes(b"png")
    with pytest.raises(FalError, match=r"arguments\.images\[1\]: no such file"):
        run(upload_inputs(transport, arguments))


def test_nothing_to_upload_makes_no_request(transport: Transport, server: LocalServer) -> None:
    arguments = {"prompt": "a fox", "n": [1, 2]}
    assert run(upload_inputs(transport, arguments)) == arguments
    assert server.journal.entries(role="cdn") == []


def test_run_auto_uploads_inputs(client: SyncClient, tmp_path: Path) -> None:
    path = tmp_path / "input.txt"
    path.write_bytes(b"auto uploaded")
    result = client.run("local/echo", {"file_url": path, "prompt": "p"})
    assert result["prompt"] == "p"
    assert fetch(result["file_url"]).content == b"auto uploaded"


def test_data_uri_encoders(tmp_path: Path) -> None:
    assert encode(b"hi", "text/plain") == "data:text/plain;base64,aGk="
    path = tmp_path / "note.txt"
    path.write_bytes(b"hi")
    assert encode_file(path) == "data:text/plain;base64,aGk="
    uri = encode_image(Image.new("RGB", (1, 1)))
    assert uri.startswith("data:image/png;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size == (1, 1)

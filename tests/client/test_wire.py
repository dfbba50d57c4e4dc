"""What falnb's own HTTP clients put on the wire: a request in one write, and no cookies kept.

Both are about cost (a second write wakes the server a second time; httpx's cookie jar reads
every response) and neither may change an answer: the runs here go to the real local server,
except the cookie test's, which needs a server that sets cookies (fal's APIs set none).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpcore
import pytest

from falnb import AsyncClient, SyncClient, Target, _runtime
from falnb.client._wire import HELD_WRITE
from falnb.client.storage import has_uploads
from falnb.local import LocalServer
from tests.kit import plain_http

ECHO = "local/echo"
ARGUMENTS = {"prompt": "a red fox", "seed": 7}


class _Counted(httpcore.NetworkStream):
    """A blocking socket stream that notes the size of each write it makes (httpcore's
    ``write`` of nothing sends nothing, so is not one)."""

    def __init__(self, stream: httpcore.NetworkStream, sizes: list[int]) -> None:
        self.stream, self.sizes = stream, sizes

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            self.sizes.append(len(buffer))
        self.stream.write(buffer, timeout)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, timeout)

    def close(self) -> None:
        self.stream.close()

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


@pytest.fixture
def socket_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each write made to a blocking socket httpcore opens during the test."""
    sizes: list[int] = []
    connect = httpcore.SyncBackend.connect_tcp

    def counted(self: httpcore.SyncBackend, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Counted(connect(self, *args, **kwargs), sizes)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", counted)
    return sizes


@pytest.fixture
def run(client: SyncClient) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A sync run of ``local/echo`` (the client is made in the test: its connections are
    opened under :func:`socket_writes`). The async front's connections are httpx's own."""
    return lambda arguments: client.run(ECHO, arguments)


def test_a_run_sends_its_request_in_one_write(
    socket_writes: list[int], run: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    run(ARGUMENTS)  # opens the connection
    socket_writes.clear()
    for seed in range(3):
        assert run({**ARGUMENTS, "seed": seed}) == {**ARGUMENTS, "seed": seed}
    # Head and body together: one write a run (httpcore alone makes two).
    assert len(socket_writes) == 3, socket_writes


def test_a_body_bigger_than_a_held_write_goes_out_whole(
    socket_writes: list[int], run: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    prompt = "fox " * (HELD_WRITE // 2)
    assert run({"prompt": prompt}) == {"prompt": prompt}
    assert max(socket_writes) > HELD_WRITE  # the big body went as it came, not held


def test_a_run_with_local_inputs_still_uploads_them_first(
    client: SyncClient, server: LocalServer, tmp_path: Path
) -> None:
    # Flat arguments skip the uploads walk; one local value among them still takes it.
    path = tmp_path / "mask.bin"
    path.write_bytes(b"local bytes")
    result = client.run(ECHO, {"prompt": "a fox", "file_url": path, "data_url": b"raw"})
    assert result["prompt"] == "a fox"
    assert result["file_url"].startswith(server.target.cdn_url)
    assert result["data_url"].startswith(server.target.cdn_url)


class _StrPath(str):
    """A str subclass: never local data, but not a plain str either (takes the full walk)."""

    __slots__ = ()


@pytest.mark.parametrize(
    ("arguments", "uploads"),
    [
        ({"prompt": "a fox", "seed": 7, "cfg": 3.5, "safe": True, "negative": None}, False),
        ({"prompt": _StrPath("a fox")}, False),
        ({"prompt": "a fox", "image": b"\x89PNG"}, True),
        ({"prompt": "a fox", "image": bytearray(b"x")}, True),
        ({"prompt": "a fox", "image": Path("cat.png")}, True),
        ({"prompt": "a fox", "images": [{"url": Path("cat.png")}]}, True),
        ({"prompt": "a fox", "images": [{"url": "https://x/cat.png"}]}, False),
    ],
)
def test_has_uploads_sees_local_data_flat_or_nested(
    arguments: dict[str, Any], uploads: bool
) -> None:
    assert has_uploads(arguments) is uploads


@pytest.fixture
def cookie_server() -> Iterator[tuple[str, list[str | None]]]:
    """A server answering every request with a ``Set-Cookie``; the ``Cookie`` each one carried."""
    carried: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            carried.append(self.headers.get("Cookie"))
            body = json.dumps({"ok": True}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Set-Cookie", "session=tracked; Path=/")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    with plain_http(Handler) as base_url:
        yield base_url, carried


def test_a_cookie_the_server_sets_is_never_sent_back(
    cookie_server: tuple[str, list[str | None]],
) -> None:
    base_url, carried = cookie_server
    target = Target.local(base_url, "k" * 32)
    sync, asynchronous = SyncClient(target), AsyncClient(target)
    try:
        for _ in range(2):
            assert sync.run("any/app", ARGUMENTS) == {"ok": True}
            assert asyncio.run(asynchronous.run("any/app", ARGUMENTS)) == {"ok": True}
    finally:
        sync.close()
        _runtime.run(asynchronous.aclose())
    assert carried == [None] * 4

"""What the README's "The Python API" section promises of uploads, errors and retries."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from falnb import FalError, HTTPError, SyncClient
from falnb.local import LocalServer


def fetch(url: str) -> httpx.Response:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, url
    return response


def test_upload_file_takes_a_path_bytes_or_a_pil_image(
    client: SyncClient, server: LocalServer, tmp_path: Path
) -> None:
    # falnb.upload_file is the default SyncClient's upload_file: the same method as here.
    photo = Image.new("RGB", (7, 5), (200, 30, 40))
    path = tmp_path / "photo.png"
    photo.save(path)

    by_path = fetch(client.upload_file(path))
    assert by_path.content == path.read_bytes()
    assert by_path.headers["content-type"].startswith("image/png")
    assert fetch(client.upload_file(str(path))).content == path.read_bytes()

    assert fetch(client.upload_file(b"\x00raw bytes\xff")).content == b"\x00raw bytes\xff"
    assert fetch(client.upload_file(bytearray(b"abc"))).content == b"abc"  # type: ignore[arg-type]  # accepted at run time

    by_image = fetch(client.upload_file(photo))
    assert by_image.headers["content-type"].startswith("image/png")
    with Image.open(io.BytesIO(by_image.content)) as decoded:
        assert decoded.size == (7, 5)
        assert decoded.convert("RGB").getpixel((3, 2)) == (200, 30, 40)
    assert len(server.journal.entries(method="POST", path_contains="/_cdn/files/upload")) == 5


def test_upload_file_of_a_missing_path_is_one_readable_error(
    client: SyncClient, server: LocalServer, tmp_path: Path
) -> None:
    with pytest.raises(FalError, match=r"no such file: .*nope\.png"):
        client.upload_file(tmp_path / "nope.png")
    with pytest.raises(TypeError, match="path, bytes or a PIL image, not int"):
        client.upload_file(42)  # type: ignore[arg-type]
    assert not server.journal.entries(path_contains="/_cdn/")


def test_http_error_has_status_and_status_code(client: SyncClient) -> None:
    with pytest.raises(HTTPError) as caught:
        client.run("local/fail", {"status": 418, "detail": "short and stout"})
    assert caught.value.status_code == 418  # fal-client's name
    assert caught.value.status == 418  # the README's
    assert caught.value.detail == "short and stout"


def test_a_503_the_app_answered_is_raised_not_paid_for_twice(
    client: SyncClient, server: LocalServer
) -> None:
    # local/fail runs (the server accepted and started it) and then answers 503: a retry would
    # run (and on fal pay for) it again, so it is raised at once, with its request id.
    with pytest.raises(HTTPError) as direct:
        client.run("local/fail", {"status": 503})
    assert direct.value.status == 503
    assert direct.value.request_id
    assert len(server.journal.entries(method="POST", path_contains="/local/fail")) == 1

    server.journal.clear()
    handle = client.submit("local/fail", {"status": 503})
    with pytest.raises(HTTPError) as queued:
        handle.get()
    assert queued.value.status == 503
    assert queued.value.request_id == handle.request_id
    assert len(server.journal.accepted_submissions("local/fail")) == 1
    result_reads = [
        e
        for e in server.journal.entries(method="GET", path_contains=handle.request_id)
        if e.path.endswith(handle.request_id)
    ]
    assert len(result_reads) == 1  # the stored failure is final: no re-reads either


def test_a_503_from_the_ingress_is_retried(client: SyncClient, server: LocalServer) -> None:
    # fal's gateway answering 503 (nginx body, no request id) never reached an app: retried.
    rule = server.faults.add("status=503;ingress", role="run", method="POST", times=2)
    assert client.run("local/echo", {"fox": "red"}) == {"fox": "red"}
    assert rule.fired == 2
    assert len(server.journal.entries(method="POST", role="run")) == 3

"""The official fal-client, unchanged, against the local server (fal-protocol.md section 2.3 A).

This is how we know the local server speaks fal's protocol: fal's own client only has to be
pointed at it by its module URL constants.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import fal_client
import fal_client.client as fal_module
import httpx
import pytest
from PIL import Image

from falnb import local as falnb_local
from falnb.local import LocalServer
from tests.kit import subscribed

pytestmark = [
    pytest.mark.compat,
    # fal-client 1.0.3 builds throwaway httpx clients (CDN uploads, tokens) it never closes.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture
def fal(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[fal_client.SyncClient]:
    base = server.base_url
    monkeypatch.setattr(fal_module, "RUN_URL_FORMAT", f"{base}/")
    monkeypatch.setattr(fal_module, "QUEUE_URL_FORMAT", f"{base}/_queue/")
    monkeypatch.setattr(fal_module, "REALTIME_URL_FORMAT", base.replace("http", "ws", 1) + "/")
    monkeypatch.setattr(fal_module, "REST_URL", f"{base}/_rest")
    monkeypatch.setattr(fal_module, "CDN_URL", f"{base}/_cdn")
    monkeypatch.setenv("FAL_KEY", server.key)
    client = fal_client.SyncClient(key=server.key)
    yield client
    if "_client" in client.__dict__:  # fal-client caches its httpx client lazily
        client._client.close()


@pytest.fixture
def fal_async(fal: fal_client.SyncClient, server: LocalServer) -> fal_client.AsyncClient:
    return fal_client.AsyncClient(key=server.key)


def test_run(fal: fal_client.SyncClient) -> None:
    assert fal.run("local/echo", {"prompt": "a red fox", "seed": 7}) == {
        "prompt": "a red fox",
        "seed": 7,
    }


def test_subscribe_with_logs(fal: fal_client.SyncClient) -> None:
    result, enqueued, updates = subscribed(fal, "local/slow", {"duration": 0.6, "steps": 3})
    assert len(enqueued) == 1
    assert isinstance(updates[-1], fal_client.Completed)
    assert updates[-1].error is None
    messages = [
        log["message"]
        for update in updates
        if isinstance(update, (fal_client.InProgress, fal_client.Completed))
        for log in (update.logs or [])
    ]
    assert "step 3/3" in messages
    assert isinstance(result, dict)


def test_submit_status_result(fal: fal_client.SyncClient, server: LocalServer) -> None:
    handle = fal.submit("local/echo", {"value": 1})
    assert handle.status_url.startswith(server.base_url)
    assert handle.get() == {"value": 1}
    status = fal.status("local/echo", handle.request_id, with_logs=True)
    assert isinstance(status, fal_client.Completed)
    assert fal.result("local/echo", handle.request_id) == {"value": 1}


def test_cancel_running_request(fal: fal_client.SyncClient, server: LocalServer) -> None:
    handle = fal.submit("local/slow", {"duration": 30, "steps": 30})
    for event in handle.iter_events(with_logs=True, interval=0.05):
        if isinstance(event, fal_client.InProgress):
            break
    handle.cancel()
    final = fal.status("local/slow", handle.request_id)
    assert isinstance(final, fal_client.Completed)
    assert final.error_type == "client_cancelled"
    with pytest.raises(fal_client.FalClientHTTPError) as caught:
        handle.get()
    assert caught.value.status_code == 499


def test_stream(fal: fal_client.SyncClient) -> None:
    events = list(fal.stream("local/stream-text", {"prompt": "one two three"}))
    assert len(events) >= 3
    assert events[-1]["text"] == "one two three"


def test_stream_with_an_error_mid_stream(fal: fal_client.SyncClient) -> None:
    # The local server reports it as fal's apps do, as a data event: fal-client yields it.
    @falnb_local.app("compat/breaks")
    def breaks(arguments: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield {"text": "one"}
        raise RuntimeError("broke midway")

    try:
        events = list(fal.stream("compat/breaks", {}))
    finally:
        falnb_local.unregister("compat/breaks")
    assert events[0] == {"text": "one"}
    assert events[1]["error"] == "RuntimeError: broke midway"


def test_upload_bytes_and_image(fal: fal_client.SyncClient) -> None:
    url = fal.upload(b"hello falnb", "text/plain", file_name="hello.txt")
    response = httpx.get(url)
    assert response.content == b"hello falnb"
    assert response.headers["content-type"].startswith("text/plain")

    image = Image.new("RGB", (8, 6), (200, 30, 40))
    image_url = fal.upload_image(image, format="png")
    fetched = Image.open(io.BytesIO(httpx.get(image_url).content))
    assert fetched.size == (8, 6)
    assert fetched.convert("RGB").getpixel((0, 0)) == (200, 30, 40)


def test_upload_with_fal_clients_lifecycle_is_private_until_signed(
    fal: fal_client.SyncClient, server: LocalServer
) -> None:
    lifecycle = fal_module.StorageSettings(
        expires_in="1h", initial_acl=fal_module.StorageACL(default="forbid")
    )
    url = fal.upload(b"private", "text/plain", file_name="p.txt", lifecycle=lifecycle)
    assert httpx.get(url).status_code == 403
    signed = httpx.post(
        f"{server.base_url}/_rest/v1/storage/files/sign",
        params={"url": url},
        json={"expiration_seconds": 60},
        headers={"Authorization": f"Key {server.key}"},
    ).json()["signed_url"]
    assert httpx.get(signed).content == b"private"


def test_multipart_upload(
    fal: fal_client.SyncClient, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fal-client's own thresholds, made small so the test sends a few KB in 3 parts.
    monkeypatch.setattr(fal_module, "MULTIPART_THRESHOLD", 10_000)
    monkeypatch.setattr(fal_module, "MULTIPART_CHUNK_SIZE", 8_000)
    data = bytes(range(256)) * 80
    url = fal.upload(data, "application/octet-stream", file_name="big.bin")
    assert httpx.get(url).content == data
    parts = server.journal.entries(method="PUT", path_contains="/multipart/")
    assert len(parts) == 3
    assert {entry.headers.get("accept-encoding") for entry in parts} == {"identity"}


def test_realtime(fal: fal_client.SyncClient) -> None:
    with fal.realtime("local/realtime-echo") as connection:
        connection.send({"prompt": "hi", "n": 1})
        reply = connection.recv()
    assert reply is not None
    assert reply["prompt"] == "hi"
    assert reply["n"] == 1


def test_validation_error_detail_list(fal: fal_client.SyncClient) -> None:
    with pytest.raises(fal_client.FalClientHTTPError) as caught:
        fal.run("local/fail", {"status": 422})
    error = caught.value
    assert error.status_code == 422
    assert isinstance(error.message, list)
    assert {"loc", "msg", "type"} <= set(error.message[0])


def test_unauthorized(fal: fal_client.SyncClient) -> None:
    stranger = fal_client.SyncClient(key="wrong:key")
    try:
        with pytest.raises(fal_client.FalClientHTTPError) as caught:
            stranger.run("local/echo", {})
    finally:
        stranger._client.close()
    assert caught.value.status_code == 401


def test_async_subscribe(fal_async: fal_client.AsyncClient) -> None:
    async def subscribe() -> Any:
        try:
            return await fal_async.subscribe("local/echo", {"n": 3}, with_logs=True)
        finally:
            await (await fal_async._client).aclose()

    assert asyncio.run(subscribe()) == {"n": 3}

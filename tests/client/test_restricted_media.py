"""Restricted media from the client's side: StorageSettings on uploads and requests, and
downloads that fall back to a signed URL on 403 (the key never sent to the CDN, the signed
URL never kept)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest

import falnb
from falnb import (
    AsyncClient,
    HTTPError,
    StorageACL,
    StorageACLRule,
    StorageSettings,
    SyncClient,
    _runtime,
)
from falnb.client._transport import download
from falnb.client.lifecycle import lifecycle_headers
from falnb.local import LocalServer
from falnb.local.journal import JournalEntry
from falnb.repro import LockFile, MediaStore, Recorder
from falnb.session import Session
from tests.kit import keyed_http

PREFERENCE = "x-fal-object-lifecycle-preference"
FORBID = StorageSettings(expires_in="1h", initial_acl="forbid")
FORBID_JSON = {"expiration_duration_seconds": 3600, "initial_acl": {"default": "forbid"}}
IMAGE = {"prompt": "a fox", "image_size": "square", "num_inference_steps": 1}


def is_image(data: bytes) -> bool:
    return data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"))


def fetch(url: str) -> bytes:
    return _runtime.run(download(url)).content


def media_gets(server: LocalServer) -> list[JournalEntry]:
    return server.journal.entries(method="GET", role="cdn")


def sign_calls(server: LocalServer) -> list[JournalEntry]:
    return server.journal.entries(path_contains="/storage/files/sign")


def assert_signed_once(server: LocalServer, url: str) -> None:
    """The journal's story of one restricted download: 403, one sign call, a signed 200 — and
    no credentials on either CDN request."""
    path = url.split("/_cdn", 1)[1]
    gets = [e for e in media_gets(server) if e.path == "/_cdn" + path]
    assert [e.status for e in gets] == [403, 200]
    assert "sig=" in gets[1].query
    assert "sig=" not in gets[0].query
    assert not any(e.credentials for e in gets)
    signs = [e for e in sign_calls(server) if dict(parse_qsl(e.query)).get("url") == url]
    assert len(signs) == 1
    assert signs[0].credentials
    assert signs[0].status == 200
    assert gets[0].time <= signs[0].time <= gets[1].time


def test_storage_settings_map_to_fals_header() -> None:
    assert FORBID.payload() == FORBID_JSON
    assert StorageSettings(expires_in="immediate").payload() == {"expiration_duration_seconds": 60}
    assert StorageSettings(expires_in="never").payload() is None
    assert lifecycle_headers(StorageSettings(expires_in="never")) == {}
    assert StorageSettings(expires_in=90).payload() == {"expiration_duration_seconds": 90}
    acl = StorageACL(default="hide", rules=[StorageACLRule("alice", "allow")])
    assert StorageSettings(initial_acl=acl).payload() == {
        "initial_acl": {"default": "hide", "rules": [{"user": "alice", "decision": "allow"}]}
    }
    upload = lifecycle_headers(FORBID, upload=True)
    assert set(upload) == {"x-fal-object-lifecycle", PREFERENCE}
    assert json.loads(upload[PREFERENCE]) == FORBID_JSON
    assert set(lifecycle_headers(FORBID)) == {PREFERENCE}


@pytest.mark.parametrize(
    "kwargs",
    [{"expires_in": "2h"}, {"expires_in": 0}, {"expires_in": True}, {"initial_acl": "private"}],
)
def test_bad_storage_settings_fail_before_anything_is_sent(kwargs: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError), match=r"expires_in|initial_acl"):
        StorageSettings(**kwargs)  # type: ignore[arg-type]


def test_storage_settings_must_be_the_type(client: SyncClient, server: LocalServer) -> None:
    with pytest.raises(TypeError, match="StorageSettings"):
        client.submit("local/echo", {"value": 1}, storage_settings={"initial_acl": "forbid"})  # type: ignore[arg-type]
    assert server.journal.accepted_submissions("local/echo") == []


def test_a_restricted_upload_downloads_through_a_signed_url(
    client: SyncClient, server: LocalServer, tmp_path: Path
) -> None:
    path = tmp_path / "secret.txt"
    path.write_bytes(b"for my eyes only")
    url = client.upload_file(path, storage_settings=FORBID)
    upload = server.journal.entries(method="POST", path_contains="/files/upload")[-1]
    assert json.loads(upload.headers["x-fal-object-lifecycle"]) == FORBID_JSON
    assert json.loads(upload.headers[PREFERENCE]) == FORBID_JSON
    assert httpx.get(url).status_code == 403
    server.journal.clear()
    assert fetch(url) == b"for my eyes only"
    assert_signed_once(server, url)


def test_upload_and_upload_image_take_settings_on_the_async_front(
    aclient: AsyncClient, server: LocalServer
) -> None:
    url = asyncio.run(aclient.upload(b"abc", "text/plain", "a.txt", storage_settings=FORBID))
    assert httpx.get(url).status_code == 403
    assert fetch(url) == b"abc"


@pytest.mark.parametrize("how", ["run", "submit", "subscribe"])
def test_a_requests_settings_restrict_its_outputs(
    client: SyncClient, server: LocalServer, how: str
) -> None:
    call = getattr(client, how)
    answer = call("local/text-to-image", IMAGE, storage_settings=FORBID)
    output = answer.get() if how == "submit" else answer
    sent = [e for e in server.journal.entries(method="POST") if PREFERENCE in e.headers]
    assert len(sent) == 1
    assert json.loads(sent[0].headers[PREFERENCE]) == FORBID_JSON
    url = output["images"][0]["url"]
    assert httpx.get(url).status_code == 403
    server.journal.clear()
    assert is_image(fetch(url))
    assert_signed_once(server, url)


def test_the_async_front_sends_the_preference_too(
    aclient: AsyncClient, server: LocalServer
) -> None:
    async def go() -> dict[str, object]:
        handle = await aclient.submit("local/text-to-image", IMAGE, storage_settings=FORBID)
        return await handle.get()

    output = asyncio.run(go())
    url = output["images"][0]["url"]  # type: ignore[index]
    assert httpx.get(url).status_code == 403


def test_without_a_key_for_its_cdn_a_restricted_file_stays_refused(
    make_server: Callable[..., LocalServer],
) -> None:
    # No falnb client has talked to this server, so nothing may sign its files.
    running = make_server(faults=False)
    with keyed_http(running) as http:
        http.put("/_rest/v1/storage/settings", json={"initial_acl": {"default": "forbid"}})
        token = http.post("/_rest/storage/auth/token", json={}).json()["token"]
        url = http.post(
            "/_cdn/files/upload", content=b"x", headers={"Authorization": f"Bearer {token}"}
        ).json()["access_url"]
    with pytest.raises(HTTPError) as caught:
        fetch(url)
    assert caught.value.status_code == 403
    assert running.journal.entries(path_contains="/storage/files/sign") == []


@pytest.fixture
def restricted_server(make_server: Callable[..., LocalServer]) -> LocalServer:
    """A server whose account stores every file as ``forbid`` (fal's storage settings)."""
    running = make_server(faults=False)
    answer = httpx.put(
        f"{running.base_url}/_rest/v1/storage/settings",
        json={"initial_acl": {"default": "forbid"}},
        headers={"Authorization": f"Key {running.key}"},
    )
    assert answer.status_code == 200
    return running


def test_a_session_run_keeps_the_plain_url_and_fetches_by_signature(
    restricted_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FALNB_RECORD", raising=False)
    monkeypatch.chdir(tmp_path)
    lock = tmp_path / "falnb.lock"
    recorder = Recorder(LockFile(lock, secrets=[restricted_server.key]), MediaStore(tmp_path / "m"))
    with SyncClient(restricted_server.target) as client:
        result = Session(client, recorder=recorder).run("local/text-to-image", IMAGE, seed=7)
    [file] = result.files
    # Saved results keep the machine-independent form of a local server's URL.
    assert file.url.startswith("falnb-local:/_cdn/files/")
    assert is_image(file.data)
    assert_signed_once(restricted_server, restricted_server.base_url + file.url[12:])
    saved = lock.read_text()
    assert file.url in saved
    assert "sig=" not in saved
    assert "expires=" not in saved
    assert "storage/files/sign" not in saved
    assert restricted_server.key not in saved


def test_falnb_exports_the_settings() -> None:
    assert falnb.StorageSettings is StorageSettings
    assert {"StorageSettings", "StorageACL", "StorageACLRule"} <= set(falnb.__all__)


def test_a_hidden_file_404s_and_still_downloads_by_signature(
    client: SyncClient, server: LocalServer
) -> None:
    url = client.upload(
        b"hidden", "text/plain", storage_settings=StorageSettings(initial_acl="hide")
    )
    assert httpx.get(url).status_code == 404
    server.journal.clear()
    assert fetch(url) == b"hidden"
    assert [e.status for e in media_gets(server)] == [404, 200]


def test_a_missing_file_keeps_its_404_after_the_sign_call_fails(
    client: SyncClient, server: LocalServer
) -> None:
    url = client.upload(b"x", "text/plain")
    missing = url.rsplit("/", 1)[0] + "/gone.txt"
    with pytest.raises(HTTPError) as caught:
        fetch(missing)
    assert caught.value.status_code == 404
    assert [e.status for e in sign_calls(server)] == [404]

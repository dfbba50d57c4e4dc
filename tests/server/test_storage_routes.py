"""REST and CDN routes over loopback: tokens, CDN uploads, signed PUTs, multipart, downloads."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from falnb.local import LocalServer


def cdn_token(http: httpx.Client) -> str:
    response = http.post(
        "/_rest/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={}
    )
    assert response.status_code == 200
    return str(response.json()["token"])


def test_tokens_reply_is_a_json_string(http: httpx.Client) -> None:
    response = http.post("/_rest/tokens/", json={"allowed_apps": ["echo"], "token_expiration": 60})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    token = json.loads(response.text)
    assert isinstance(token, str)
    assert len(token) >= 20


@pytest.mark.parametrize(
    "body",
    [
        {"allowed_apps": "echo"},
        {"allowed_apps": [1]},
        {"allowed_apps": ["echo"], "token_expiration": 0},
        {"allowed_apps": ["echo"], "token_expiration": "60"},
    ],
)
def test_tokens_reject_bad_bodies(http: httpx.Client, body: dict[str, object]) -> None:
    assert http.post("/_rest/tokens/", json=body).status_code == 422


def test_tokens_need_the_key_not_an_app_token(http: httpx.Client, base_url: str) -> None:
    token = http.post("/_rest/tokens/", json={"allowed_apps": ["echo"]}).json()
    anonymous = httpx.post(f"{base_url}/_rest/tokens/", json={"allowed_apps": ["echo"]})
    assert anonymous.status_code == 401
    with_token = httpx.post(
        f"{base_url}/_rest/tokens/", params={"fal_jwt_token": token}, json={"allowed_apps": []}
    )
    assert with_token.status_code == 401


def test_cdn_token_shape(http: httpx.Client, server: LocalServer) -> None:
    response = http.post(
        "/_rest/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={}
    )
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["base_url"] == server.state.cdn_url
    assert body["expires_at"].endswith("+00:00")
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires.timestamp() > time.time() + 60


def test_cdn_upload_and_public_download(http: httpx.Client, base_url: str) -> None:
    token = cdn_token(http)
    response = httpx.post(
        f"{base_url}/_cdn/files/upload",
        content=b"hello cdn",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "text/plain",
            "X-Fal-File-Name": "hello.txt",
        },
    )
    assert response.status_code == 200
    url = response.json()["access_url"]
    assert url.startswith(f"{base_url}/_cdn/files/")
    assert url.endswith("/hello.txt")
    fetched = httpx.get(url)  # no key: fal's files are public
    assert fetched.content == b"hello cdn"
    assert fetched.headers["content-type"].startswith("text/plain")
    partial = httpx.get(url, headers={"Range": "bytes=0-4"})
    assert partial.status_code == 206
    assert partial.content == b"hello"


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Key wrong:key"])
def test_cdn_upload_refuses_bad_credentials(base_url: str, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.post(f"{base_url}/_cdn/files/upload", content=b"x", headers=headers)
    assert response.status_code == 401


def test_initiate_and_signed_put(http: httpx.Client, base_url: str) -> None:
    initiated = http.post(
        "/_rest/storage/upload/initiate",
        params={"storage_type": "gcs"},
        json={"file_name": "data.json", "content_type": "application/json"},
    ).json()
    upload_url, file_url = initiated["upload_url"], initiated["file_url"]
    assert "sig=" in upload_url
    assert httpx.get(file_url).status_code == 404  # reserved, not yet uploaded

    unsigned = file_url
    assert httpx.put(unsigned, content=b"{}").status_code == 403
    tampered = upload_url.replace("sig=", "sig=0")
    assert httpx.put(tampered, content=b"{}").status_code == 403

    # No Authorization header: the JS client sends none to the signed URL.
    put = httpx.put(upload_url, content=b'{"a": 1}', headers={"Content-Type": "application/json"})
    assert put.status_code == 200
    fetched = httpx.get(file_url)
    assert fetched.json() == {"a": 1}
    assert fetched.headers["content-type"].startswith("application/json")


def test_initiate_needs_the_key(base_url: str) -> None:
    response = httpx.post(
        f"{base_url}/_rest/storage/upload/initiate",
        params={"storage_type": "fal-cdn-v3"},
        json={"file_name": "a.txt", "content_type": "text/plain"},
    )
    assert response.status_code == 401


def test_rest_multipart_js_style(http: httpx.Client) -> None:
    initiated = http.post(
        "/_rest/storage/upload/initiate-multipart",
        params={"storage_type": "fal-cdn-v3"},
        json={"file_name": "big.bin", "content_type": "application/octet-stream"},
    ).json()
    upload = urlsplit(initiated["upload_url"])
    base = f"{upload.scheme}://{upload.netloc}{upload.path}"
    chunks = [b"a" * 1000, b"b" * 1000, b"c" * 10]
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        response = httpx.put(f"{base}/{number}?{upload.query}", content=chunk)
        assert response.status_code == 200
        part = response.json()
        assert part["partNumber"] == number
        parts.append(part)

    wrong = [{**parts[0], "etag": "0" * 32}, *parts[1:]]
    assert httpx.post(f"{base}/complete?{upload.query}", json={"parts": wrong}).status_code == 400
    unsigned = httpx.post(f"{base}/complete", json={"parts": parts})
    assert unsigned.status_code == 401
    done = httpx.post(f"{base}/complete?{upload.query}", json={"parts": parts[::-1]})
    assert done.status_code == 200
    assert httpx.get(initiated["file_url"]).content == b"".join(chunks)


def test_cdn_multipart_python_style(http: httpx.Client, base_url: str) -> None:
    auth = {"Authorization": f"Bearer {cdn_token(http)}"}
    created = httpx.post(
        f"{base_url}/_cdn/files/upload/multipart",
        headers={**auth, "Content-Type": "image/png", "X-Fal-File-Name": "pic.png"},
    ).json()
    access_url, upload_id = created["access_url"], created["uploadId"]
    chunks = [b"\x89PNG" + b"x" * 500, b"y" * 300]
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        # As fal-client: a compressed answer would carry no ETag header (see the CDN).
        response = httpx.put(
            f"{access_url}/multipart/{upload_id}/{number}",
            content=chunk,
            headers={**auth, "Accept-Encoding": "identity"},
        )
        assert response.status_code == 200
        assert response.headers["etag"] == hashlib.sha256(chunk).hexdigest()[:32]
        parts.append({"partNumber": number, "etag": response.headers["etag"]})
    anonymous = httpx.put(f"{access_url}/multipart/{upload_id}/3", content=b"z")
    assert anonymous.status_code == 401
    done = httpx.post(
        f"{access_url}/multipart/{upload_id}/complete", json={"parts": parts}, headers=auth
    )
    assert done.status_code == 200
    fetched = httpx.get(access_url)
    assert fetched.content == b"".join(chunks)
    assert fetched.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("/abs/path/x.txt", "x.txt"),
        ("..\\..\\win.ini", "win.ini"),
        ("ünïcødé name.txt", "n_c_d_name.txt"),
        ("..", "file.txt"),
    ],
)
def test_uploaded_names_cannot_escape_the_store(
    http: httpx.Client, base_url: str, server: LocalServer, name: str, expected: str
) -> None:
    response = httpx.post(
        f"{base_url}/_cdn/files/upload",
        content=b"payload",
        headers={  # type: ignore[arg-type]  # a raw bytes header value, on purpose
            "Authorization": f"Bearer {cdn_token(http)}",
            "Content-Type": "text/plain",
            "X-Fal-File-Name": name.encode("utf-8"),
        },
    )
    url = response.json()["access_url"]
    path = urlsplit(url).path
    _, _, _, file_id, stored_name = path.split("/")
    assert stored_name == expected
    stored = Path(server.state.files.root, file_id, stored_name).resolve()
    assert stored.is_relative_to(Path(server.state.files.root).resolve())
    assert httpx.get(url).content == b"payload"


def test_downloads_refuse_bad_ids_and_names(http: httpx.Client, base_url: str) -> None:
    token = cdn_token(http)
    url = httpx.post(
        f"{base_url}/_cdn/files/upload",
        content=b"secret-ish",
        headers={"Authorization": f"Bearer {token}", "X-Fal-File-Name": "a.txt"},
    ).json()["access_url"]
    file_id = urlsplit(url).path.split("/")[3]
    for bad in [
        f"/_cdn/files/{file_id}/.meta.json",
        f"/_cdn/files/{file_id}/..%2F..%2Fetc%2Fpasswd",
        f"/_cdn/files/{file_id}/%2Fetc%2Fpasswd",
        "/_cdn/files/short/a.txt",
        f"/_cdn/files/{file_id}%2F..%2F{file_id}/a.txt",
        f"/_cdn/files/{file_id[:-1]}x/a.txt",
        f"/_cdn/files/{file_id}/b.txt",
    ]:
        response = httpx.get(f"{base_url}{bad}")
        assert response.status_code == 404, bad
        assert b"secret-ish" not in response.content


def test_jwks_is_public(base_url: str) -> None:
    response = httpx.get(f"{base_url}/_rest/.well-known/jwks.json")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert (key["kty"], key["crv"]) == ("OKP", "Ed25519")
    assert len(key["x"]) == 43  # 32 bytes, base64url without padding

"""Restricted files on the local server: lifecycle preferences, 403/404 for anonymous GETs,
signed download URLs that expire, and account-wide storage settings (fal's Platform API)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
import pytest

from falnb.local import LocalServer
from tests.kit import keyed_http

FORBID = json.dumps({"initial_acl": {"default": "forbid"}})
SIGN = "/_rest/v1/storage/files/sign"


def cdn_upload(http: httpx.Client, data: bytes, lifecycle: str | None = None) -> str:
    token = http.post(
        "/_rest/storage/auth/token", params={"storage_type": "fal-cdn-v3"}, json={}
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/png"}
    if lifecycle is not None:
        headers["X-Fal-Object-Lifecycle"] = lifecycle
    response = http.post("/_cdn/files/upload", content=data, headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["access_url"])


def sign(http: httpx.Client, url: str, seconds: int = 60) -> httpx.Response:
    return http.post(SIGN, params={"url": url}, json={"expiration_seconds": seconds})


def test_a_forbidden_upload_answers_403_and_its_signed_url_serves_it(http: httpx.Client) -> None:
    url = cdn_upload(http, b"private bytes", FORBID)
    assert httpx.get(url).status_code == 403
    # The key does not open it either: only a signature does (the CDN never reads keys).
    assert http.get(url).status_code == 403
    answer = sign(http, url)
    assert answer.status_code == 200
    signed = answer.json()["signed_url"]
    assert signed.startswith(url + "?")
    fetched = httpx.get(signed)
    assert fetched.status_code == 200
    assert fetched.content == b"private bytes"


def test_a_public_upload_stays_public(http: httpx.Client) -> None:
    url = cdn_upload(http, b"public bytes")
    assert httpx.get(url).content == b"public bytes"


def test_hide_denies_the_file_exists_until_signed(http: httpx.Client) -> None:
    url = cdn_upload(http, b"hidden", json.dumps({"initial_acl": {"default": "hide"}}))
    assert httpx.get(url).status_code == 404
    assert httpx.get(sign(http, url).json()["signed_url"]).content == b"hidden"


def test_a_signed_url_expires(http: httpx.Client, until: Callable[..., Any]) -> None:
    url = cdn_upload(http, b"short-lived", FORBID)
    signed = sign(http, url, seconds=1).json()["signed_url"]
    assert httpx.get(signed).status_code == 200
    until(lambda: httpx.get(signed).status_code == 403, timeout=5, what="the signature to expire")


def test_a_signature_is_bound_to_its_file(http: httpx.Client) -> None:
    first = cdn_upload(http, b"one", FORBID)
    second = cdn_upload(http, b"two", FORBID)
    query = urlsplit(sign(http, first).json()["signed_url"]).query
    assert httpx.get(f"{second}?{query}").status_code == 403
    tampered = dict(parse_qsl(query))
    tampered["expires"] = str(int(tampered["expires"]) + 3600)
    parts = urlsplit(first)
    forged = urlunsplit(parts._replace(query="&".join(f"{k}={v}" for k, v in tampered.items())))
    assert httpx.get(forged).status_code == 403


def test_the_sign_route_checks_key_body_and_url(
    http: httpx.Client, server: LocalServer, base_url: str
) -> None:
    url = cdn_upload(http, b"x", FORBID)
    anonymous = httpx.post(f"{base_url}{SIGN}", params={"url": url}, json={"expiration_seconds": 5})
    assert anonymous.status_code == 401
    for body in ({}, {"expiration_seconds": 0}, {"expiration_seconds": "60"}):
        assert http.post(SIGN, params={"url": url}, json=body).status_code == 422
    assert sign(http, "https://v3.fal.media/files/b/x/y.png").status_code == 422
    assert sign(http, url + "?a=1").status_code == 422
    missing = url.rsplit("/", 1)[0] + "/other.png"
    assert sign(http, missing).status_code == 404
    journaled = server.journal.entries(path_contains="/storage/files/sign")
    assert journaled
    assert all(e.role == "rest" for e in journaled)


def test_an_expiring_upload_is_gone_after_its_lifetime(
    http: httpx.Client, until: Callable[..., Any]
) -> None:
    url = cdn_upload(http, b"ephemeral", json.dumps({"expiration_duration_seconds": 1}))
    assert httpx.get(url).status_code == 200
    until(lambda: httpx.get(url).status_code == 404, timeout=5, what="the file to expire")


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "[1]",
        json.dumps({"expiration_duration_seconds": 0}),
        json.dumps({"initial_acl": {"default": "private"}}),
    ],
)
def test_a_bad_lifecycle_header_is_refused_in_one_line(
    http: httpx.Client, server: LocalServer, value: str
) -> None:
    token = http.post("/_rest/storage/auth/token", json={}).json()["token"]
    upload = http.post(
        "/_cdn/files/upload",
        content=b"x",
        headers={"Authorization": f"Bearer {token}", "X-Fal-Object-Lifecycle": value},
    )
    assert upload.status_code == 422
    assert "x-fal-object-lifecycle" in upload.json()["detail"]
    submit = http.post(
        f"{server.target.queue_url}/local/echo",
        json={"value": 1},
        headers={"X-Fal-Object-Lifecycle-Preference": value},
    )
    assert submit.status_code == 422
    assert "x-fal-object-lifecycle-preference" in submit.json()["detail"]
    assert server.journal.accepted_submissions("local/echo") == []


def test_rest_initiate_takes_the_preference_header(http: httpx.Client) -> None:
    initiated = http.post(
        "/_rest/storage/upload/initiate",
        json={"file_name": "a.txt", "content_type": "text/plain"},
        headers={"X-Fal-Object-Lifecycle-Preference": FORBID},
    ).json()
    assert httpx.put(initiated["upload_url"], content=b"via rest").status_code == 200
    assert httpx.get(initiated["file_url"]).status_code == 403
    assert httpx.get(sign(http, initiated["file_url"]).json()["signed_url"]).content == b"via rest"


def test_a_requests_preference_restricts_its_output_files(
    http: httpx.Client, server: LocalServer
) -> None:
    arguments = {"prompt": "a fox", "image_size": "square", "num_inference_steps": 1}
    headers = {"X-Fal-Object-Lifecycle-Preference": FORBID}
    ran = http.post(f"{server.base_url}/local/text-to-image", json=arguments, headers=headers)
    assert ran.status_code == 200
    url = ran.json()["images"][0]["url"]
    assert httpx.get(url).status_code == 403
    assert httpx.get(sign(http, url).json()["signed_url"]).status_code == 200


def test_account_settings_restrict_files_stored_without_a_preference(
    make_server: Callable[..., LocalServer],
) -> None:
    running = make_server(faults=False)
    with keyed_http(running) as http:
        assert http.get("/_rest/v1/storage/settings").json() == {
            "expiration_duration_seconds": None,
            "initial_acl": None,
        }
        put = http.put("/_rest/v1/storage/settings", json={"initial_acl": {"default": "forbid"}})
        assert put.json() == {
            "expiration_duration_seconds": None,
            "initial_acl": {"default": "forbid"},
        }
        assert http.put("/_rest/v1/storage/settings", json={"initial_acl": "x"}).status_code == 422
        restricted = cdn_upload(http, b"by default")
        assert httpx.get(restricted).status_code == 403
        # A file's own preference wins over the account's.
        public = cdn_upload(http, b"open", json.dumps({"initial_acl": {"default": "allow"}}))
        assert httpx.get(public).status_code == 200

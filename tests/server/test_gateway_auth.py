"""Auth and x-fal-request-id on every route of the local server (plain httpx over loopback)."""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from falnb.local import LocalServer

PROTECTED = [
    ("POST", "/local/echo"),
    ("POST", "/local/stream-text/stream"),
    ("POST", "/_queue/local/echo"),
    ("GET", "/_queue/local/echo/requests/abc/status"),
    ("GET", "/_queue/local/echo/requests/abc"),
    ("PUT", "/_queue/local/echo/requests/abc/cancel"),
    ("GET", "/_falnb/journal"),
    ("POST", "/_rest/tokens/"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("authorization", [None, "Key wrong:key", "Bearer x", "Key"])
def test_protected_routes_answer_401(
    server: LocalServer, method: str, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.request(method, server.base_url + path, headers=headers, json={})
    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}
    uuid.UUID(response.headers["x-fal-request-id"])


def test_health_needs_no_key(server: LocalServer) -> None:
    response = httpx.get(f"{server.base_url}/_falnb/health")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert "x-fal-request-id" in response.headers


def test_every_response_has_a_fresh_request_id(http: httpx.Client) -> None:
    responses = [
        http.post("/local/echo", json={}),
        http.post("/local/echo", json={}),
        http.post("/nobody/nothing", json={}),
        http.get("/_falnb/journal"),
    ]
    ids = [r.headers["x-fal-request-id"] for r in responses]
    assert len(set(ids)) == len(ids)
    for value in ids:
        assert uuid.UUID(value).version == 4


def test_queue_routes_carry_the_queue_request_id(http: httpx.Client) -> None:
    submitted = http.post("/_queue/local/echo", json={"a": 1})
    request_id = submitted.json()["request_id"]
    assert submitted.headers["x-fal-request-id"] == request_id
    status = http.get(submitted.json()["status_url"])
    assert status.headers["x-fal-request-id"] == request_id


def test_app_token_is_accepted_for_its_alias_only(server: LocalServer, http: httpx.Client) -> None:
    token = server.state.tokens.mint("app", allowed_apps=("echo",)).value
    ok = httpx.post(f"{server.base_url}/local/echo", params={"fal_jwt_token": token}, json={})
    assert ok.status_code == 200
    other = httpx.post(f"{server.base_url}/local/slow", params={"fal_jwt_token": token}, json={})
    assert other.status_code == 401
    # App tokens open run/queue/realtime only, never the journal or token minting.
    journal = httpx.get(f"{server.base_url}/_falnb/journal", params={"fal_jwt_token": token})
    assert journal.status_code == 401


def test_journal_never_holds_the_key_or_tokens(server: LocalServer, http: httpx.Client) -> None:
    token = server.state.tokens.mint("app", allowed_apps=("echo",)).value
    http.post("/local/echo", params={"fal_jwt_token": token}, json={"x": 1})
    dump = http.get("/_falnb/journal").text
    assert server.key not in dump
    assert token not in dump
    entry = server.journal.entries(path_contains="/local/echo")[0]
    assert "authorization" not in entry.headers
    assert entry.query == "fal_jwt_token=%2A%2A%2A"
    assert entry.body == {"x": 1}
    assert entry.role == "run"
    assert entry.status == 200


def test_journal_never_holds_upload_signatures(server: LocalServer, http: httpx.Client) -> None:
    initiated = http.post(
        "/_rest/storage/upload/initiate", json={"file_name": "a.txt", "content_type": "text/plain"}
    ).json()
    signature = parse_qs(urlsplit(initiated["upload_url"]).query)["sig"][0]
    assert httpx.put(initiated["upload_url"], content=b"hi").status_code == 200
    multipart = http.post(
        "/_rest/storage/upload/initiate-multipart",
        json={"file_name": "b.bin", "content_type": "application/octet-stream"},
    ).json()
    part_url = multipart["upload_url"].replace("?", "/1?", 1)
    assert httpx.put(part_url, content=b"part").status_code == 200
    part_signature = parse_qs(urlsplit(part_url).query)["sig"][0]

    dump = http.get("/_falnb/journal").text
    assert signature not in dump
    assert part_signature not in dump
    (put,) = server.journal.entries(method="PUT", path_contains="/a.txt")
    query = parse_qs(put.query)
    assert query["sig"] == ["***"]
    assert query["expires"][0].isdigit()  # what is not secret stays readable


def test_journal_redacts_secrets_inside_a_webhook_url(
    server: LocalServer, http: httpx.Client, caplog: pytest.LogCaptureFixture, until: Any
) -> None:
    caplog.set_level(logging.INFO, logger="falnb.local.webhooks")
    hook = "http://127.0.0.1:9/hook?token=hook-secret-123&run=7"  # nobody listens on port 9
    http.post("/_queue/local/echo", params={"fal_webhook": hook, "api_key": "k-123"}, json={})
    (entry,) = server.journal.entries(role="queue", method="POST")
    query = parse_qs(entry.query)
    assert query["api_key"] == ["***"]
    (webhook,) = query["fal_webhook"]
    assert parse_qs(urlsplit(webhook).query) == {"token": ["***"], "run": ["7"]}
    # The failed delivery is logged, without the receiver's token.
    until(lambda: server.journal.entries(role="webhook"), what="a webhook attempt")
    until(lambda: "webhook to" in caplog.text, what="the delivery log line")
    assert "hook-secret-123" not in caplog.text
    assert "hook-secret-123" not in http.get("/_falnb/journal").text

"""Hostile JSON on run, stream and queue: bodies get a 422/413 in fal's shape and leave nothing;
app outputs no JSON answer can carry fail their request with a JSON 500.

Non-finite numbers and very deep nesting used to answer a plain-text 500, leave queued jobs
whose result was a permanent 500, and break the journal endpoint.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from falnb.local import Context, Endpoint, LocalServer, Registry
from falnb.local.bodies import MAX_DEPTH
from falnb.local.server import CLIENT_CLOSED

HOSTILE = {
    "nan": b'{"a": NaN}',
    "infinity": b'{"a": Infinity}',
    "minus-infinity": b'{"a": [1, -Infinity]}',
    "overflowing-float": b'{"a": 1e400}',
    "lone-surrogate": b'{"a": "\\ud800"}',
    "lone-surrogate-key": b'{"\\udfff": 1}',
    "deep-100k": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1),
}
#: (path, journal role): run, stream and queue submit.
ROUTES = [
    ("/local/echo", "run"),
    ("/local/stream-text/stream", "run"),
    ("/_queue/local/echo", "queue"),
]


def _post(http: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return http.post(path, content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize(("path", "role"), ROUTES)
def test_hostile_json_is_a_422_in_fals_shape(
    http: httpx.Client, server: LocalServer, name: str, path: str, role: str
) -> None:
    jobs_before = server.state.jobs.request_ids()
    response = _post(http, path, HOSTILE[name])
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body"]
    assert problem["type"] in ("finite_number", "json_invalid", "string_unicode")
    assert "Traceback" not in problem["msg"]
    # Nothing queued, nothing accepted, and the journal still answers.
    assert server.state.jobs.request_ids() == jobs_before
    assert server.journal.accepted_submissions() == []
    journal = http.get("/_falnb/journal")
    assert journal.status_code == 200
    (entry,) = [e for e in journal.json() if e["path"] == path]
    assert (entry["status"], entry["body"], entry["role"]) == (422, None, role)


def test_real_text_still_runs(http: httpx.Client) -> None:
    body = b'{"a": "\\ud83d\\ude00 caf\\u00e9", "\\u00fc": ["\\u4e2d"]}'
    assert http.post("/local/echo", content=body).json() == {"a": "\U0001f600 café", "ü": ["中"]}


def test_depth_at_the_limit_still_runs(http: httpx.Client) -> None:
    nested: Any = 1
    for _ in range(MAX_DEPTH - 1):
        nested = {"a": nested}
    assert http.post("/local/echo", json={"x": nested}).json() == {"x": nested}


def test_the_server_answers_normally_after_hostile_bodies(http: httpx.Client) -> None:
    for body in HOSTILE.values():
        _post(http, "/_queue/local/echo", body)
    submitted = http.post("/_queue/local/echo", json={"ok": 1}).json()
    with http.stream("GET", submitted["status_url"] + "/stream") as events:
        assert any('"COMPLETED"' in line for line in events.iter_lines())
    assert http.get(submitted["response_url"]).json() == {"ok": 1}


@pytest.fixture
def small_limit(make_server: Callable[..., LocalServer]) -> LocalServer:
    return make_server(max_body_bytes=1024)


@pytest.mark.parametrize(("path", "role"), ROUTES)
def test_bodies_over_the_limit_are_413(small_limit: LocalServer, path: str, role: str) -> None:
    auth = {"Authorization": f"Key {small_limit.key}"}
    with httpx.Client(base_url=small_limit.base_url, headers=auth, timeout=10) as client:
        at_limit = {"prompt": "x" * (1024 - len('{"prompt": ""}'))}
        assert client.post(path, json=at_limit).status_code == 200
        response = client.post(path, json={"prompt": "x" * 1024})
        assert response.status_code == 413
        assert response.json() == {"detail": "Request body is larger than the limit of 1024 bytes"}
        # Also when the size is not declared up front (chunked upload).
        chunked = client.post(
            path, content=iter([b'{"prompt": "', b"x" * 2048, b'"}']), headers=auth
        )
        assert chunked.status_code == 413
    # Only the submission within the limit was queued.
    queued = 1 if role == "queue" else 0
    assert len(small_limit.journal.accepted_submissions()) == queued
    assert len(small_limit.state.jobs.request_ids()) == queued


# -- outputs an app returns that no JSON answer can carry --------------------------------


def _nan(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return {"x": float("nan")}


def _when(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return {"at": datetime.now(tz=timezone.utc)}


def _surrogate(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return {"x": "\ud800"}


def _nan_stream(arguments: dict[str, Any], ctx: Context) -> Iterator[dict[str, Any]]:
    yield {"x": 1.0}
    yield {"x": float("inf")}


@pytest.fixture
def bad_outputs(make_server: Callable[..., LocalServer]) -> LocalServer:
    return make_server(
        registry=Registry(
            [
                Endpoint("t/nan", handler=_nan),
                Endpoint("t/when", handler=_when),
                Endpoint("t/surrogate", handler=_surrogate),
                Endpoint("t/nan-stream", stream=_nan_stream),
            ]
        )
    )


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [("t/nan", "Out of range"), ("t/when", "datetime"), ("t/surrogate", "surrogate")],
)
def test_an_output_that_is_not_json_fails_its_request_with_json(
    bad_outputs: LocalServer, endpoint: str, reason: str
) -> None:
    auth = {"Authorization": f"Key {bad_outputs.key}"}
    with httpx.Client(base_url=bad_outputs.base_url, headers=auth, timeout=10) as client:
        run = client.post(f"/{endpoint}", json={})
        assert run.status_code == 500
        assert "not JSON" in run.json()["detail"]
        assert reason in run.json()["detail"]
        submitted = client.post(f"/_queue/{endpoint}", json={}).json()
        with client.stream("GET", submitted["status_url"] + "/stream") as events:
            last = [line for line in events.iter_lines() if line.startswith("data: ")][-1]
        assert '"COMPLETED"' in last
        assert "not JSON" in last
        for _ in range(2):  # the stored answer replays, as JSON, every time
            result = client.get(submitted["response_url"])
            assert result.status_code == 500
            assert "not JSON" in result.json()["detail"]
        assert client.get("/_falnb/journal").status_code == 200


def test_a_stream_item_that_is_not_json_ends_the_stream_with_an_error_payload(
    bad_outputs: LocalServer,
) -> None:
    auth = {"Authorization": f"Key {bad_outputs.key}"}
    response = httpx.post(
        f"{bad_outputs.base_url}/t/nan-stream/stream", json={}, headers=auth, timeout=10
    )
    events = [block for block in response.text.split("\n\n") if block.strip()]
    assert events[0] == 'data: {"x":1.0}'
    assert events[-1].startswith('data: {"error":')
    assert "not JSON" in events[-1]
    assert "NaN" not in response.text
    assert "Infinity" not in response.text


@pytest.mark.parametrize(("path", "role"), ROUTES)
def test_a_client_gone_mid_body_is_journaled_without_a_traceback(
    server: LocalServer, http: httpx.Client, caplog: pytest.LogCaptureFixture, path: str, role: str
) -> None:
    # A cancelled upload or a dropped network: the body is cut short and the socket closed.
    # This was an unhandled ClientDisconnect: a traceback in the server's log, a 500 journaled.
    jobs_before = server.state.jobs.request_ids()
    uvicorn_errors = logging.getLogger("uvicorn.error")
    uvicorn_errors.addHandler(caplog.handler)
    try:
        address = urlsplit(server.base_url)
        assert address.port is not None
        with socket.create_connection((address.hostname, address.port)) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\n"
                f"Authorization: Key {server.key}\r\nContent-Type: application/json\r\n"
                "Content-Length: 100000\r\n\r\n".encode()
                + b'{"a": "only the start'
            )
        deadline = time.monotonic() + 10
        while not server.journal.entries(path_contains=path) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        uvicorn_errors.removeHandler(caplog.handler)
    (entry,) = server.journal.entries(path_contains=path)
    assert (entry.role, entry.status) == (role, CLIENT_CLOSED)
    assert "Exception in ASGI" not in caplog.text
    assert server.state.jobs.request_ids() == jobs_before
    assert http.post("/local/echo", json={"a": 1}).json() == {"a": 1}  # still serving

"""Direct run (POST /{id}) and output streaming (POST /{id}/stream), over loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from falnb.local import AppError, Context, Endpoint, LocalServer, Registry


def sse_events(text: str) -> list[str]:
    """Raw SSE blocks (without the blank-line separators)."""
    return [block for block in text.split("\n\n") if block]


def data_of(block: str) -> Any:
    lines = [line[len("data: ") :] for line in block.split("\n") if line.startswith("data: ")]
    return json.loads("\n".join(lines))


def crash(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    raise KeyError("secret-ish internals")


async def async_double(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return {"value": arguments["value"] * 2}


def counting(arguments: dict[str, Any], ctx: Context) -> Iterator[dict[str, Any]]:
    for index in range(3):
        yield {"index": index}


def not_a_dict(arguments: dict[str, Any], ctx: Context) -> Any:
    return [1, 2]


@pytest.fixture
def extra(server: LocalServer) -> Iterator[None]:
    endpoints = [
        Endpoint("test/crash", handler=crash),
        Endpoint("test/async-double", handler=async_double),
        Endpoint("test/counting", stream=counting),
        Endpoint("test/not-a-dict", handler=not_a_dict),
    ]
    for endpoint in endpoints:
        server.registry.add(endpoint)
    yield
    for endpoint in endpoints:
        server.registry.remove(endpoint.endpoint_id)


def test_run_echo(http: httpx.Client) -> None:
    response = http.post("/local/echo", json={"prompt": "a fox", "seed": 7})
    assert response.status_code == 200
    assert response.json() == {"prompt": "a fox", "seed": 7}
    assert response.headers["content-type"] == "application/json"


def test_run_with_empty_body_means_no_arguments(http: httpx.Client) -> None:
    assert http.post("/local/echo", content=b"").json() == {}


def test_run_namespace_prefix_is_ignored(http: httpx.Client) -> None:
    assert http.post("/workflows/local/echo", json={"n": 1}).json() == {"n": 1}


def test_unknown_endpoint_names_the_local_ones_and_the_cloud(http: httpx.Client) -> None:
    response = http.post("/fal-ai/flux/dev", json={})
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert detail.startswith("Unknown endpoint 'fal-ai/flux/dev'. Local endpoints: ")
    assert "local/echo" in detail
    assert detail.endswith("To use fal's cloud set FAL_KEY (or FALNB_TARGET=fal).")


@pytest.mark.parametrize(
    ("content", "kind"), [(b"{not json", "json_invalid"), (b"[1, 2]", "dict_type")]
)
def test_bad_body_is_a_422_detail_list(http: httpx.Client, content: bytes, kind: str) -> None:
    response = http.post(
        "/local/echo", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body"]
    assert error["type"] == kind


def test_app_error_status_body_and_error_type_header(http: httpx.Client) -> None:
    response = http.post(
        "/local/fail", json={"status": 503, "detail": "busy", "error_type": "runner_disconnected"}
    )
    assert response.status_code == 503
    assert response.json() == {"detail": "busy", "error_type": "runner_disconnected"}
    assert response.headers["x-fal-error-type"] == "runner_disconnected"
    assert "x-fal-request-id" in response.headers


def test_app_validation_error_lists_fields(http: httpx.Client) -> None:
    response = http.post("/local/fail", json={"status": 422})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "prompt"]
    assert {"msg", "type"} <= set(error)


@pytest.mark.usefixtures("extra")
def test_unexpected_exception_is_500_without_traceback(http: httpx.Client) -> None:
    response = http.post("/test/crash", json={})
    assert response.status_code == 500
    assert response.json() == {
        "detail": "KeyError: 'secret-ish internals'",
        "error_type": "runner_server_error",
    }
    assert "Traceback" not in response.text


@pytest.mark.usefixtures("extra")
def test_non_dict_output_is_a_server_error(http: httpx.Client) -> None:
    response = http.post("/test/not-a-dict", json={})
    assert response.status_code == 500
    assert "expected a dict" in response.json()["detail"]


@pytest.mark.usefixtures("extra")
def test_async_handler(http: httpx.Client) -> None:
    assert http.post("/test/async-double", json={"value": 21}).json() == {"value": 42}


@pytest.mark.parametrize("value", ["1", "0.5", "abc", "-3"])
def test_request_timeout_must_exceed_one_second(http: httpx.Client, value: str) -> None:
    response = http.post("/local/echo", json={}, headers={"x-fal-request-timeout": value})
    assert response.status_code == 400
    assert response.json()["error_type"] == "bad_request"


def test_request_timeout_is_honoured(http: httpx.Client) -> None:
    ok = http.post("/local/echo", json={"a": 1}, headers={"x-fal-request-timeout": "30.0"})
    assert ok.status_code == 200
    late = http.post(
        "/local/echo",
        json={},
        headers={"x-fal-request-timeout": "1.1", "x-falnb-fault": "delay=1.3"},
    )
    assert late.status_code == 504
    assert late.headers["x-fal-request-timeout-type"] == "user"
    assert late.json()["error_type"] == "request_timeout"


def test_stream_framing(http: httpx.Client) -> None:
    response = http.post("/local/stream-text/stream", json={"prompt": "one two three"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = sse_events(response.text)
    assert all(block.startswith("data: ") for block in blocks)
    events = [data_of(block) for block in blocks]
    assert [e["text"] for e in events] == ["one", "one two", "one two three", "one two three"]
    assert events[-1] == {"text": "one two three", "done": True}
    assert response.text.endswith("\n\n")


def test_run_of_stream_only_endpoint_returns_the_final_event(http: httpx.Client) -> None:
    assert http.post("/local/stream-text", json={"prompt": "a b"}).json() == {
        "text": "a b",
        "done": True,
    }


def test_stream_of_plain_endpoint_is_one_event(http: httpx.Client) -> None:
    response = http.post("/local/echo/stream", json={"k": "v"})
    assert [data_of(b) for b in sse_events(response.text)] == [{"k": "v"}]


@pytest.mark.usefixtures("extra")
def test_sync_generator_stream(http: httpx.Client) -> None:
    response = http.post("/test/counting/stream", json={})
    assert [data_of(b) for b in sse_events(response.text)] == [{"index": i} for i in range(3)]


def test_stream_error_before_first_event_is_plain_json(http: httpx.Client) -> None:
    response = http.post("/local/stream-text/stream", json={"prompt": 5})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"][0]["loc"] == ["body", "prompt"]


def test_stream_error_after_first_event_is_a_data_payload(
    make_server: Callable[..., LocalServer],
) -> None:
    async def breaks(arguments: dict[str, Any], ctx: Context) -> Any:
        yield {"ok": 1}
        raise AppError(500, "broke midway", "runner_server_error")

    server = make_server(registry=Registry([Endpoint("test/breaks", stream=breaks)]))
    response = httpx.post(
        f"{server.base_url}/test/breaks/stream",
        json={},
        headers={"Authorization": f"Key {server.key}"},
    )
    blocks = sse_events(response.text)
    assert data_of(blocks[0]) == {"ok": 1}
    # As fal's apps: data lines only (fal's toolkit reports an error as {"error": ...}).
    assert blocks[1].startswith("data: ")
    assert data_of(blocks[1]) == {"error": "broke midway", "error_type": "runner_server_error"}


def test_stream_sends_ping_comments_while_an_item_is_slow(
    make_server: Callable[..., LocalServer],
) -> None:
    def slow_items(arguments: dict[str, Any], ctx: Context) -> Iterator[dict[str, Any]]:
        yield {"step": 1}
        time.sleep(0.5)
        yield {"step": 2}

    server = make_server(registry=Registry([Endpoint("test/slow-items", stream=slow_items)]))
    server.state.ping_interval = 0.1
    response = httpx.post(
        f"{server.base_url}/test/slow-items/stream",
        json={},
        headers={"Authorization": f"Key {server.key}"},
    )
    blocks = sse_events(response.text)
    assert ": ping" in blocks
    data = [data_of(b) for b in blocks if b.startswith("data: ")]
    assert data == [{"step": 1}, {"step": 2}]

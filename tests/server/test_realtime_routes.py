"""The realtime WebSocket route with a plain client: framing, auth, buffering, idle end."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import msgpack
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from falnb.local import LocalServer, realtime, validation_error
from falnb.local.registry import Context, Endpoint, Registry
from tests.conftest import wait_until

ECHO = "local/realtime-echo"


def ws_url(server: LocalServer, endpoint: str = ECHO, **query: str) -> str:
    url = f"{server.target.realtime_url}/{endpoint}/realtime"
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def key_headers(server: LocalServer) -> dict[str, str]:
    return {"Authorization": f"Key {server.key}"}


def next_frame(ws: ClientConnection) -> Any:
    """The next reply, skipping timings: a dict from msgpack, or ("text", dict) for JSON."""
    while True:
        message = ws.recv(timeout=10)
        if isinstance(message, bytes):
            return msgpack.unpackb(message, raw=False)
        data = json.loads(message)
        if data.get("type") != "x-fal-message":
            return ("text", data)


def send(ws: ClientConnection, value: Any) -> None:
    ws.send(msgpack.packb(value, use_bin_type=True))


def test_round_trip_with_key_header(server: LocalServer) -> None:
    with connect(ws_url(server), additional_headers=key_headers(server)) as ws:
        send(ws, {"prompt": "hi", "n": 1})
        reply = ws.recv(timeout=10)
        assert isinstance(reply, bytes)
        decoded = msgpack.unpackb(reply, raw=False)
        assert decoded["prompt"] == "hi"
        assert decoded["n"] == 1
        assert isinstance(decoded["counter"], int)
        timings = json.loads(ws.recv(timeout=10))
        assert timings["type"] == "x-fal-message"
        assert timings["action"] == "timings"
        assert timings["timing"] >= 0


def test_app_token_for_the_alias(server: LocalServer, http: httpx.Client) -> None:
    token = http.post("/_rest/tokens/", json={"allowed_apps": ["realtime-echo"]}).json()
    with connect(ws_url(server, fal_jwt_token=token)) as ws:
        send(ws, {"x": 1})
        assert next_frame(ws)["x"] == 1


def refused(url: str, headers: dict[str, str] | None = None) -> tuple[Any, int]:
    with connect(url, additional_headers=headers) as ws:
        message = json.loads(ws.recv(timeout=10))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    return message, closed.value.rcvd.code


@pytest.mark.parametrize("case", ["no-auth", "wrong-key", "other-alias", "bogus-token"])
def test_unauthorized(server: LocalServer, http: httpx.Client, case: str) -> None:
    headers = None
    query: dict[str, str] = {}
    if case == "wrong-key":
        headers = {"Authorization": "Key wrong:key"}
    elif case == "other-alias":
        query["fal_jwt_token"] = http.post("/_rest/tokens/", json={"allowed_apps": ["echo"]}).json()
    elif case == "bogus-token":
        query["fal_jwt_token"] = "bogus"
    message, code = refused(ws_url(server, **query), headers)
    assert message == {"status": "error", "error": "Unauthorized"}
    assert code != 1000


def closed_normally(ws: ClientConnection) -> bool:
    """Whether the server closes ``ws`` next, with 1000 (after its last word)."""
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    return closed.value.rcvd is not None and closed.value.rcvd.code == 1000


@pytest.mark.parametrize(
    "frame", [b"\xc1", msgpack.packb([1, 2]), "a text frame"], ids=["bad", "list", "text"]
)
def test_a_bad_input_is_answered_then_the_session_closes(
    server: LocalServer, frame: bytes | str
) -> None:
    # As fal's SDK: an x-fal-error, then a normal close (the client reconnects to go on).
    with connect(ws_url(server), additional_headers=key_headers(server)) as ws:
        ws.send(frame)
        kind, error = next_frame(ws)
        assert (kind, error["type"], error["error"]) == ("text", "x-fal-error", "BAD_INPUT")
        assert closed_normally(ws)
    with connect(ws_url(server), additional_headers=key_headers(server)) as ws:
        send(ws, {"still": "served"})
        assert next_frame(ws)["still"] == "served"


@pytest.fixture
def failing_endpoint(server: LocalServer) -> Iterator[str]:
    def realtime(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        if arguments.get("fail"):
            raise ValueError("asked to fail")
        return {"ok": True}

    server.registry.add(Endpoint("test/realtime-fail", realtime=realtime))
    yield "test/realtime-fail"
    server.registry.remove("test/realtime-fail")


def test_handler_exception_is_internal_error(server: LocalServer, failing_endpoint: str) -> None:
    url = ws_url(server, failing_endpoint)
    with connect(url, additional_headers=key_headers(server)) as ws:
        send(ws, {"fail": True})
        _, error = next_frame(ws)
        assert error["error"] == "INTERNAL_ERROR"
        assert "asked to fail" in error["reason"]
        assert closed_normally(ws)


def test_max_buffering_drops_the_oldest_inputs(make_server: Any) -> None:
    started, gate = threading.Event(), threading.Event()

    def gated(arguments: dict[str, Any], _ctx: Context) -> dict[str, Any]:
        if arguments["i"] == 0:  # hold the worker while the other inputs arrive
            started.set()
            gate.wait(10)
        return {"i": arguments["i"]}

    server = make_server(registry=Registry([Endpoint("test/gated", realtime=gated)]))
    url = ws_url(server, "test/gated", max_buffering="1")
    with connect(url, additional_headers=key_headers(server)) as ws:
        send(ws, {"i": 0})
        assert started.wait(10)
        for i in range(1, 6):
            send(ws, {"i": i})
        # Frames are read in order: once the server answers this ping, 1..5 have arrived.
        assert ws.ping().wait(10)
        gate.set()
        answered = [next_frame(ws)["i"], next_frame(ws)["i"]]
        send(ws, {"i": "end"})
        answered.append(next_frame(ws)["i"])
    # Input 0 was running; of 1..5 a buffer of one keeps only the newest.
    assert answered == [0, 5, "end"]


def test_a_client_leaving_mid_frame_lets_the_handler_finish(make_server: Any) -> None:
    started, gate, finished = threading.Event(), threading.Event(), threading.Event()

    def gated(arguments: dict[str, Any], _ctx: Context) -> dict[str, Any]:
        if arguments["i"] == 0:
            started.set()
            gate.wait(10)
            finished.set()
        return {"i": arguments["i"]}

    server = make_server(registry=Registry([Endpoint("test/gated", realtime=gated)]))
    with connect(ws_url(server, "test/gated"), additional_headers=key_headers(server)) as ws:
        send(ws, {"i": 0})
        assert started.wait(10)
    gate.set()  # the client has gone; the handler is still running
    assert finished.wait(10)
    with connect(ws_url(server, "test/gated"), additional_headers=key_headers(server)) as ws:
        send(ws, {"i": 1})
        assert next_frame(ws)["i"] == 1  # the server still answers


def test_sessions_beyond_the_running_limit_wait_for_a_thread(
    make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However many sessions a client opens, no more handlers than the limit run at once
    (each holds its frame's memory); the others are answered as threads come free."""
    limit = 2
    pool = ThreadPoolExecutor(limit, thread_name_prefix="test-realtime")
    monkeypatch.setattr(realtime, "_HANDLERS", pool)
    running, most, gate = [0], [0], threading.Event()
    lock = threading.Lock()

    def gated(arguments: dict[str, Any], _ctx: Context) -> dict[str, Any]:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        gate.wait(10)
        with lock:
            running[0] -= 1
        return {"i": arguments["i"]}

    server = make_server(registry=Registry([Endpoint("test/gated", realtime=gated)]))
    url, headers = ws_url(server, "test/gated"), key_headers(server)
    with contextlib.ExitStack() as stack:
        stack.callback(pool.shutdown)
        stack.callback(gate.set)  # a failed assertion must not leave handlers waiting
        sockets = [stack.enter_context(connect(url, additional_headers=headers)) for _ in range(4)]
        for i, ws in enumerate(sockets):
            send(ws, {"i": i})
        wait_until(lambda: running[0] == limit, what="the first handlers to start")
        assert all(ws.ping().wait(10) for ws in sockets)  # every input has arrived
        assert running[0] == limit
        gate.set()
        assert [next_frame(ws)["i"] for ws in sockets] == [0, 1, 2, 3]
    assert most[0] == limit


@pytest.mark.parametrize("value", ["0", "61", "many"])
def test_invalid_max_buffering_is_refused(server: LocalServer, value: str) -> None:
    message, code = refused(ws_url(server, max_buffering=value), key_headers(server))
    assert message["error"] == "BAD_REQUEST"
    assert code != 1000


def test_endpoint_without_realtime_handler(server: LocalServer) -> None:
    message, code = refused(ws_url(server, "local/echo"), key_headers(server))
    assert message["error"] == "NOT_FOUND"
    assert code != 1000


def test_idle_session_ends_with_timeout(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server.state, "realtime_idle_timeout", 0.3)
    with connect(ws_url(server), additional_headers=key_headers(server)) as ws:
        send(ws, {"n": 1})
        assert next_frame(ws)["n"] == 1
        _, error = next_frame(ws)
        assert error == {
            "type": "x-fal-error",
            "error": "TIMEOUT",
            "reason": "no inputs, reconnect when needed!",
        }
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000


def test_app_error_reaches_the_client_field_by_field(make_server: Any) -> None:
    def strict(arguments: dict[str, Any], _ctx: Context) -> dict[str, Any]:
        raise validation_error(("strength", "must be within 0..1", "value_error"))

    server = make_server(registry=Registry([Endpoint("test/strict", realtime=strict)]))
    with connect(ws_url(server, "test/strict"), additional_headers=key_headers(server)) as ws:
        send(ws, {"strength": 3})
        _, error = next_frame(ws)
    assert error == {
        "type": "x-fal-error",
        "error": "BAD_INPUT",
        "reason": "strength: must be within 0..1",
    }

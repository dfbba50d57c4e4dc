"""Realtime connections from falnb's client against the local server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from falnb import _runtime
from falnb._protocol import endpoint_alias
from falnb.client import realtime as realtime_module
from falnb.client._transport import RetryPolicy, Transport
from falnb.client.errors import HTTPError, RealtimeError
from falnb.client.realtime import (
    AsyncRealtimeConnection,
    connect_realtime,
    connect_realtime_sync,
)
from falnb.local import LocalServer
from falnb.local.registry import Context, Endpoint

ECHO = "local/realtime-echo"
run = _runtime.run
QUICK = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def transport(server: LocalServer) -> Iterator[Transport]:
    transport = Transport(server.target, retry=QUICK)
    yield transport
    run(transport.aclose())


def token_requests(server: LocalServer) -> int:
    return len(server.journal.entries(method="POST", path_contains="/_rest/tokens"))


def test_sync_round_trip(transport: Transport, server: LocalServer) -> None:
    with connect_realtime_sync(transport, ECHO) as connection:
        connection.send({"prompt": "hi", "n": 1})
        reply = connection.recv(timeout=10)
    assert reply is not None
    assert (reply["prompt"], reply["n"]) == ("hi", 1)
    assert connection.sent == 1
    token_body = server.journal.entries(path_contains="/_rest/tokens")[0].body
    assert token_body == {"allowed_apps": ["realtime-echo"], "token_expiration": 120}
    (socket,) = server.journal.entries(path_contains="/realtime")
    assert "fal_jwt_token=" in socket.query
    assert server.key not in socket.query


def test_async_iteration_and_key_auth(transport: Transport, server: LocalServer) -> None:
    async def scenario() -> list[dict[str, Any]]:
        connection = await connect_realtime(transport, ECHO, use_jwt=False, max_buffering=10)
        async with connection:
            for i in range(3):
                await connection.send({"i": i})
            replies: list[dict[str, Any]] = []
            async for reply in connection:
                replies.append(reply)
                if len(replies) == 3:
                    break
        return replies

    replies = run(scenario())
    assert [r["i"] for r in replies] == [0, 1, 2]
    assert token_requests(server) == 0
    (socket,) = server.journal.entries(path_contains="/realtime")
    assert "max_buffering=10" in socket.query


@pytest.fixture
def failing_endpoint(server: LocalServer) -> Iterator[str]:
    def realtime(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        if arguments.get("fail"):
            raise ValueError("asked to fail")
        return {"ok": arguments.get("n")}

    server.registry.add(Endpoint("test/realtime-client-fail", realtime=realtime))
    yield "test/realtime-client-fail"
    server.registry.remove("test/realtime-client-fail")


def test_app_error_raises_and_the_connection_goes_on(
    transport: Transport, failing_endpoint: str, server: LocalServer
) -> None:
    with connect_realtime_sync(transport, failing_endpoint) as connection:
        connection.send({"fail": True})
        with pytest.raises(RealtimeError) as caught:
            connection.recv(timeout=10)
        assert caught.value.error == "INTERNAL_ERROR"
        assert "asked to fail" in caught.value.reason
        # The server closed the session after the error (as fal's SDK does): the next input
        # goes on a new one.
        connection.send({"n": 2})
        assert connection.recv(timeout=10) == {"ok": 2}
        connection.send({"n": 3})
        assert connection.recv(timeout=10) == {"ok": 3}
    sockets = server.journal.entries(path_contains=f"{failing_endpoint}/realtime")
    assert len(sockets) == 2


def test_refused_token_raises_unauthorized(
    transport: Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def bogus_token(*args: Any, **kwargs: Any) -> str:
        return "expired-or-forged"

    monkeypatch.setattr(realtime_module, "fetch_token", bogus_token)
    with connect_realtime_sync(transport, ECHO) as connection:
        with pytest.raises(RealtimeError) as caught:
            connection.recv(timeout=10)
        assert caught.value.error == "Unauthorized"
        assert connection.recv(timeout=10) is None  # the session is over, quietly


def test_wrong_key(server: LocalServer) -> None:
    wrong = Transport(server.target.with_key("wrong:key"), retry=QUICK)
    try:
        with pytest.raises(HTTPError) as caught:
            connect_realtime_sync(wrong, ECHO)
        assert caught.value.status_code == 401
        with (
            connect_realtime_sync(wrong, ECHO, use_jwt=False) as connection,
            pytest.raises(RealtimeError, match="Unauthorized"),
        ):
            connection.recv(timeout=10)
    finally:
        run(wrong.aclose())


@pytest.fixture
def short_idle(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server ends a session after 0.3 s without input."""
    monkeypatch.setattr(server.state, "realtime_idle_timeout", 0.3)


@pytest.mark.usefixtures("short_idle")
def test_idle_timeout_then_reconnect_on_send(transport: Transport, server: LocalServer) -> None:
    with connect_realtime_sync(transport, ECHO) as connection:
        connection.send({"n": 1})
        first = connection.recv(timeout=10)
        assert first is not None
        assert first["n"] == 1
        with pytest.raises(RealtimeError) as caught:
            connection.recv(timeout=10)
        assert caught.value.error == "TIMEOUT"
        deadline = time.monotonic() + 5
        while connection.is_open and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not connection.is_open
        connection.send({"n": 2})
        reply = connection.recv(timeout=10)
    assert reply is not None
    assert reply["n"] == 2
    assert token_requests(server) == 2  # a fresh token for the new session


async def _replies_until(connection: AsyncRealtimeConnection, last: int) -> list[Any]:
    """The ``i`` of each reply, in order, up to the one for input ``last``."""
    order: list[Any] = []
    while not order or order[-1] != last:
        reply = await connection.recv(timeout=10)
        assert reply is not None
        order.append(reply["i"])
    return order


def test_latest_wins_coalesces_sends(transport: Transport) -> None:
    async def scenario() -> tuple[list[Any], int]:
        connection = await connect_realtime(transport, ECHO, latest_wins=True)
        async with connection:
            await connection.send({"i": 0, "delay": 0.4})
            for i in range(1, 20):
                await connection.send({"i": i})
            order = await _replies_until(connection, 19)
        return order, connection.sent

    order, sent = run(scenario())
    assert order == [0, 19]
    assert sent == 2


def test_latest_wins_drops_a_pending_input_when_the_socket_drops(transport: Transport) -> None:
    async def scenario() -> list[Any]:
        connection = await connect_realtime(transport, ECHO, latest_wins=True)
        async with connection:
            await connection.send({"i": 0, "delay": 0.3})
            await connection.send({"i": 1})  # waits behind input 0
            socket = connection._ws
            assert socket is not None
            await socket.close()  # the connection drops with input 1 still pending
            await connection.send({"i": 2})  # newer than the pending input: it supersedes it
            first = await connection.recv(timeout=10)
            await connection.send({"i": 3})
            second = await connection.recv(timeout=10)
        return [first and first["i"], second and second["i"]]

    assert run(scenario()) == [2, 3]


def test_throttle_sends_the_newest_of_each_window(transport: Transport) -> None:
    async def scenario() -> tuple[list[Any], int]:
        connection = await connect_realtime(transport, ECHO, throttle_interval=0.2)
        async with connection:
            for i in range(10):
                await connection.send({"i": i})
            order = await _replies_until(connection, 9)
        return order, connection.sent

    order, sent = run(scenario())
    assert order == [0, 9]  # the leading input, then the trailing newest
    assert sent == 2


def test_close_then_recv_returns_none(transport: Transport) -> None:
    connection = connect_realtime_sync(transport, ECHO)
    connection.send({"n": 1})
    assert connection.recv(timeout=10) is not None
    connection.close()
    assert connection.recv(timeout=1) is None
    assert "idle" in repr(connection)


def test_rejects_bad_options(transport: Transport) -> None:
    with pytest.raises(ValueError, match="max_buffering"):
        AsyncRealtimeConnection(transport, ECHO, max_buffering=61)
    with pytest.raises(ValueError, match="endpoint id"):
        AsyncRealtimeConnection(transport, "no-slash")


def test_url_building() -> None:
    build = realtime_module._socket_url
    assert build("ws://h:1", "a/b", "/realtime") == "ws://h:1/a/b/realtime"
    assert build("ws://h:1/", "a/b/realtime", "/realtime") == "ws://h:1/a/b/realtime"
    assert build("ws://h:1", "a/b/c", "") == "ws://h:1/a/b/c"
    assert endpoint_alias("workflows/me/flow/x") == "flow"


def test_a_pending_latest_wins_input_goes_on_a_new_session_after_an_error(
    transport: Transport, failing_endpoint: str, server: LocalServer
) -> None:
    with connect_realtime_sync(transport, failing_endpoint, latest_wins=True) as connection:
        connection.send({"fail": True})
        connection.send({"n": 5})  # waits for the answer to the first: which is an error
        with pytest.raises(RealtimeError, match="INTERNAL_ERROR"):
            connection.recv(timeout=10)
        assert connection.recv(timeout=10) == {"ok": 5}
    assert len(server.journal.entries(path_contains=f"{failing_endpoint}/realtime")) == 2


def test_a_plain_sync_connection_never_hops_onto_falnbs_loop_per_message(
    transport: Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each hop costs two thread wake-ups: the round trip ran at a third of a bare loop's rate.
    with connect_realtime_sync(transport, ECHO) as connection:
        hops: list[object] = []
        submit = _runtime.submit

        def counted(coro: Any) -> Any:
            hops.append(coro)
            return submit(coro)

        monkeypatch.setattr(_runtime, "submit", counted)
        replies = []
        for n in range(20):
            connection.send({"n": n})
            reply = connection.recv(timeout=10)
            assert reply is not None
            replies.append(reply["n"])
    assert replies == list(range(20))
    assert hops == []
    assert connection.sent == 20


def _wait_closed(connection: Any) -> None:
    """Until the client has seen the server end the socket (without reading its messages)."""
    from websockets.protocol import State

    ws = connection._ws
    deadline = time.monotonic() + 10
    while ws.state is not State.CLOSED and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ws.state is State.CLOSED


def reply_n(connection: Any) -> Any:
    reply = connection.recv(timeout=10)
    assert reply is not None
    return reply["n"]


@pytest.mark.usefixtures("short_idle")
def test_a_sync_send_after_the_server_ended_the_session_goes_on_a_new_one(
    transport: Transport, server: LocalServer
) -> None:
    with connect_realtime_sync(transport, ECHO) as connection:
        connection.send({"n": 1})
        assert reply_n(connection) == 1
        _wait_closed(connection)  # the server said TIMEOUT and closed; nobody read it
        connection.send({"n": 2})
        # The old session's TIMEOUT is no news to a caller already on the new one.
        assert reply_n(connection) == 2
    assert token_requests(server) == 2
    assert len(server.journal.entries(path_contains=f"{ECHO}/realtime")) == 2


@pytest.mark.usefixtures("short_idle")
def test_sync_iteration_ends_quietly_when_the_server_ends_an_idle_session(
    transport: Transport,
) -> None:
    with connect_realtime_sync(transport, ECHO) as connection:
        for n in range(3):
            connection.send({"n": n})
        assert [reply["n"] for reply in connection] == [0, 1, 2]
        assert not connection.is_open


def test_a_dropped_sync_socket_raises_once_then_the_next_send_reconnects(
    transport: Transport, server: LocalServer
) -> None:
    import socket

    with connect_realtime_sync(transport, ECHO) as connection:
        connection.send({"n": 1})
        assert reply_n(connection) == 1
        connection._ws.socket.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        with pytest.raises(RealtimeError) as caught:
            connection.recv(timeout=10)
        assert caught.value.error == "CONNECTION_CLOSED"
        assert connection.recv(timeout=1) is None  # that session is over
        connection.send({"n": 2})
        assert reply_n(connection) == 2
    assert len(server.journal.entries(path_contains=f"{ECHO}/realtime")) == 2


def test_a_sync_connection_sends_from_one_thread_while_another_reads(
    transport: Transport,
) -> None:
    import threading

    replies: list[int] = []
    with connect_realtime_sync(transport, ECHO) as connection:

        def read() -> None:  # until the main thread closes the connection
            replies.extend(reply["n"] for reply in connection)

        reader = threading.Thread(target=read)
        reader.start()
        for n in range(10):
            connection.send({"n": n})
        deadline = time.monotonic() + 10
        while len(replies) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
    reader.join(10)
    assert not reader.is_alive()  # the close ended the reader's iteration quietly
    assert replies == list(range(10))


def test_meta_frames_are_skipped_however_they_are_spaced_and_errors_still_raise() -> None:
    import json

    decode = AsyncRealtimeConnection._decode
    meta = {"type": "x-fal-message", "action": "timings", "timing": 0.01}
    assert decode(json.dumps(meta)) is None  # the local server's spelling (skipped unparsed)
    assert decode(json.dumps(meta, separators=(",", ":"))) is None  # fal's compact frames
    assert decode(json.dumps(meta, indent=1)) is None  # any other spelling: parsed, then skipped
    error = decode('{"type":"x-fal-error","error":"TIMEOUT","reason":"idle"}')
    assert error is not None
    assert error[0] == "error"
    assert error[1].error == "TIMEOUT"
    assert decode('{"type": "x-fal-messages"}') == ("result", {"type": "x-fal-messages"})


def test_realtime_sockets_are_not_deflated_at_either_end(
    transport: Transport, server: LocalServer
) -> None:
    # Frames are compressed media: deflating each cost the local server ~4 ms of CPU per
    # 512x512 frame for under 1% fewer bytes. A browser offers permessage-deflate on every socket.
    from websockets.sync.client import connect

    with connect_realtime_sync(transport, ECHO) as connection:
        connection.send({"n": 1})
        assert reply_n(connection) == 1
        ws = connection._ws
        assert ws is not None
        assert ws.request is not None
        assert "Sec-WebSocket-Extensions" not in ws.request.headers
        url = f"{server.base_url.replace('http', 'ws', 1)}{ws.request.path}"
        offered = {k: v for k, v in ws.request.headers.raw_items() if k.lower() == "authorization"}
    with connect(url, additional_headers=offered) as browser_like:
        assert browser_like.request is not None
        assert browser_like.response is not None
        assert "permessage-deflate" in browser_like.request.headers["Sec-WebSocket-Extensions"]
        assert "Sec-WebSocket-Extensions" not in browser_like.response.headers

"""Secrets on the client side: no key on exceptions (or what they chain), in logs, or the lock.

A user can reach an exception's ``.request.headers`` and walk ``__cause__``/``__context__``;
a DEBUG log handler sees what httpx, httpcore and websockets log about falnb's connections.
Neither may show the key or a realtime token.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from falnb import FalError, RetryPolicy, SyncClient, Target
from falnb.local import LocalServer
from falnb.session import Session

TOKEN_IN_URL = re.compile(r"fal_jwt_token=(?!\*\*\*)[^&\s'\"]+")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [e for e in (current.__cause__, current.__context__) if e is not None]


def _headers_on(exc: BaseException) -> list[str]:
    """Every request header value reachable from ``exc`` and its chain."""
    values: list[str] = []
    for link in _chain(exc):
        requests: list[Any] = []
        with contextlib.suppress(AttributeError, RuntimeError):  # httpx: RuntimeError if unset
            requests.append(link.request)  # type: ignore[attr-defined]
        response = getattr(link, "response", None)
        if isinstance(response, httpx.Response):
            requests += [response.request, *(r.request for r in response.history)]
        for request in requests:
            if isinstance(request, httpx.Request):
                values += [f"{k}: {v}" for k, v in request.headers.items()]
        values.append(repr(link))
        values.append(str(link))
    return values


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_no_exception_or_its_chain_carries_the_key(server: LocalServer) -> None:
    key = server.key
    dead = f"http://127.0.0.1:{_closed_port()}"
    failures: list[BaseException] = []
    with (
        SyncClient(server.target) as client,
        SyncClient(
            Target.local(dead, key), retry=RetryPolicy(max_attempts=2, base_delay=0.01)
        ) as unreachable,
    ):
        for call in (
            lambda: unreachable.run("local/echo", {}),  # connection refused: httpx's error chained
            lambda: unreachable.submit("local/echo", {}),
            lambda: unreachable.upload(b"data", "text/plain"),
            lambda: client.run("local/fail", {"status": 500}),
            lambda: client.run("local/nope", {}),
        ):
            with pytest.raises((FalError, httpx.HTTPError)) as info:
                call()
            failures.append(info.value)
    assert any(isinstance(e, httpx.TransportError) for f in failures for e in _chain(f))
    leaks = [text for failure in failures for text in _headers_on(failure) if key in text]
    assert leaks == []


def test_debug_logs_show_no_key_or_realtime_token(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with SyncClient(server.target) as client:
        client.run("local/echo", {"prompt": "hi"})
        client.upload(b"some bytes", "text/plain")
        with client.realtime("local/realtime-echo") as connection:  # a token in the URL
            connection.send({"prompt": "a"})
            connection.recv()
        with client.realtime("local/realtime-echo", use_jwt=False) as connection:  # the key
            connection.send({"prompt": "b"})
            connection.recv()
    messages = [record.getMessage() for record in caplog.records]
    assert any("realtime" in m for m in messages), "websockets logged nothing at DEBUG"
    tokens = [m for m in messages if TOKEN_IN_URL.search(m)]
    keys = [m for m in messages if server.key in m]
    assert (tokens, keys) == ([], [])


def test_the_lock_redacts_a_key_id_and_secret_each_on_its_own(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id, secret = "5f0e7a1c-key-id-0000", "b7c1d2e3f4a5-secret-1111"
    monkeypatch.setenv("FAL_KEY_ID", key_id)
    monkeypatch.setenv("FAL_KEY_SECRET", secret)
    monkeypatch.delenv("FAL_KEY", raising=False)
    monkeypatch.setenv("FALNB_LOCK", str(tmp_path / "falnb.lock"))
    with SyncClient(server.target) as client:
        session = Session(client)
        # An endpoint that echoes what it was given: the halves reach the result.
        result = session.run(
            "local/echo", {"prompt": f"id {key_id}, secret {secret}, both {key_id}:{secret}"}
        )
    assert secret in result.json["prompt"]
    text = (tmp_path / "falnb.lock").read_text()
    assert "local/echo" in text
    assert key_id not in text
    assert secret not in text


def test_a_signed_upload_url_is_logged_without_its_signature(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # The CDN refuses: the upload falls back to REST storage and its signed upload URL.
    server.faults.add("status=500", role="cdn", method="POST", times=5)
    with SyncClient(server.target) as client:
        url = client.upload(b"fallback bytes", "text/plain")
    assert httpx.get(url).content == b"fallback bytes"
    signed = [r.getMessage() for r in caplog.records if "sig=" in r.getMessage()]
    assert signed, "no signed upload URL was logged: the REST path was not taken"
    assert [m for m in signed if not re.search(r"sig=\*\*\*", m)] == []

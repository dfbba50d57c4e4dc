"""Direct runs and their error paths, sync and async, against the local server."""

from __future__ import annotations

import asyncio

import pytest

from falnb import (
    AsyncClient,
    HTTPError,
    RequestTimeoutError,
    SyncClient,
    Target,
    ValidationError,
)
from falnb.local import LocalServer


def test_run_returns_output(client: SyncClient) -> None:
    assert client.run("local/echo", {"prompt": "a red fox", "seed": 7}) == {
        "prompt": "a red fox",
        "seed": 7,
    }


def test_run_async(aclient: AsyncClient) -> None:
    assert asyncio.run(aclient.run("local/echo", {"n": 1})) == {"n": 1}


def test_run_sends_hint_and_start_timeout(client: SyncClient, server: LocalServer) -> None:
    client.run("local/echo", {}, hint="gpu-a", start_timeout=30, headers={"x-custom": "1"})
    [entry] = server.journal.entries(method="POST", path_contains="local/echo", role="run")
    assert entry.headers["x-fal-runner-hint"] == "gpu-a"
    assert entry.headers["x-fal-request-timeout"] == "30.0"
    assert entry.headers["x-custom"] == "1"


def test_bad_key_is_401_with_a_fix(server: LocalServer) -> None:
    with (
        SyncClient(Target.local(server.base_url, "not-the-key")) as bad,
        pytest.raises(HTTPError) as info,
    ):
        bad.run("local/echo", {})
    assert info.value.status_code == 401
    assert "FAL_KEY" in str(info.value)


def test_unknown_endpoint_is_404_naming_it(client: SyncClient) -> None:
    with pytest.raises(HTTPError) as info:
        client.run("local/nope", {})
    assert info.value.status_code == 404
    assert "local/nope" in str(info.value)


def test_422_has_field_errors(client: SyncClient) -> None:
    with pytest.raises(ValidationError) as info:
        client.run("local/fail", {"status": 422})
    error = info.value
    assert error.status_code == 422
    assert error.errors_for("prompt")[0]["msg"] == "Field required"
    assert "prompt: Field required" in str(error)
    assert "\n" not in str(error)


def test_500_carries_detail(client: SyncClient, server: LocalServer) -> None:
    with pytest.raises(HTTPError) as info:
        client.run("local/fail", {"status": 500, "detail": "the GPU caught fire"})
    assert info.value.status_code == 500
    assert "the GPU caught fire" in str(info.value)
    # A run the app answered is never repeated.
    assert len(server.journal.entries(method="POST", path_contains="local/fail")) == 1


def test_user_504_is_never_retried(client: SyncClient, server: LocalServer) -> None:
    with pytest.raises(HTTPError) as info:
        client.run("local/echo", {}, headers={"x-falnb-fault": "status=504;user_timeout"})
    assert info.value.is_user_timeout
    assert len(server.journal.entries(method="POST", path_contains="local/echo")) == 1
    # Even on a read, which a plain 504 would be retried on, a user timeout is final.
    handle = client.submit("local/echo", {})
    handle.get()
    server.faults.add("status=504;user_timeout", method="GET", path_contains="/status", times=1)
    with pytest.raises(HTTPError) as again:
        handle.status()
    assert again.value.is_user_timeout


def test_run_timeout_is_total(client: SyncClient) -> None:
    with pytest.raises(RequestTimeoutError) as info:
        client.run("local/slow", {"duration": 5, "steps": 50}, timeout=0.3)
    assert info.value.timeout == 0.3
    assert "0.3s" in str(info.value)


def test_invalid_priority_and_start_timeout_fail_before_sending(
    client: SyncClient, server: LocalServer
) -> None:
    with pytest.raises(ValueError, match="priority"):
        client.submit("local/echo", {}, priority="urgent")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start_timeout"):
        client.run("local/echo", {}, start_timeout=0.5)
    assert server.journal.entries(path_contains="local/echo") == []

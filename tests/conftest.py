"""Shared fixtures: one local server for the session, a clean journal and faults per test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from falnb.local import LocalServer


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    """The falnb local server, started once on a free loopback port."""
    with LocalServer(concurrency=4) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_server(request: pytest.FixtureRequest) -> None:
    """Tests that use the server start with an empty journal and no fault rules."""
    if "server" in request.fixturenames:
        running: LocalServer = request.getfixturevalue("server")
        running.journal.clear()
        running.faults.clear()


@pytest.fixture
def base_url(server: LocalServer) -> str:
    return server.base_url


@pytest.fixture
def key(server: LocalServer) -> str:
    return server.key


@pytest.fixture
def http(server: LocalServer) -> Iterator[httpx.Client]:
    """An httpx client for the server, with the key's ``Authorization`` header."""
    with httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Key {server.key}"},
        timeout=15.0,
    ) as client:
        yield client

"""Shared fixtures: one local server for the session, a clean journal and faults per test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from falnb.local import LocalServer
from tests.kit import keyed_http

T = TypeVar("T")


@pytest.fixture(scope="session", autouse=True)
def _private_media_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """falnb's media store (and every kernel's the tests start) lives in a temp dir."""
    patch = pytest.MonkeyPatch()
    patch.setenv("FALNB_CACHE_DIR", str(tmp_path_factory.mktemp("falnb-cache")))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    """The falnb local server, started once on a free loopback port, with fault injection."""
    with LocalServer(concurrency=4, faults=True) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_server(request: pytest.FixtureRequest) -> None:
    """Tests that use the server start with an empty journal and no fault rules."""
    if "server" in request.fixturenames:
        running: LocalServer = request.getfixturevalue("server")
        running.journal.clear()
        running.faults.clear()


@pytest.fixture
def default_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A session records and reconnects by its defaults, whatever the shell's FALNB_* say."""
    monkeypatch.delenv("FALNB_RECORD", raising=False)
    monkeypatch.delenv("FALNB_RECONNECT_TIMEOUT", raising=False)


@pytest.fixture
def base_url(server: LocalServer) -> str:
    return server.base_url


@pytest.fixture
def key(server: LocalServer) -> str:
    return server.key


@pytest.fixture
def http(server: LocalServer) -> Iterator[httpx.Client]:
    """An httpx client for the server, with the key's ``Authorization`` header."""
    with keyed_http(server) as client:
        yield client


@pytest.fixture
def make_server() -> Iterator[Callable[..., LocalServer]]:
    """A factory for extra servers (own concurrency, registry, knobs), stopped after the test.

    Like the session server they inject faults unless ``faults=False`` is given.
    """
    started: list[LocalServer] = []

    def make(**kwargs: Any) -> LocalServer:
        kwargs.setdefault("faults", True)
        running = LocalServer(**kwargs).start()
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def until() -> Callable[..., Any]:
    """:func:`wait_until` as a fixture: ``until(lambda: ..., timeout=5, what="...")``."""
    return wait_until

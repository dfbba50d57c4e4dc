"""Client fixtures: falnb's clients pointed at the session's local server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from falnb import AsyncClient, RetryPolicy, SyncClient, _runtime
from falnb.local import LocalServer

#: Quick retries, so retry tests take milliseconds (Retry-After is still honoured).
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.02, max_delay=0.2)


@pytest.fixture
def client(server: LocalServer) -> Iterator[SyncClient]:
    with SyncClient(server.target, retry=FAST_RETRY) as sync:
        yield sync


@pytest.fixture
def aclient(server: LocalServer) -> Iterator[AsyncClient]:
    client = AsyncClient(server.target, retry=FAST_RETRY)
    yield client
    # Its connection pool lives on falnb's loop, whichever loop the test awaited from.
    _runtime.run(client.aclose())


Waiter = Callable[..., None]


def _wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        time.sleep(0.02)


@pytest.fixture
def wait_until() -> Waiter:
    """``wait_until(predicate, timeout=10, what="")``: poll until true, else fail the test."""
    return _wait_until


@pytest.fixture
def cancels(server: LocalServer) -> Callable[[str], int]:
    """``cancels(request_id)``: how many PUT .../cancel for it reached the server."""

    def count(request_id: str) -> int:
        return len(server.journal.entries(method="PUT", path_contains=f"{request_id}/cancel"))

    return count

"""fal's backup domains: a request that cannot connect to fal.run goes to falrun.com, as
fal-client 1.0.3 does. Here the map is pointed at loopback addresses: 127.0.0.2 refuses (the
server listens on 127.0.0.1 only), 127.0.0.1 is the backup that answers."""

from __future__ import annotations

import httpx
import pytest

from falnb import ConnectionFailedError, RetryPolicy, SyncClient
from falnb._config import BACKUP_CONNECT_TIMEOUT, BACKUP_HOSTS
from falnb._settings import Target
from falnb.client._transport import _cap_connect_timeout
from falnb.local import LocalServer

FAST_RETRY = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05)


def unreachable_twin(server: LocalServer) -> Target:
    """The server's target, at an address with nothing listening (same port)."""
    return Target.local(server.base_url.replace("127.0.0.1", "127.0.0.2"), server.key)


def test_fals_backup_domains_are_fal_clients() -> None:
    assert BACKUP_HOSTS == {"fal.run": "falrun.com", "queue.fal.run": "queue.falrun.com"}


def test_without_a_backup_a_refused_connection_fails(server: LocalServer) -> None:
    client = SyncClient(unreachable_twin(server), retry=FAST_RETRY)
    with client, pytest.raises(ConnectionFailedError):
        client.run("local/echo", {"a": 1})
    assert server.journal.entries(path_contains="/local/echo") == []


def test_a_refused_connection_goes_to_the_backup_once(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(BACKUP_HOSTS, "127.0.0.2", "127.0.0.1")
    with SyncClient(unreachable_twin(server), retry=FAST_RETRY) as client:
        assert client.run("local/echo", {"a": 1}) == {"a": 1}
        assert client.subscribe("local/echo", {"b": 2}) == {"b": 2}
    posts = server.journal.entries(method="POST", path_contains="/local/echo")
    assert [entry.path for entry in posts] == ["/local/echo", "/_queue/local/echo"]
    assert {entry.headers["host"] for entry in posts} == {server.base_url.removeprefix("http://")}
    assert len(server.journal.accepted_submissions("local/echo")) == 1  # sent once


def test_a_mapped_host_connects_within_the_backup_timeout() -> None:
    request = httpx.Request("POST", "https://fal.run/x", extensions={"timeout": {"connect": None}})
    _cap_connect_timeout(request)
    assert request.extensions["timeout"]["connect"] == BACKUP_CONNECT_TIMEOUT
    request = httpx.Request("POST", "https://fal.run/x", extensions={"timeout": {"connect": 1.0}})
    _cap_connect_timeout(request)
    assert request.extensions["timeout"]["connect"] == 1.0

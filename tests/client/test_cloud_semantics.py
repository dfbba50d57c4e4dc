"""Semantics of fal's cloud that the local server emulates and falnb's client handles: GET
runs, billable units and request ids on results, and the submit answer's gateway id."""

from __future__ import annotations

from typing import Any

from falnb import SyncClient
from falnb.local import LocalServer
from falnb.repro import Recorder
from falnb.session import Session


def test_a_get_run_sends_its_arguments_in_the_query(
    client: SyncClient, server: LocalServer
) -> None:
    arguments: dict[str, Any] = {
        "prompt": "a fox & a hare",
        "steps": 4,
        "scale": 1.5,
        "safe": False,
        "size": {"w": 8, "h": 6},
        "skip": None,
    }
    output = client.run("local/echo", arguments, method="GET")
    # The query carries them as fal's JS client does; the server reads each back as typed.
    assert output == {
        "prompt": "a fox & a hare",
        "steps": 4,
        "scale": 1.5,
        "safe": False,
        "size": {"w": 8, "h": 6},
    }
    [entry] = server.journal.entries(path_contains="/local/echo")
    assert entry.method == "GET"
    assert not entry.body
    assert "prompt=a+fox+%26+a+hare" in entry.query
    assert "safe=false" in entry.query


def test_a_result_carries_its_billable_units_and_request_id(
    client: SyncClient, server: LocalServer, tmp_path: Any
) -> None:
    handle = client.submit("local/echo", {"a": 1})
    assert handle.billable_units is None  # not read yet
    assert handle.get() == {"a": 1}
    assert handle.billable_units == 1.0
    [result_get] = server.journal.entries(method="GET", path_contains=f"{handle.request_id}")[-1:]
    assert result_get.request_id == handle.request_id
    # Through the Session (what %%fal uses), on falnb's Result.
    session = Session(client, recorder=Recorder.default(tmp_path / "n.ipynb"))
    result = session.run("local/echo", {"b": 2})
    assert result.billable_units == 1.0
    submitted = server.journal.accepted_submissions("local/echo")[-1]
    assert result.request_id == submitted.request_id


def test_the_submit_answers_gateway_request_id_is_kept(client: SyncClient) -> None:
    plain = client.submit("local/echo", {"a": 1})
    assert plain.gateway_request_id is None
    hooked = client.submit("local/echo", {"a": 1}, webhook_url="http://127.0.0.1:9/hook")
    assert hooked.gateway_request_id == hooked.request_id  # what the local server answers
    assert hooked.get() == {"a": 1}

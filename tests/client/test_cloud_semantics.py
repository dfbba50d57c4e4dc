"""Semantics of fal's cloud that the local server emulates and falnb's client handles: GET
runs, billable units and request ids on results, and the submit answer's gateway id."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import falnb.local
from falnb import InProgress, SyncClient
from falnb.local import Context, LocalServer
from falnb.repro import Recorder
from falnb.result import Result
from falnb.session import Session
from falnb.widgets.progress import NullProgress


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


GATE = "test-cloud/ignores-cancel"


@pytest.fixture
def ignores_cancel() -> Iterator[threading.Event]:
    """A user app that, as fal's cloud allows, ignores a cancel and finishes with output."""
    gate = threading.Event()

    @falnb.local.app(GATE, on_cancel="signal")
    def finish_anyway(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        gate.wait(10)
        return {"done": True, "saw_cancel": bool(ctx.cancelled)}

    yield gate
    gate.set()
    falnb.local.unregister(GATE)


def test_a_cancelled_request_may_still_complete(
    client: SyncClient, ignores_cancel: threading.Event, wait_until: Any
) -> None:
    handle = client.submit(GATE, {})
    wait_until(lambda: isinstance(handle.status(), InProgress), what="the app to start")
    assert handle.cancel() == "CANCELLATION_REQUESTED"
    assert isinstance(handle.status(), InProgress)  # only told: it runs on
    ignores_cancel.set()
    assert handle.get(timeout=10) == {"done": True, "saw_cancel": True}
    assert handle.cancel_requested
    assert handle.cancel() == "ALREADY_COMPLETED"


class CancelWhenRunning(NullProgress):
    """A view whose user presses Cancel as soon as the request runs."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate
        self.cancel: Any = None
        self.ended: Result | None = None

    def request(self, request_id: str, cancel: Any) -> None:
        self.cancel = cancel

    def status(self, status: Any) -> None:
        if isinstance(status, InProgress) and self.cancel is not None:
            cancel, self.cancel = self.cancel, None
            assert cancel() == "CANCELLATION_REQUESTED"
            self.gate.set()

    def finished(self, result: Result) -> None:
        self.ended = result


def test_a_cell_cancelled_too_late_delivers_and_records_its_result(
    client: SyncClient,
    ignores_cancel: threading.Event,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
    server: LocalServer,
) -> None:
    session = Session(client, recorder=Recorder.default(tmp_path / "n.ipynb"))
    view = CancelWhenRunning(ignores_cancel)
    result = session.run(GATE, {"n": 1}, progress=view)
    assert result.json == {"done": True, "saw_cancel": True}
    assert result.cancel_requested
    assert view.ended is result  # the view shows the result, not "cancelled"
    assert "cancel was requested for request" in capsys.readouterr().err
    # Recorded: the same call replays from the lock without a new submission.
    replay = session.run(GATE, {"n": 1})
    assert replay.json == result.json
    assert len(server.journal.accepted_submissions(GATE)) == 1

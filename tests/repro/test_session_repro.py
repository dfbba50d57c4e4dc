"""The Session's repro hooks in process: modes, pinned seeds, --no-wait, failures recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from falnb import SyncClient, ValidationError
from falnb.local import LocalServer
from falnb.repro import Recorder, ReplayMissError
from falnb.session import Session

PROMPT = {"prompt": "a lighthouse", "image_size": "square", "num_inference_steps": 2}


@pytest.fixture
def session(client: SyncClient, recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.delenv("FALNB_RECORD", raising=False)
    return Session(client, recorder=recorder)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _submitted_bodies(server: LocalServer, endpoint: str) -> list[Any]:
    return [e.body for e in server.journal.accepted_submissions(endpoint)]


def test_once_replays_and_refresh_resends_the_pinned_seed(
    server: LocalServer, session: Session, recorder: Recorder
) -> None:
    first = session.run("local/text-to-image", PROMPT, seed="auto")
    assert isinstance(first.seed, int)
    again = session.run("local/text-to-image", PROMPT, seed="auto")
    assert again.request_id == first.request_id
    assert again.seed == first.seed
    assert again.files[0].data == first.files[0].data
    assert len(server.journal.accepted_submissions("local/text-to-image")) == 1

    refreshed = session.run("local/text-to-image", PROMPT, seed="auto", record="refresh")
    bodies = _submitted_bodies(server, "local/text-to-image")
    assert len(bodies) == 2
    assert bodies[1]["seed"] == first.seed
    assert refreshed.request_id != first.request_id
    [entry] = recorder.lock.entries().values()
    assert entry.request_id == refreshed.request_id
    assert entry.seed == first.seed


def test_an_unseeded_call_pins_the_seed_the_endpoint_reports(
    server: LocalServer, session: Session, recorder: Recorder
) -> None:
    first = session.run("local/text-to-image", PROMPT)
    assert "seed" not in _submitted_bodies(server, "local/text-to-image")[0]
    [entry] = recorder.lock.entries().values()
    assert entry.seed == first.json["seed"]
    replay = session.run("local/text-to-image", PROMPT)
    assert replay.metadata() == first.metadata()  # no seed sneaks into the arguments
    session.run("local/text-to-image", PROMPT, record="refresh")
    assert _submitted_bodies(server, "local/text-to-image")[1]["seed"] == first.json["seed"]


def test_notebook_setting_env_and_off(
    server: LocalServer, session: Session, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    session.config.record = "none"
    with pytest.raises(ReplayMissError, match=r"local/echo"):
        session.run("local/echo", {"x": 1})
    assert server.journal.accepted_submissions() == []
    session.config.record = None
    monkeypatch.setenv("FALNB_RECORD", "off")
    session.run("local/echo", {"x": 1})
    session.run("local/echo", {"x": 1})
    assert len(server.journal.accepted_submissions("local/echo")) == 2
    assert not recorder.lock.path.exists()
    monkeypatch.setenv("FALNB_RECORD", "none")
    with pytest.raises(ReplayMissError):
        session.run("local/echo", {"x": 1}, record="refresh")  # env none is absolute


def test_no_wait_writes_pending_then_completes(session: Session, recorder: Recorder) -> None:
    job = session.submit("local/slow", {"duration": 0.3, "steps": 3})
    [entry] = recorder.lock.entries().values()
    assert entry.status in ("pending", "completed")
    assert entry.request_id == job.request_id
    job.result(timeout=20)
    [entry] = recorder.lock.entries().values()
    assert entry.status == "completed"
    replay = session.submit("local/slow", {"duration": 0.3, "steps": 3})
    assert replay.done()
    assert replay.result().request_id == job.request_id


def test_failed_and_rejected_requests(
    server: LocalServer, session: Session, recorder: Recorder
) -> None:
    with pytest.raises(ValidationError):
        session.run("local/text-to-image", {"prompt": "x", "num_images": 999}, validate=False)
    # The app rejected it after it was queued (fal's way): a request that ran, so recorded.
    [rejected] = recorder.lock.entries().values()
    assert rejected.status == "failed"
    assert "422" in (rejected.error or "") or "num_images" in (rejected.error or "")
    with pytest.raises(Exception, match="boom"):
        session.run("local/fail", {"status": 500, "detail": "boom"})
    failed = [e for e in recorder.lock.entries().values() if e.endpoint == "local/fail"]
    assert [e.status for e in failed] == ["failed"]
    assert failed[0].request_id
    # A failed entry is not replayed: the next run calls again.
    with pytest.raises(Exception, match="boom"):
        session.run("local/fail", {"status": 500, "detail": "boom"})
    assert len(server.journal.accepted_submissions("local/fail")) == 2

"""Arguments checked against the endpoint's schema before paying: Session.run, %fal, %%fal.

The server's journal is the witness: a call with mistakes makes no submission at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from IPython.core.interactiveshell import InteractiveShell

import falnb.local
import falnb.session
from falnb import SyncClient, ValidationError
from falnb.local import LocalServer
from falnb.magics import FalCellError, FalMagics
from falnb.repro import LockFile, MediaStore, Recorder
from falnb.schemas import EndpointSchema, InvalidArgumentsError, UnknownEndpointError
from falnb.session import Session

T2I = "local/text-to-image"


@pytest.fixture
def session(server: LocalServer, tmp_path: Path) -> Iterator[Session]:
    client = SyncClient(server.target)
    recorder = Recorder(LockFile(tmp_path / "falnb.lock"), MediaStore(tmp_path / "media"))
    yield Session(client, recorder=recorder, record="off")
    client.close()


def _sent(server: LocalServer, *endpoints: str) -> list[str]:
    """POSTs to these apps (submits and direct runs): what could have been paid for. Only the
    test's own endpoints count, so a late request from an earlier test's thread (one stray
    POST failed this on two loaded CI runs) cannot."""
    return [
        e.path
        for e in server.journal.entries(method="POST")
        if not e.path.startswith(("/_cdn", "/_rest"))
        and any(f"/{endpoint}/" in f"{e.path.rstrip('/')}/" for endpoint in endpoints)
    ]


def test_every_mistake_is_named_at_once_and_nothing_is_sent(
    server: LocalServer, session: Session
) -> None:
    bad = {
        "num_images": 9,
        "output_format": "gif",
        "image_size": {"width": 99999, "height": 512},
        "num_image": 2,
        "sync_mode": "sometimes",
    }
    with pytest.raises(InvalidArgumentsError) as caught:
        session.run(T2I, bad)
    assert sorted(caught.value.problems) == [
        "image_size.width: 99999 is out of range: an integer from 1 to 4096",
        "num_image: not an argument of this endpoint (did you mean num_images?)",
        "num_images: 9 is out of range: an integer from 1 to 4",
        "output_format: 'gif' is not one of 'jpeg', 'png'",
        "prompt: required (text)",
        "sync_mode: 'sometimes' is not true or false",
    ]
    assert _sent(server, T2I) == []
    assert server.journal.accepted_submissions(T2I) == []


def test_no_validate_sends_as_is_and_the_endpoint_answers(
    server: LocalServer, session: Session
) -> None:
    with pytest.raises(ValidationError):
        session.run(T2I, {"prompt": "a fox", "num_images": 9}, validate=False)
    assert len(server.journal.accepted_submissions(T2I)) == 1


def test_unknown_endpoint_gets_a_did_you_mean(server: LocalServer, session: Session) -> None:
    with pytest.raises(UnknownEndpointError) as caught:
        session.run("local/text-to-imag", {"prompt": "a fox"})
    assert caught.value.suggestions[0] == "local/text-to-image"
    assert _sent(server, "local/text-to-imag", T2I) == []


def test_schema_is_asked_for_once_per_session(server: LocalServer, session: Session) -> None:
    arguments = {"prompt": "a fox", "image_size": "square", "num_inference_steps": 1}
    session.run(T2I, arguments)
    session.run(T2I, {**arguments, "seed": 3})
    asked = server.journal.entries(method="GET", path_contains="/v1/models")
    assert [e.path for e in asked if "pricing" not in e.path] == ["/_rest/v1/models"]
    assert len(server.journal.accepted_submissions(T2I)) == 2


def test_open_schemas_and_uploads_pass(server: LocalServer, session: Session) -> None:
    # local/echo's schema takes any further argument; bytes are uploaded and sent as a URL.
    result = session.run("local/echo", {"anything": [1, 2], "blob": b"\x89PNG"})
    assert result.json["anything"] == [1, 2]


@pytest.mark.parametrize(
    ("endpoint", "arguments", "problem"),
    [
        ("local/echo", {"seed": -1}, "seed: -1 is out of range: an integer >= 0"),
        ("local/slow", {"steps": 0}, "steps: 0 is out of range: an integer from 1 to 1000"),
        ("local/slow", {"duraton": 1}, "duraton: not an argument of this endpoint (did you mean"),
        ("local/fail", {"status": 200}, "status: 200 is out of range: an integer from 400 to 599"),
        ("local/stream-text", {"prompt": 3}, "prompt: 3 is not text"),
    ],
)
def test_the_basic_apps_have_real_schemas(
    server: LocalServer, session: Session, endpoint: str, arguments: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidArgumentsError) as caught:
        session.run(endpoint, arguments)
    assert [p[: len(problem)] for p in caught.value.problems] == [problem]
    assert _sent(server, endpoint) == []


def test_the_basic_apps_enforce_the_limits_they_publish(
    server: LocalServer, session: Session
) -> None:
    # The same numbers on both sides: sent unchecked, the app itself rejects what it documents.
    with pytest.raises(ValidationError) as caught:
        session.run("local/slow", {"steps": 1001, "duration": 0}, validate=False)
    assert "from 1 to 1000" in str(caught.value.field_errors)


@pytest.fixture
def shell(session: Session, monkeypatch: pytest.MonkeyPatch) -> InteractiveShell:
    monkeypatch.setattr(falnb.session, "_default", session)
    monkeypatch.setenv("FALNB_PROGRESS", "none")
    ip = InteractiveShell.instance()
    ip.register_magics(FalMagics)
    return ip


def test_magics_report_the_fields_in_one_message(
    server: LocalServer, shell: InteractiveShell
) -> None:
    with pytest.raises(FalCellError) as line:
        shell.run_line_magic("fal", f"{T2I} prompt=fox num_images=0")
    assert line.value.title == f"{T2I}: the arguments do not fit its schema (nothing was sent):"
    assert line.value.lines[0] == "  num_images: 0 is out of range: an integer from 1 to 4"
    with pytest.raises(FalCellError) as cell:
        shell.run_cell_magic("fal", T2I, "prompt: fox\noutput_format: webp\nsteps: 3")
    assert cell.value.lines[:2] == [
        "  output_format: 'webp' is not one of 'jpeg', 'png'",
        "  steps: not an argument of this endpoint",
    ]
    assert _sent(server, T2I) == []
    with pytest.raises(FalCellError, match="422"):
        shell.run_line_magic("fal", f"{T2I} prompt=fox num_images=0 --no-validate")
    assert len(server.journal.accepted_submissions(T2I)) == 1


def test_a_sweep_checks_each_job_and_no_validate_reaches_the_sweep(
    server: LocalServer, shell: InteractiveShell
) -> None:
    body = "prompt: fox\nimage_size: square\nnum_inference_steps: 1\nnum_images: [1, 9]"
    checked = shell.run_cell_magic("fal", f"{T2I} --sweep -q", body)
    assert len(server.journal.accepted_submissions(T2I)) == 1  # the job with 9 was not sent
    assert "num_images: 9 is out of range" in str(checked[1].error)
    shell.run_cell_magic("fal", f"{T2I} --sweep -q --no-validate", body)
    assert len(server.journal.accepted_submissions(T2I)) == 3


class _Before(pydantic.BaseModel):
    prompt: str


class _After(pydantic.BaseModel):
    prompt: str
    strength: float = 0.5


def test_the_lock_pins_the_schema_and_a_refresh_reports_its_change(
    server: LocalServer,
    session: Session,
    http: httpx.Client,
    capfd: pytest.CaptureFixture[str],
) -> None:
    def app(arguments: Any) -> dict[str, Any]:
        return {"prompt": arguments.prompt}

    def served(model: type[pydantic.BaseModel]) -> None:
        app.__annotations__["arguments"] = model
        falnb.local.app("me/pinned-schema")(app)

    served(_Before)
    try:
        session.run("me/pinned-schema", {"prompt": "a"}, record="once")
        [entry] = session.recorder.lock.entries().values()
        document = http.get(
            "/_rest/api/openapi/queue/openapi.json", params={"endpoint_id": "me/pinned-schema"}
        ).json()
        assert entry.extra["schema"] == EndpointSchema("me/pinned-schema", document).hash
        capfd.readouterr()

        served(_After)
        session.schemas.forget()  # a new session: it asks afresh
        session.run("me/pinned-schema", {"prompt": "a"}, record="refresh")
        assert "me/pinned-schema's input schema changed" in capfd.readouterr().err
        [refreshed] = session.recorder.lock.entries().values()
        assert refreshed.extra["schema"] != entry.extra["schema"]
    finally:
        falnb.local.unregister("me/pinned-schema")

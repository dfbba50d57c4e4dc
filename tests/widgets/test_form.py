"""The form's parts against the local server, without a kernel: its cell text reads back as
exactly its values, media fields take notebook variables and uploads, and the form puts its
cell below. (The kernel and the browser tests drive the whole thing.)"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from PIL import Image

import falnb.session
from falnb import SyncClient
from falnb._completion import candidates
from falnb._magic_parse import Invocation, parse
from falnb.local import LocalServer
from falnb.magics import FalMagics
from falnb.repro import LockFile, MediaStore, Recorder
from falnb.session import Session
from falnb.widgets.form import Form, cell_value, form

NASTY = [
    "a red fox",
    "a fox: in snow",
    "{season} fox",
    "{{season}} stays doubled",
    'quote " and \\ backslash',
    "two\nlines",
    "  padded  ",
    "yes",
    "010",
    "16:9",
    "true",
    "null",
    "3",
    "# not a comment",
    "- not a list",
    "[not, a, list]",
    "{a: 1}",
    "ends with #",
    "emoji 🦊 and ünïcode",
    "",
]


@pytest.mark.parametrize("text", NASTY)
def test_a_value_in_the_cell_text_reads_back_as_itself(text: str) -> None:
    call = parse("local/echo", f"prompt: {cell_value(text)}\nn: {cell_value(2)}", {"season": "x"})
    assert isinstance(call, Invocation)
    assert call.arguments == {"prompt": text, "n": 2}


@pytest.mark.parametrize("value", [True, False, None, 0, -3, 0.5, 1e-05, [1, "a"], {"w": 2}])
def test_typed_values_read_back_typed(value: Any) -> None:
    call = parse("local/echo", f"v: {cell_value(value)}", {})
    assert isinstance(call, Invocation)
    assert call.arguments == {"v": value}


@pytest.fixture
def shell(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InteractiveShell]:
    client = SyncClient(server.target)
    recorder = Recorder(LockFile(tmp_path / "falnb.lock"), MediaStore(tmp_path / "media"))
    monkeypatch.setattr(falnb.session, "_default", Session(client, recorder=recorder))
    monkeypatch.setenv("FALNB_PROGRESS", "none")
    ip = InteractiveShell.instance()
    ip.register_magics(FalMagics)
    yield ip
    client.close()


def _form(shell: InteractiveShell, line: str) -> Form:
    built = shell.run_line_magic("fal", f"form {line}")
    assert isinstance(built, Form)
    return built


def test_media_fields_take_a_variable_or_an_upload(
    shell: InteractiveShell, server: LocalServer
) -> None:
    shell.user_ns["photo"] = Image.new("RGB", (64, 48), "red")
    edit = _form(shell, "local/image-to-image")
    field = edit.controls["image_url"]
    assert "photo" in field.options  # the notebook's images, paths and bytes are offered
    edit.controls["prompt"].value = "in watercolor"
    field.value = "photo"
    assert edit.cell_text().splitlines()[1:3] == ["image_url: {photo}", "prompt: in watercolor"]
    result = edit.run()
    assert result is not None, edit.message.value
    [sent] = server.journal.accepted_submissions("local/image-to-image")
    assert sent.body["image_url"].startswith(server.base_url)  # uploaded, sent as its URL

    # A file picked in the upload button: kept as a variable the cell text names.
    upload = next(f.upload for f in edit.fields if f.name == "image_url")
    content = _png_bytes()
    picked = {"name": "mine.png", "type": "image/png", "size": len(content)}
    upload.value = ({**picked, "content": memoryview(content), "last_modified": _EPOCH},)
    assert field.value == "form_image_url"
    assert shell.user_ns["form_image_url"] == content
    assert "image_url: {form_image_url}" in edit.cell_text()


_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _png_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(buffer, format="PNG")
    return buffer.getvalue()


def test_insert_cell_puts_the_cell_below_and_tab_completes_the_form_endpoint(
    shell: InteractiveShell,
) -> None:
    made = form("local/slow", "-q")
    made.controls["steps"].value = 3
    made.insert_cell()
    assert shell.rl_next_input == "%%fal local/slow -q\nsteps: 3"
    assert "local/stream-text" in candidates("%fal form local/str", "local/str")


def test_a_form_refuses_what_a_cell_would_not_take(shell: InteractiveShell) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="--no-wait does not apply"):
        _form(shell, "local/echo --no-wait")
    with pytest.raises(UsageError, match="one endpoint"):
        _form(shell, "local/echo prompt=fox")

"""The README's magic forms in a real kernel (nbclient): references, bodies, subcommands.

Each user mistake is one line (a UsageError, no falnb traceback) and nothing reaches the
server: the session server's journal shows exactly the requests the valid cells made.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nbkit import Raises, kernel_env

from falnb.local import LocalServer
from tests.kit import free_port

ROOT = Path(__file__).resolve().parents[2]
BOMB = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [
        f"{b}: &{b} [{', '.join(['*' + a] * 9)}]"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)

NAMES = (
    "photo = Image.new('RGB', (64, 64), (200, 40, 90))\ns = 7\nname = 'fox'\n"
    "season = 'winter'\nsettings = {'steps': 3}"
)
TEXT_BODY = (
    "%%fal local/echo\nprompt: a fox in {season}, {{literal}} braces\nsteps: {settings['steps']}"
)
README_REALTIME = (
    "%fal realtime local/image-to-image strength=(0.0, 1.0, 0.05) "
    'prompt="a watercolor fox" image_url={photo}'
)


def outputs(cell: Any, kind: str | None = None) -> list[Any]:
    return [o for o in cell.outputs if kind is None or o.output_type == kind]


def error_of(cell: Any) -> str:
    """The one line an error showed: IPython prints a UsageError (no traceback) on stderr."""
    shown = [f"{e.ename}: {e.evalue}" for e in outputs(cell, "error")]
    # The kernel may flush one stderr write as several stream messages: join them.
    stderr = "".join(o.text for o in outputs(cell, "stream") if o.name == "stderr")
    shown += [stderr] if stderr.strip() else []
    assert len(shown) == 1, cell.outputs
    assert stderr.count("UsageError") <= 1, stderr
    return shown[0]


def printed(cell: Any) -> str:
    return "".join(o.get("text", "") for o in outputs(cell, "stream"))


def sent_bodies(server: LocalServer) -> list[Any]:
    return [
        e.body
        for e in server.journal.entries(method="POST")
        if e.role in ("run", "queue") and "/requests/" not in e.path
    ]


def test_readme_reference_forms_in_a_kernel(run_notebook: Any, server: LocalServer) -> None:
    notebook, _ = run_notebook(
        [
            "import time\nimport falnb\nfrom PIL import Image",
            NAMES,
            README_REALTIME,
            "%fal local/echo prompt=hi --seed {s}",
            "%fal local/slow duration=0.2 --no-wait -o job",
            "rid = job.request_id\njob.result(timeout=20)\n%fal status {rid}",
            '%%fal local/echo\n{"a": {name}}',
            "%%fal local/echo\nnested: {k: {name}}",
            TEXT_BODY,
            Raises("%%fal local/echo\nprompt: {undefined_var}"),
            Raises("%%fal local/echo\nprompt: a fox in {seasn}"),
            Raises("%fal local/echo prompt=$nope"),
            "t0 = time.monotonic()",
            Raises(f"%%fal local/echo\n{BOMB}"),
            Raises("%%fal local/echo\nx: " + "[" * 5000 + "]" * 5000),
            "print(time.monotonic() - t0 < 5)",
            Raises("%fal realtime local/image-to-image image_url={no_photo}"),
            "%fal config",
        ]
    )
    cells = notebook.cells
    for cell in cells:
        text = json.dumps(cell.outputs)
        assert "__falnb" not in text
        assert server.key not in text
    for cell in cells[:9]:
        assert not outputs(cell, "error"), (cell.source, cell.outputs)

    widget = outputs(cells[2], "display_data")
    assert widget, cells[2].outputs
    assert "application/vnd.jupyter.widget-view+json" in widget[0].data
    # By the end the saved output shows a frame: {photo} reached the endpoint as an image.
    assert any("image/jpeg" in o.data for o in widget), [list(o.data) for o in widget]
    assert outputs(cells[3])[-1].metadata["falnb"]["seed"] == 7
    assert re.fullmatch(r"[0-9a-f-]{36}  local/slow  done\n", printed(cells[5]))
    args = [outputs(c)[-1].metadata["falnb"]["arguments"] for c in cells[6:9]]
    assert args == [
        {"a": "fox"},
        {"nested": {"k": "fox"}},
        {"prompt": "a fox in winter, {literal} braces", "steps": 3},
    ]

    assert "UsageError: {undefined_var}: no variable 'undefined_var'" in error_of(cells[9])
    assert "(did you mean season?)" in error_of(cells[10])
    assert "no variable 'nope'" in error_of(cells[11])
    assert "more than 100,000 values" in error_of(cells[13])
    assert "nest deeper than 64" in error_of(cells[14])
    assert printed(cells[15]) == "True\n"
    assert "UsageError: image_url={no_photo}: no variable 'no_photo'" in error_of(cells[16])
    for cell in cells[9:17]:
        if outputs(cell, "error"):
            assert "falnb/" not in json.dumps(cell.outputs), cell.source

    config = printed(cells[17])
    assert "target = fal (FALNB_TARGET=fal): the URLs FALNB_*_URL give" in config
    assert f"  queue_url = {server.base_url}/_queue" in config
    assert "key = from FAL_KEY" in config

    # What reached the server: the valid calls and the --no-wait job, nothing else.
    bodies = sent_bodies(server)
    assert len(bodies) == 5, bodies
    assert not [b for b in bodies if "undefined" in json.dumps(b) or "lol" in json.dumps(b)]
    # The realtime line connected (its {photo} reached the widget as the image, not a name).
    assert server.journal.entries(method="WS", path_contains="local/image-to-image/realtime")


@pytest.fixture
def served_app() -> Iterator[LocalServer]:
    """`falnb serve --app examples/my_models.py` in another process (a LocalServer stand-in)."""
    port, key = free_port(), "served-app-test-key-0123456789"
    env = {**os.environ, "FALNB_SERVE_KEY": key}
    port_args = ["--port", str(port)]
    process = subprocess.Popen(
        [sys.executable, "-m", "falnb.cli", "serve", "--app", "examples/my_models.py", *port_args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/_falnb/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "falnb serve did not start"
            time.sleep(0.1)
        stand_in = type("Served", (), {"base_url": base, "key": key})()
        yield stand_in
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_endpoints_lists_a_served_app_in_a_kernel(
    served_app: Any, run_notebook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in kernel_env(served_app).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FALNB_PROGRESS", "bogus")
    notebook, _ = run_notebook(
        ["import falnb", "%fal endpoints", "%fal local/echo a=1", "%fal local/echo a=2"]
    )
    cells = notebook.cells
    listing = printed(cells[1])
    assert f"Endpoints of the server at {served_app.base_url}:" in listing
    assert "me/posterize" in listing
    assert "local/echo" in listing  # falnb serve also serves the built-ins
    assert served_app.key not in json.dumps(notebook.cells[1].outputs)
    # An unknown FALNB_PROGRESS is said once, in one line, where the value is read.
    said = "falnb: FALNB_PROGRESS='bogus' is not widget, text or none; ignoring it\n"
    assert printed(cells[2]) == said
    assert printed(cells[3]) == ""
    assert not outputs(cells[3], "error")

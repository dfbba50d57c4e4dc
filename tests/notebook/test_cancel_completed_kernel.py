"""Cancel pressed on a running ``%%fal`` cell whose app, as fal's cloud allows, finishes
anyway: in a real kernel the result is delivered, recorded and shown, and the output says
the cancel came too late."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nbkit import iopub_until, press_cancel, running, shell_reply

from falnb.local import Context, LocalServer
from falnb.local.userapps import as_endpoint

ENDPOINT = "test-late/finishes-anyway"
CELL = f"%%fal {ENDPOINT} -o res\nprompt: a fox"


@pytest.fixture
def gate(server: LocalServer) -> Iterator[threading.Event]:
    released = threading.Event()

    def finish_anyway(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        released.wait(30)  # ignores ctx.cancelled: only this gate ends it
        return {"text": f"done: {arguments['prompt']}", "saw_cancel": bool(ctx.cancelled)}

    server.registry.add(as_endpoint(finish_anyway, ENDPOINT, on_cancel="signal"))
    yield released
    released.set()
    server.registry.remove(ENDPOINT)


def test_a_cancel_that_comes_too_late_keeps_the_result(
    kernel: Any,
    server: LocalServer,
    gate: threading.Event,
    tmp_path: Path,
) -> None:
    shell_reply(kernel, kernel.execute("import falnb"), timeout=60)
    cell = kernel.execute(CELL, stop_on_error=False)

    def opened(msg: dict[str, Any]) -> bool:
        state = msg["content"].get("data", {}).get("state", {})
        return msg["msg_type"] == "comm_open" and state.get("endpoint") == ENDPOINT

    comm_id = iopub_until(kernel, opened, timeout=30, what="the progress view")["content"][
        "comm_id"
    ]

    iopub_until(kernel, running(comm_id), timeout=30, what="the request to run")
    press_cancel(kernel, comm_id)

    def cancel_reached() -> bool:
        return any(e.path.endswith("/cancel") for e in server.journal.entries(method="PUT"))

    outputs: list[dict[str, Any]] = []

    def collect(msg: dict[str, Any]) -> bool:
        if msg["parent_header"].get("msg_id") == cell:
            outputs.append(msg)
        return cancel_reached()

    iopub_until(kernel, collect, timeout=30, what="the cancel to reach the server")
    gate.set()  # the app finishes after all
    reply = shell_reply(kernel, cell, timeout=30)
    assert reply["content"]["status"] == "ok", reply["content"]

    check = kernel.execute("print(res.json['text'], res.cancel_requested)")
    shell_reply(kernel, check, timeout=10)

    def printed(msg: dict[str, Any]) -> bool:
        # Every message of the cell before it (IOPub is in order) is kept too.
        if msg["parent_header"].get("msg_id") == cell:
            outputs.append(msg)
        return msg["msg_type"] == "stream" and msg["parent_header"].get("msg_id") == check

    text = iopub_until(kernel, printed, timeout=10, what="the result")["content"]["text"]
    assert text.strip() == "done: a fox True"
    stderr = "".join(
        m["content"]["text"]
        for m in outputs
        if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"
    )
    assert "cancel was requested for request" in stderr
    shown = [
        m["content"]["data"].get("text/plain", "")
        for m in outputs
        if m["msg_type"] in ("update_display_data", "display_data")
    ]
    assert any("cancel requested, but it completed first" in text for text in shown), shown
    # Recorded as a completed call, not as cancelled.
    lock = json.loads((tmp_path / "falnb.lock").read_text())
    assert "done: a fox" in json.dumps(lock)
    cancels = [e for e in server.journal.entries(method="PUT") if e.path.endswith("/cancel")]
    assert [e.status for e in cancels] == [202]

"""Cancel reaches a running, blocking ``%%fal`` cell in a real kernel (no browser).

A front end's widget message for the progress view arrives on the kernel's main shell while
the cell blocks its main thread (what JupyterLab ends up doing on a fresh kernel, and all
ipykernel 6 front ends do): falnb's wait must handle it, and leave every other request
queued, in order, for after the cell.
"""

from __future__ import annotations

import time
from typing import Any

from nbkit import iopub_until, press_cancel, printed, running, shell_reply

from falnb import _comm_pump, _runtime
from falnb.local import LocalServer

CELL = "%%fal local/slow -o job\nduration: 20\nsteps: 40"


def progress_comm(msg: dict[str, Any]) -> bool:
    content = msg["content"]
    return (
        msg["msg_type"] == "comm_open"
        and content.get("data", {}).get("state", {}).get("endpoint") == "local/slow"
    )


def test_cancel_message_ends_a_blocking_cell_and_later_requests_keep_their_order(
    kernel: Any, server: LocalServer
) -> None:
    shell_reply(kernel, kernel.execute("import falnb"), timeout=60)
    cell = kernel.execute(CELL, stop_on_error=False)  # the queued requests run after it
    comm_id = iopub_until(kernel, progress_comm, timeout=30, what="the progress view")["content"][
        "comm_id"
    ]
    iopub_until(kernel, running(comm_id), timeout=30, what="the job to run")

    # Queued behind the running cell, before and after the Cancel: these must wait for it.
    before = kernel.execute("order = ['before']")
    press_cancel(kernel, comm_id)
    sent = time.monotonic()
    after = kernel.execute("order.append('after')")

    reply = shell_reply(kernel, cell, timeout=25)
    ended = time.monotonic() - sent
    assert reply["content"]["status"] == "error"
    assert reply["content"]["evalue"].startswith("Cancelled: request "), reply["content"]
    assert ended < 2.0, f"the cell ended {ended:.1f} s after Cancel"
    assert shell_reply(kernel, before, timeout=10)["content"]["status"] == "ok"
    assert shell_reply(kernel, after, timeout=10)["content"]["status"] == "ok"
    assert printed(kernel, "print(order)", what="the order").strip() == "['before', 'after']"
    cancels = [
        e for e in server.journal.entries() if e.method == "PUT" and e.path.endswith("/cancel")
    ]
    assert [e.status for e in cancels] == [202]


async def _answer() -> int:
    return 42


def test_outside_a_kernel_a_wait_is_plain_blocking() -> None:
    _comm_pump.watch("some-comm")
    try:
        assert not _comm_pump.wanted()  # no ipykernel here: nothing to pump, nothing touched
        assert _comm_pump.pump() == 0
        assert _runtime.run(_answer()) == 42
    finally:
        _comm_pump.unwatch("some-comm")

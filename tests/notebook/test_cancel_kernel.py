"""Cancel reaches a running, blocking ``%%fal`` cell in a real kernel (no browser).

A front end's widget message for the progress view arrives on the kernel's main shell while
the cell blocks its main thread (what JupyterLab ends up doing on a fresh kernel, and all
ipykernel 6 front ends do): falnb's wait must handle it, and leave every other request
queued, in order, for after the cell.
"""

from __future__ import annotations

import queue
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

from falnb import _comm_pump, _runtime
from falnb.local import LocalServer

CELL = "%%fal local/slow -o job\nduration: 20\nsteps: 40"


@pytest.fixture
def kernel(falnb_kernel_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Any]:
    """A kernel (this interpreter's ipykernel) with the widget progress view forced on."""
    monkeypatch.setenv("FALNB_PROGRESS", "widget")
    manager = KernelManager(kernel_name="python3")
    assert manager.kernel_spec is not None
    manager.kernel_spec.argv[0] = sys.executable
    manager.start_kernel(cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def iopub_until(client: Any, want: Any, *, timeout: float, what: str) -> dict[str, Any]:
    """Read IOPub until ``want(msg)`` holds; that message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg: dict[str, Any] = client.get_iopub_msg(
                timeout=max(0.05, deadline - time.monotonic())
            )
        except queue.Empty:
            continue
        if want(msg):
            return msg
    raise AssertionError(f"timed out waiting for {what}")


def shell_reply(client: Any, msg_id: str, *, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply: dict[str, Any] = client.get_shell_msg(timeout=max(0.05, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply
    raise AssertionError(f"no reply to {msg_id}")


def progress_comm(msg: dict[str, Any]) -> bool:
    content = msg["content"]
    return (
        msg["msg_type"] == "comm_open"
        and content.get("data", {}).get("state", {}).get("endpoint") == "local/slow"
    )


def running(comm_id: str) -> Any:
    def check(msg: dict[str, Any]) -> bool:
        content = msg["content"]
        return (
            msg["msg_type"] == "comm_msg"
            and content.get("comm_id") == comm_id
            and content.get("data", {}).get("state", {}).get("status") == "IN_PROGRESS"
        )

    return check


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
    cancel = kernel.session.msg(
        "comm_msg",
        {"comm_id": comm_id, "data": {"method": "custom", "content": {"type": "cancel"}}},
    )
    kernel.shell_channel.send(cancel)
    sent = time.monotonic()
    after = kernel.execute("order.append('after')")

    reply = shell_reply(kernel, cell, timeout=25)
    ended = time.monotonic() - sent
    assert reply["content"]["status"] == "error"
    assert reply["content"]["evalue"].startswith("Cancelled: request "), reply["content"]
    assert ended < 2.0, f"the cell ended {ended:.1f} s after Cancel"
    assert shell_reply(kernel, before, timeout=10)["content"]["status"] == "ok"
    assert shell_reply(kernel, after, timeout=10)["content"]["status"] == "ok"
    check = kernel.execute("print(order)")
    shell_reply(kernel, check, timeout=10)
    out = iopub_until(
        kernel,
        lambda m: m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == check,
        timeout=10,
        what="the order",
    )
    assert out["content"]["text"].strip() == "['before', 'after']"
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

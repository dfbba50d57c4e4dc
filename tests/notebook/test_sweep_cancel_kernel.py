"""The sweep view's Cancel reaches a running, blocking ``%%fal --sweep`` cell in a real kernel:
every job in flight is cancelled on the server, and the queued ones are never sent."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

from falnb.local import LocalServer
from falnb.repro import LockFile

CELL = (
    "%%fal local/slow --sweep --concurrency 3 -o results\n"
    "duration: 20\nsteps: 40\nseed: [1, 2, 3, 4, 5, 6, 7, 8]"
)


@pytest.fixture
def kernel(falnb_kernel_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Any]:
    """A kernel (this interpreter's ipykernel) with the widget views forced on."""
    monkeypatch.setenv("FALNB_PROGRESS", "widget")
    manager = KernelManager(kernel_name="python3")
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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg: dict[str, Any] = client.get_iopub_msg(
                timeout=max(0.05, deadline - time.monotonic())
            )
        except Exception:
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


def sweep_comm(msg: dict[str, Any]) -> bool:
    state = msg["content"].get("data", {}).get("state", {})
    return msg["msg_type"] == "comm_open" and "statuses" in state


def three_running(comm_id: str) -> Any:
    def check(msg: dict[str, Any]) -> bool:
        content = msg["content"]
        statuses = content.get("data", {}).get("state", {}).get("statuses") or []
        return (
            msg["msg_type"] == "comm_msg"
            and content.get("comm_id") == comm_id
            and statuses.count("running") == 3
        )

    return check


def test_cancel_on_the_sweep_view_cancels_every_outstanding_job(
    kernel: Any, server: LocalServer
) -> None:
    shell_reply(kernel, kernel.execute("import falnb"), timeout=60)
    cell = kernel.execute(CELL, stop_on_error=False)
    opened = iopub_until(kernel, sweep_comm, timeout=30, what="the sweep view")
    comm_id = opened["content"]["comm_id"]
    iopub_until(kernel, three_running(comm_id), timeout=30, what="three jobs running")
    # The three are submitted once the server has them (the view counts them as running
    # while they are being submitted).
    deadline = time.monotonic() + 10
    while len(server.journal.accepted_submissions("local/slow")) < 3:
        assert time.monotonic() < deadline, "the three jobs were not submitted"
        time.sleep(0.02)
    cancel = kernel.session.msg(
        "comm_msg",
        {"comm_id": comm_id, "data": {"method": "custom", "content": {"type": "cancel"}}},
    )
    kernel.shell_channel.send(cancel)
    sent = time.monotonic()
    reply = shell_reply(kernel, cell, timeout=25)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert time.monotonic() - sent < 5.0
    check = kernel.execute("print(results.summary())")
    shell_reply(kernel, check, timeout=10)
    out = iopub_until(
        kernel,
        lambda m: m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == check,
        timeout=10,
        what="the summary",
    )
    assert out["content"]["text"].strip() == "8 jobs: 8 cancelled"
    assert len(server.journal.accepted_submissions("local/slow")) == 3
    cancels = server.journal.entries(method="PUT", path_contains="/cancel")
    assert sorted(e.status for e in cancels) == [202, 202, 202]


RERUN = (
    "%%fal local/slow --sweep --concurrency 3 -q -o results\n"
    "duration: 1.5\nsteps: 3\nseed: [1, 2, 3, 4, 5, 6]"
)


def test_a_rerun_after_a_kernel_kill_submits_only_the_missing_jobs(
    falnb_kernel_env: None, server: LocalServer, tmp_path: Any
) -> None:
    def start() -> tuple[KernelManager, Any]:
        manager = KernelManager(kernel_name="python3")
        manager.kernel_spec.argv[0] = sys.executable
        manager.start_kernel(cwd=str(tmp_path))
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        return manager, client

    manager, client = start()
    try:
        shell_reply(client, client.execute("import falnb"), timeout=60)
        client.execute(RERUN)
        # Killed once the three jobs in flight are written down as pending (a kill between
        # the server's accept and that write loses the id, for a sweep's job as for one call).
        lock = LockFile(tmp_path / "falnb.lock")
        deadline = time.monotonic() + 30
        while sum(e.status == "pending" for e in lock.entries().values()) < 3:
            assert time.monotonic() < deadline, "the first three jobs were not written down"
            time.sleep(0.02)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)  # killed mid-sweep: 3 jobs pending in the lock
    assert len(server.journal.accepted_submissions("local/slow")) == 3

    manager, client = start()
    try:
        shell_reply(client, client.execute("import falnb"), timeout=60)
        reply = shell_reply(client, client.execute(RERUN), timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        check = client.execute("print(results.summary(), [r.json['seed'] for r in results])")
        shell_reply(client, check, timeout=10)
        out = iopub_until(
            client,
            lambda m: m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == check,
            timeout=10,
            what="the summary",
        )
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert out["content"]["text"].strip() == "6 jobs: 6 done [1, 2, 3, 4, 5, 6]"
    # The three pending ones were picked up again, not paid twice: 3 + 3 submissions.
    assert len(server.journal.accepted_submissions("local/slow")) == 6

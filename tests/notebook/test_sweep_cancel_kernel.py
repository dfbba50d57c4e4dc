"""The sweep view's Cancel reaches a running, blocking ``%%fal --sweep`` cell in a real kernel:
every job in flight is cancelled on the server, and the queued ones are never sent."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nbkit import comm_state, iopub_until, press_cancel, printed, running_kernel, shell_reply

from falnb.local import LocalServer
from falnb.repro import LockFile

CELL = (
    "%%fal local/slow --sweep --concurrency 3 -o results\n"
    "duration: 20\nsteps: 40\nseed: [1, 2, 3, 4, 5, 6, 7, 8]"
)


def sweep_comm(msg: dict[str, Any]) -> bool:
    state = msg["content"].get("data", {}).get("state", {})
    return msg["msg_type"] == "comm_open" and "statuses" in state


def three_running(comm_id: str) -> Callable[..., bool]:
    return comm_state(comm_id, lambda state: (state.get("statuses") or []).count("running") == 3)


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
    press_cancel(kernel, comm_id)
    sent = time.monotonic()
    reply = shell_reply(kernel, cell, timeout=25)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert time.monotonic() - sent < 5.0
    summary = printed(kernel, "print(results.summary())", what="the summary")
    assert summary.strip() == "8 jobs: 8 cancelled"
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
    with running_kernel(tmp_path) as client:
        shell_reply(client, client.execute("import falnb"), timeout=60)
        client.execute(RERUN)
        # Killed once the three jobs in flight are written down as pending (a kill between
        # the server's accept and that write loses the id, for a sweep's job as for one call).
        lock = LockFile(tmp_path / "falnb.lock")
        deadline = time.monotonic() + 30
        while sum(e.status == "pending" for e in lock.entries().values()) < 3:
            assert time.monotonic() < deadline, "the first three jobs were not written down"
            time.sleep(0.02)
    # The kernel was killed mid-sweep: 3 jobs pending in the lock.
    assert len(server.journal.accepted_submissions("local/slow")) == 3

    with running_kernel(tmp_path) as client:
        shell_reply(client, client.execute("import falnb"), timeout=60)
        reply = shell_reply(client, client.execute(RERUN), timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        code = "print(results.summary(), [r.json['seed'] for r in results])"
        summary = printed(client, code, what="the summary")
    assert summary.strip() == "6 jobs: 6 done [1, 2, 3, 4, 5, 6]"
    # The three pending ones were picked up again, not paid twice: 3 + 3 submissions.
    assert len(server.journal.accepted_submissions("local/slow")) == 6

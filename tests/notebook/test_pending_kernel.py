"""Nothing paid for is lost or paid twice, in a real kernel (nbclient) against the local server.

Cells run one at a time in one kernel, so the test can start a blip (fault rules with a
duration) between cells. The server's journal says what was submitted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbkit import RecordingClient

from falnb.local import LocalServer
from falnb.repro import LockFile
from tests.kit import accepted, status_blip, wait_healed

SLOW_CELL = "%%fal local/slow\nduration: 1\nsteps: 2"
RunCell = Callable[..., Any]


@contextmanager
def live_kernel(tmp_path: Path) -> Iterator[tuple[RunCell, RecordingClient]]:
    """One kernel; ``run(source, raises=False)`` executes a cell in it and returns the cell."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    client = RecordingClient(
        notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )

    def run(source: str, *, raises: bool = False) -> Any:
        cell = nbformat.v4.new_code_cell(source)
        if raises:
            cell.metadata["tags"] = ["raises-exception"]
        notebook.cells.append(cell)
        client.execute_cell(cell, len(notebook.cells) - 1)
        return cell

    with client.setup_kernel():
        run("import falnb")
        yield run, client


def error_text(cell: Any) -> str:
    [error] = [o for o in cell.outputs if o.output_type == "error"]
    return "\n".join(error.traceback)


def test_a_blip_longer_than_the_wait_is_picked_up_by_the_rerun(
    falnb_kernel_env: None,
    server: LocalServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FALNB_RECONNECT_TIMEOUT", "1.5")
    lock = LockFile(tmp_path / "falnb.lock")
    with live_kernel(tmp_path) as (run, _client):
        rules = status_blip(server, 6.0, streams=True)
        lost = run(SLOW_CELL, raises=True)
        text = error_text(lost)
        assert "local/slow is still pending on the server:" in text
        assert "the request is still pending; re-run the cell to pick up its result" in text
        assert "falnb/" not in text  # one message, no falnb traceback
        assert server.key not in text
        [entry] = lock.entries().values()
        assert entry.status == "pending"
        assert sum(rule.fired for rule in rules) >= 3

        wait_healed(rules)
        again = run(SLOW_CELL)
        [shown] = [o for o in again.outputs if o.output_type == "display_data"]
        assert shown.metadata["falnb"]["request_id"] == entry.request_id
        [entry] = lock.entries().values()
        assert entry.status == "completed"
    assert accepted(server, "local/slow") == 1


def test_a_blip_shorter_than_the_wait_is_ridden_out_showing_reconnecting(
    falnb_kernel_env: None,
    server: LocalServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FALNB_RECONNECT_TIMEOUT", "30")
    with live_kernel(tmp_path) as (run, client):
        rules = status_blip(server, 2.0, streams=True)
        done = run("%%fal local/slow\nduration: 1.5\nsteps: 3")
        [shown] = [o for o in done.outputs if o.output_type == "display_data"]
        assert shown.data["text/plain"].startswith("local/slow")
        reconnecting = [line for line in client.updates if " reconnecting " in line]
        assert reconnecting, client.updates
        assert "lost the server" in reconnecting[0]
        assert sum(rule.fired for rule in rules) >= 3
    assert accepted(server, "local/slow") == 1
    [entry] = LockFile(tmp_path / "falnb.lock").entries().values()
    assert entry.status == "completed"


def test_a_rerun_while_its_no_wait_job_runs_shares_the_request(
    falnb_kernel_env: None, server: LocalServer, tmp_path: Path
) -> None:
    with live_kernel(tmp_path) as (run, _client):
        run("%%fal local/slow --no-wait -o job\nduration: 1\nsteps: 2")
        run("%%fal local/slow -o again\nduration: 1\nsteps: 2")
        same = run("print(job.result(timeout=20).request_id == again.request_id)")
        assert same.outputs[0].text.strip() == "True"
    assert accepted(server, "local/slow") == 1


def test_a_lock_path_that_is_a_directory_is_one_line_and_sends_nothing(
    falnb_kernel_env: None, server: LocalServer, tmp_path: Path
) -> None:
    (tmp_path / "falnb.lock").mkdir()
    with live_kernel(tmp_path) as (run, _client):
        cell = run("%%fal local/echo\nprompt: hi", raises=True)
    text = error_text(cell)
    assert "The lock file cannot be written:" in text
    assert f"{tmp_path / 'falnb.lock'}: it is a directory" in text
    assert "falnb/" not in text.replace(str(tmp_path), "")
    assert not server.journal.entries(method="POST")

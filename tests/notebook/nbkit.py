"""Helpers for the notebook tests (a module with a unique name, so tests can import it)."""

from __future__ import annotations

import contextlib
import queue
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from falnb.local import LocalServer
from tests.kit import target_env


class Raises(str):
    """A cell source that is expected to fail (tagged ``raises-exception``)."""

    __slots__ = ()


Cells = list[str]


def kernel_env(server: LocalServer) -> dict[str, str]:
    return target_env(server.base_url, server.key)


@contextlib.contextmanager
def running_kernel(
    cwd: Path | str | None = None, env: dict[str, str] | None = None
) -> Iterator[Any]:
    """A ready kernel of this interpreter's ipykernel (its client), killed on exit."""
    manager = KernelManager(kernel_name="python3")
    spec = manager.kernel_spec
    assert spec is not None
    spec.argv[0] = sys.executable
    options: dict[str, Any] = {} if cwd is None else {"cwd": str(cwd)}
    manager.start_kernel(**options, **({} if env is None else {"env": env}))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def iopub_until(
    client: Any, want: Callable[[dict[str, Any]], bool], *, timeout: float, what: str
) -> dict[str, Any]:
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
    """The shell channel's reply to request ``msg_id``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply: dict[str, Any] = client.get_shell_msg(timeout=max(0.05, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply
    raise AssertionError(f"no reply to {msg_id}")


def printed(client: Any, code: str, *, what: str, timeout: float = 10) -> str:
    """Run ``code`` (which prints) and return what it printed first."""
    msg_id = client.execute(code)
    shell_reply(client, msg_id, timeout=timeout)
    out = iopub_until(
        client,
        lambda m: m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id,
        timeout=timeout,
        what=what,
    )
    return str(out["content"]["text"])


def comm_state(comm_id: str, want: Callable[[dict[str, Any]], bool]) -> Callable[..., bool]:
    """Whether an IOPub message updates widget ``comm_id`` to a state ``want`` accepts."""

    def check(msg: dict[str, Any]) -> bool:
        content = msg["content"]
        return (
            msg["msg_type"] == "comm_msg"
            and content.get("comm_id") == comm_id
            and want(content.get("data", {}).get("state", {}))
        )

    return check


def running(comm_id: str) -> Callable[..., bool]:
    """Whether an IOPub message shows progress view ``comm_id`` running its request."""
    return comm_state(comm_id, lambda state: state.get("status") == "IN_PROGRESS")


def press_cancel(client: Any, comm_id: str) -> None:
    """What a view's Cancel button sends: a custom comm message on the shell channel."""
    cancel = client.session.msg(
        "comm_msg",
        {"comm_id": comm_id, "data": {"method": "custom", "content": {"type": "cancel"}}},
    )
    client.shell_channel.send(cancel)


class RecordingClient(NotebookClient):
    """A NotebookClient that also keeps the display updates (nbclient folds them away)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.updates: list[str] = []

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        if msg["msg_type"] == "update_display_data":
            self.updates.append(msg["content"]["data"].get("text/plain", ""))
        return super().process_message(msg, cell, cell_index)


def build_notebook(cells: Cells) -> Any:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    for source in cells:
        cell = nbformat.v4.new_code_cell(source)
        if isinstance(source, Raises):
            cell.metadata["tags"] = ["raises-exception"]
        notebook.cells.append(cell)
    return notebook

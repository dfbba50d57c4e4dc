"""Run notebooks in a real kernel (nbclient) whose falnb targets the test session's server.

``run_notebook(cells)`` executes code cells (a cell given as ``Raises(source)`` may fail)
and returns ``(notebook, updates)``: the executed notebook, and every
``update_display_data`` text/plain the kernel sent (the live progress lines).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from falnb.local import LocalServer


class Raises(str):
    """A cell source that is expected to fail (tagged ``raises-exception``)."""

    __slots__ = ()


Cells = list[str]


def kernel_env(server: LocalServer) -> dict[str, str]:
    base = server.base_url
    return {
        "FALNB_TARGET": "fal",
        "FAL_KEY": server.key,
        "FALNB_RUN_URL": base,
        "FALNB_QUEUE_URL": f"{base}/_queue",
        "FALNB_REST_URL": f"{base}/_rest",
        "FALNB_CDN_URL": f"{base}/_cdn",
        "FALNB_REALTIME_URL": "ws" + base[len("http") :],
    }


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


@pytest.fixture
def falnb_kernel_env(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels started in this test target ``server`` (and are not JupyterLab's)."""
    for name, value in kernel_env(server).items():
        monkeypatch.setenv(name, value)
    for name in ("JPY_SESSION_NAME", "FALNB_PROGRESS", "VSCODE_PID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run_notebook(falnb_kernel_env: None, tmp_path: Any) -> Callable[[Cells], tuple[Any, list[str]]]:
    def run(cells: Cells) -> tuple[Any, list[str]]:
        notebook = build_notebook(cells)
        client = RecordingClient(
            notebook,
            timeout=60,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        )
        client.execute()
        return notebook, client.updates

    return run

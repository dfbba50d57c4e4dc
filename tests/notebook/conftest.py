"""Run notebooks in a real kernel (nbclient) whose falnb targets the test session's server.

``run_notebook(cells)`` executes code cells (a cell given as ``Raises(source)`` may fail)
and returns ``(notebook, updates)``: the executed notebook, and every
``update_display_data`` text/plain the kernel sent (the live progress lines).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from nbkit import Cells, RecordingClient, build_notebook, kernel_env, running_kernel

from falnb.local import LocalServer


@pytest.fixture
def falnb_kernel_env(server: LocalServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Kernels started in this test target ``server`` (and are not JupyterLab's).

    Their lock file is the test's own, wherever the kernel's working directory is.
    """
    for name, value in kernel_env(server).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FALNB_LOCK", str(tmp_path / "falnb.lock"))
    for name in ("JPY_SESSION_NAME", "FALNB_PROGRESS", "VSCODE_PID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def kernel(falnb_kernel_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Any]:
    """A kernel (this interpreter's ipykernel) with the widget views forced on."""
    monkeypatch.setenv("FALNB_PROGRESS", "widget")
    with running_kernel(tmp_path) as client:
        yield client


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

"""Helpers for the browser tests: server handles, waiting, screenshots, notebooks.

A module with a unique name (tests import it as ``labkit``); ``conftest.py`` holds the fixtures.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nbformat

from tests.kit import free_port, stop_process, target_env

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
IDLE = "Python 3 (ipykernel) | Idle"
#: The two front ends the browser tests run in: JupyterLab 4 and Notebook 7 (one server).
FRONTENDS = ("lab", "notebook")
# Whether the open notebook's kernel is idle (both front ends expose ``window.jupyterapp``).
KERNEL_IDLE = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session
    && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === "idle" && kernel.connectionStatus === "connected";
}"""


def wait_until(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception as exc:
            last = exc
        else:
            if value:
                return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


@dataclass
class FalnbServer:
    """A running ``falnb serve`` subprocess."""

    base_url: str
    key: str
    process: subprocess.Popen[bytes]

    def _http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Key {self.key}"},
            timeout=10.0,
        )

    def journal(self) -> list[dict[str, Any]]:
        """Every request the server has seen since the last clear, oldest first."""
        with self._http() as http:
            response = http.get("/_falnb/journal")
            response.raise_for_status()
            entries: list[dict[str, Any]] = response.json()
            return entries

    def clear_journal(self) -> None:
        with self._http() as http:
            http.delete("/_falnb/journal").raise_for_status()

    def kernel_env(self) -> dict[str, str]:
        """Environment variables that make a kernel's falnb target this server."""
        return target_env(self.base_url, self.key)


@dataclass
class LabServer:
    """A running JupyterLab whose kernels target ``falnb_server``."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]

    def shut_down_kernels(self) -> None:
        """End every session and its kernel (as closing a notebook with "shut down" does)."""
        headers = {"Authorization": f"token {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as http:
            for session in http.get("/api/sessions").raise_for_status().json():
                http.delete(f"/api/sessions/{session['id']}").raise_for_status()

    def notebook_url(self, name: str, frontend: str = "lab") -> str:
        if frontend == "notebook":
            return f"{self.url}/notebooks/{name}?token={self.token}"
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"


def _lab_settings(directory: Path) -> None:
    # No "get notified about Jupyter news" toast over the bottom-right of the page.
    notification = directory / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


def start_lab(falnb_server: FalnbServer, root: Path, home: Path) -> LabServer:
    """JupyterLab (and Notebook 7, at ``/notebooks/``) on 127.0.0.1 serving ``root`` (token
    auth, ``window.jupyterapp`` exposed),
    its kernels targeting ``falnb_server``; returns once it answers. Stop its ``process``."""
    root.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    _lab_settings(home / "settings")
    port, token = free_port(), secrets.token_hex(12)
    env = {
        **os.environ,
        **falnb_server.kernel_env(),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "PYTHONUNBUFFERED": "1",
    }
    with (home / "lab.log").open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={port}",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
                "--LabApp.expose_app_in_browser=True",
                "--JupyterNotebookApp.expose_app_in_browser=True",
                "--ServerApp.disable_check_xsrf=True",
                "--allow-root",
            ],
            env=env,
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    lab = LabServer(f"http://127.0.0.1:{port}", token, root, process)
    try:
        wait_until(
            lambda: httpx.get(f"{lab.url}/api/status?token={token}", timeout=1).is_success,
            timeout=60,
            what="JupyterLab",
        )
    except BaseException:
        stop_process(process)
        raise
    return lab


def wait_for_idle_kernel(page: Any, timeout: float = 60) -> None:
    """Wait until the open notebook's kernel is connected and idle (either front end)."""
    page.wait_for_function(KERNEL_IDLE, timeout=timeout * 1000)


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as ``test-artifacts/browser/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def write_notebook(directory: Path, name: str, cells: list[str]) -> Path:
    """A notebook of code cells (a cell starting with ``# md`` is markdown) with a kernelspec."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    notebook.metadata["language_info"] = {"name": "python"}
    for source in cells:
        if source.startswith("# md\n"):
            notebook.cells.append(nbformat.v4.new_markdown_cell(source.removeprefix("# md\n")))
        else:
            notebook.cells.append(nbformat.v4.new_code_cell(source))
    path = directory / name
    nbformat.write(notebook, str(path))
    return path


def run_all(page: Any) -> None:
    """Run every cell of the open notebook; returns at once (wait on the page's state after).

    The command's promise settles only when the last cell has finished; not awaiting it lets
    a test act while a cell runs.
    """
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

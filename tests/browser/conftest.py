"""Real-browser fixtures: a ``falnb serve`` subprocess, JupyterLab, and headless Chromium.

Reusable by every browser test (progress, gallery, realtime):

* ``falnb_server``: a ``falnb serve`` subprocess with a known key; ``.journal()`` reads
  ``GET /_falnb/journal``, ``.clear_journal()`` empties it, ``.kernel_env()`` is the environment
  that points a kernel's falnb at it (``FALNB_TARGET=fal``, ``FAL_KEY``, ``FALNB_*_URL``).
* ``lab``: a JupyterLab subprocess on 127.0.0.1 whose kernels target ``falnb_server``.
* ``page``: a fresh Chromium page (Debian's ``/usr/bin/chromium`` through Playwright);
  a screenshot of it is saved under ``test-artifacts/browser/<test>.png`` at teardown.
* ``open_notebook(name, cells)``: writes a notebook (with kernelspec metadata) into the lab's
  root, opens it and waits for an idle kernel; ``run_all(page)`` runs every cell.
* ``screenshot(page, name)``: saves ``test-artifacts/browser/<name>.png``.

Browser tests skip only when ``/usr/bin/chromium`` is missing (CI installs it).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from playwright.sync_api import expect, sync_playwright

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing (apt-get install chromium)")
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


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
        base = self.base_url
        return {
            "FALNB_TARGET": "fal",
            "FAL_KEY": self.key,
            "FALNB_RUN_URL": base,
            "FALNB_QUEUE_URL": f"{base}/_queue",
            "FALNB_REST_URL": f"{base}/_rest",
            "FALNB_CDN_URL": f"{base}/_cdn",
            "FALNB_REALTIME_URL": "ws" + base[len("http") :],
        }


@pytest.fixture(scope="session")
def falnb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FalnbServer]:
    """``falnb serve`` on a free loopback port with a known key."""
    port, key = free_port(), "browser-" + secrets.token_hex(8)
    log = (tmp_path_factory.mktemp("falnb-serve") / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "falnb.cli", "serve", "--port", str(port), "--key", key],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = FalnbServer(f"http://127.0.0.1:{port}", key, process)
    try:
        wait_until(
            lambda: httpx.get(f"{server.base_url}/_falnb/health", timeout=1).status_code == 200,
            timeout=30,
            what="falnb serve",
        )
        yield server
    finally:
        _stop(process)
        log.close()


@dataclass
class LabServer:
    """A running JupyterLab whose kernels target ``falnb_server``."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"


def _lab_settings(directory: Path) -> None:
    # No "get notified about Jupyter news" toast over the bottom-right of the page.
    notification = directory / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


@pytest.fixture(scope="session")
def lab(falnb_server: FalnbServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab on 127.0.0.1 (token auth, ``window.jupyterapp`` exposed)."""
    root = tmp_path_factory.mktemp("lab-root")
    home = tmp_path_factory.mktemp("lab-home")
    settings = home / "settings"
    _lab_settings(settings)
    port, token = free_port(), secrets.token_hex(12)
    env = {
        **os.environ,
        **falnb_server.kernel_env(),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "PYTHONUNBUFFERED": "1",
    }
    log = (home / "lab.log").open("wb")
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
            "--ServerApp.disable_check_xsrf=True",
            "--allow-root",
        ],
        env=env,
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = LabServer(f"http://127.0.0.1:{port}", token, root, process)
    try:
        wait_until(
            lambda: httpx.get(f"{server.url}/api/status?token={token}", timeout=1).is_success,
            timeout=60,
            what="JupyterLab",
        )
        yield server
    finally:
        _stop(process)
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's, by path: Playwright cannot download its own here)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as ``test-artifacts/browser/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page (1280x900); its last state is screenshotted at teardown."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    new_page = context.new_page()
    try:
        yield new_page
    finally:
        try:
            screenshot(new_page, f"{request.node.name}-final")
        finally:
            context.close()


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
    """Run every cell of the open notebook."""
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")


@pytest.fixture
def open_notebook(lab: LabServer, page: Any) -> Callable[[str, list[str]], Any]:
    """Write ``cells`` as notebook ``name`` in the lab root, open it, wait for an idle kernel."""

    def open_(name: str, cells: list[str]) -> Any:
        write_notebook(lab.root, name, cells)
        page.goto(lab.notebook_url(name))
        expect(page.get_by_text(IDLE)).to_be_visible(timeout=60_000)
        return page

    return open_

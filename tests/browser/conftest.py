"""Real-browser fixtures: a ``falnb serve`` subprocess, JupyterLab, and headless Chromium.

Reusable by every browser test (progress, gallery, realtime):

* ``falnb_server``: a ``falnb serve`` subprocess with a known key; ``.journal()`` reads
  ``GET /_falnb/journal``, ``.clear_journal()`` empties it, ``.kernel_env()`` is the environment
  that points a kernel's falnb at it (``FALNB_TARGET=fal``, ``FAL_KEY``, ``FALNB_*_URL``).
* ``lab``: a JupyterLab subprocess on 127.0.0.1 whose kernels target ``falnb_server``.
* ``page``: a fresh Chromium page (Debian's ``/usr/bin/chromium`` through Playwright);
  a screenshot of it is saved under ``test-artifacts/browser/<test>.png`` at teardown.
* ``open_notebook(name, cells)``: writes a notebook (with kernelspec metadata) into the lab's
  root, opens it in ``frontend`` and waits for an idle kernel; ``run_all(page)`` runs every
  cell (without waiting for them).
* ``frontend``: ``"lab"`` (JupyterLab 4), or each of ``FRONTENDS`` (also ``"notebook"``,
  Notebook 7) for a test marked ``@pytest.mark.parametrize("frontend", FRONTENDS,
  indirect=True)``.
* ``screenshot(page, name)``: saves ``test-artifacts/browser/<name>.png``.

Browser tests skip only when ``/usr/bin/chromium`` is missing (CI installs it).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from labkit import (  # noqa: F401 - re-exported for browser tests
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    FRONTENDS,
    IDLE,
    KERNELSPEC,
    FalnbServer,
    LabServer,
    run_all,
    screenshot,
    start_lab,
    wait_for_idle_kernel,
    wait_until,
    write_notebook,
)
from playwright.sync_api import expect, sync_playwright

from tests.kit import serving, stop_process


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    ours = [item for item in items if "tests/browser" in str(item.fspath)]
    # Run last: Playwright's sync API keeps an event loop running on the main thread while its
    # session-wide browser is open, which would break asyncio.run() in later tests.
    others = [item for item in items if "tests/browser" not in str(item.fspath)]
    items[:] = others + ours
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing (apt-get install chromium)")
    for item in ours:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def falnb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FalnbServer]:
    """``falnb serve`` on a free loopback port with a known key."""
    key = "browser-" + secrets.token_hex(8)
    with serving(key, tmp_path_factory.mktemp("falnb-serve")) as (base_url, process):
        yield FalnbServer(base_url, key, process)


@pytest.fixture(scope="session")
def lab(falnb_server: FalnbServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab on 127.0.0.1 (token auth, ``window.jupyterapp`` exposed)."""
    server = start_lab(
        falnb_server, tmp_path_factory.mktemp("lab-root"), tmp_path_factory.mktemp("lab-home")
    )
    try:
        yield server
    finally:
        stop_process(server.process)


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


@pytest.fixture
def frontend(request: pytest.FixtureRequest) -> str:
    """The front end a test opens notebooks in (``"lab"`` unless parametrized)."""
    return str(getattr(request, "param", "lab"))


@pytest.fixture
def open_notebook(lab: LabServer, page: Any, frontend: str) -> Callable[[str, list[str]], Any]:
    """Write ``cells`` as notebook ``name`` in the lab root, open it, wait for an idle kernel."""

    def open_(name: str, cells: list[str]) -> Any:
        write_notebook(lab.root, name, cells)
        page.goto(lab.notebook_url(name, frontend))
        if frontend == "lab":
            expect(page.get_by_text(IDLE)).to_be_visible(timeout=60_000)
        wait_for_idle_kernel(page)
        return page

    return open_

"""Cancel on a running (blocking) ``%%fal`` cell, in JupyterLab 4 and Notebook 7.

The cell blocks the kernel's main thread for its job's 25 s; a click on Cancel must cancel
the job on the server and end the cell within 2 s: on the first page load with a fresh
kernel, and again after a reload with the kernel already running (the front end may then
route widget messages differently, see reference notebook-notes section 4.2).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from labkit import FRONTENDS, FalnbServer, LabServer, run_all, screenshot, wait_for_idle_kernel
from playwright.sync_api import expect

CELLS = ["import falnb", "%%fal local/slow -o job\nduration: 25\nsteps: 50"]


def cancel_while_running(page: Any, falnb_server: FalnbServer, name: str) -> float:
    """Run all, click Cancel once the job runs; seconds from the click to the cell's end."""
    falnb_server.clear_journal()
    run_all(page)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
    prompt = cell.locator(".jp-InputPrompt")
    view = cell.locator(".falnb-progress")
    expect(view.locator(".falnb-progress-status")).to_have_text("running", timeout=30_000)
    expect(view.locator(".falnb-progress-logs")).to_contain_text("step")
    expect(prompt).to_contain_text("[*]")
    screenshot(page, f"{name}-running")

    view.locator(".falnb-progress-cancel").click()
    clicked = time.monotonic()
    expect(prompt).not_to_contain_text("[*]", timeout=25_000)
    ended = time.monotonic() - clicked
    expect(
        cell.locator(".jp-OutputArea-output").filter(has_text="local/slow: cancelled")
    ).to_be_visible()
    expect(cell.locator(".jp-OutputArea-output").filter(has_text="was cancelled")).to_be_visible()
    screenshot(page, f"{name}-cancelled")
    cancels = [
        e for e in falnb_server.journal() if e["method"] == "PUT" and e["path"].endswith("/cancel")
    ]
    assert [e["status"] for e in cancels] == [202], cancels  # accepted while the job ran
    return ended


def lock_status(lab: LabServer) -> str:
    entries = json.loads((lab.root / "falnb.lock").read_text())["entries"].values()
    (entry,) = [e for e in entries if e["arguments"].get("duration") == 25]
    return str(entry["status"])


@pytest.mark.parametrize("frontend", FRONTENDS, indirect=True)
def test_cancel_on_a_running_cell_cancels_the_job_and_ends_the_cell(
    open_notebook: Any, falnb_server: FalnbServer, lab: LabServer, frontend: str
) -> None:
    page = open_notebook(f"cancel-running-{frontend}.ipynb", CELLS)
    fresh = cancel_while_running(page, falnb_server, f"cancel-{frontend}-fresh-kernel")
    print(f"{frontend}: cell ended {fresh:.2f} s after Cancel (fresh kernel)")
    assert fresh < 2.0, f"the cell ended {fresh:.1f} s after Cancel (fresh kernel)"
    assert lock_status(lab) == "cancelled"

    page.reload()
    wait_for_idle_kernel(page)
    running = cancel_while_running(page, falnb_server, f"cancel-{frontend}-running-kernel")
    print(f"{frontend}: cell ended {running:.2f} s after Cancel (kernel running)")
    assert running < 2.0, f"the cell ended {running:.1f} s after Cancel (kernel running)"
    assert lock_status(lab) == "cancelled"

"""Cancel on a running (blocking) ``%%fal`` cell: the job is cancelled and the cell ends."""

from __future__ import annotations

import time
from typing import Any

from labkit import FalnbServer, run_all, screenshot
from playwright.sync_api import expect


def test_cancel_on_a_running_cell_cancels_the_job_and_ends_the_cell(
    open_notebook: Any, falnb_server: FalnbServer
) -> None:
    page = open_notebook(
        "cancel-running.ipynb",
        ["import falnb", "%%fal local/slow -o job\nduration: 25\nsteps: 50"],
    )
    falnb_server.clear_journal()
    run_all(page)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
    prompt = cell.locator(".jp-InputPrompt")
    view = cell.locator(".falnb-progress")
    expect(view.locator(".falnb-progress-status")).to_have_text("running", timeout=30_000)
    expect(view.locator(".falnb-progress-logs")).to_contain_text("step")
    expect(prompt).to_contain_text("[*]")
    screenshot(page, "cancel-running-before")

    view.locator(".falnb-progress-cancel").click()
    clicked = time.monotonic()
    expect(prompt).not_to_contain_text("[*]", timeout=25_000)
    ended = time.monotonic() - clicked
    screenshot(page, "cancel-running-after")
    cancels = [
        e for e in falnb_server.journal() if e["method"] == "PUT" and e["path"].endswith("/cancel")
    ]
    assert [e["status"] for e in cancels] == [202], cancels
    assert ended < 2.0, f"the cell ended {ended:.1f} s after Cancel"
    expect(
        cell.locator(".jp-OutputArea-output").filter(has_text="local/slow: cancelled")
    ).to_be_visible()

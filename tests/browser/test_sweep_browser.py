"""A ``%%fal --sweep`` cell in JupyterLab + headless Chromium: the one live view fills in (its
counts move, thumbnails arrive while jobs still run), the labelled grid replaces it and, in the
saved and reopened notebook, renders from the file alone and enlarges on a click; a second
sweep's Cancel cancels exactly the accepted jobs on the server and ends the cell."""

from __future__ import annotations

import json
from typing import Any

import pytest
from labkit import (
    FRONTENDS,
    FalnbServer,
    LabServer,
    run_all,
    screenshot,
    wait_for_idle_kernel,
    wait_until,
)
from playwright.sync_api import expect

PROMPTS = ["a red fox", "a grey wolf"]
SEEDS = [1, 2, 3, 4]
JOBS = len(PROMPTS) * len(SEEDS)
GRID = (
    "%%fal local/text-to-image --sweep --concurrency 2 -o grid\n"
    f"prompt: [{', '.join(PROMPTS)}]\nseed: {SEEDS}\n"
    "image_size: square\nnum_inference_steps: {steps}"
)
#: One per front end: the other's jobs are in the lock already, and would replay at once.
STEPS = {"lab": 50, "notebook": 49}
STOPPED = (
    "%%fal local/slow --sweep --concurrency 3 -o stopped\n"
    "duration: 20\nsteps: 40\nseed: [1, 2, 3, 4, 5, 6, 7, 8]"
)

# Records every state the live view shows (the view is replaced once the sweep ends, so a
# test reading it afterwards would see nothing): its counts line and how many thumbnails.
RECORD_VIEW = """() => {
  window.falnbSweepSeen = [];
  const seen = () => {
    const view = document.querySelector(".falnb-sweep");
    if (!view) return;
    const state = {
      counts: view.querySelector(".falnb-sweep-counts").textContent,
      squares: view.querySelectorAll(".falnb-sweep-square").length,
      thumbs: view.querySelectorAll(".falnb-sweep-thumbs img").length,
    };
    const last = window.falnbSweepSeen[window.falnbSweepSeen.length - 1];
    if (!last || JSON.stringify(last) !== JSON.stringify(state)) window.falnbSweepSeen.push(state);
  };
  new MutationObserver(seen).observe(document.body, {
    subtree: true, childList: true, characterData: true, attributes: true,
  });
}"""


def tally(counts: str) -> dict[str, int]:
    """``"3 done · 2 running"`` as ``{"done": 3, "running": 2}``."""
    pairs = (part.strip().split(" ", 1) for part in counts.split("·") if part.strip())
    return {word: int(number) for number, word in pairs}


def grid_output(notebook: dict[str, Any]) -> dict[str, Any]:
    (output,) = [
        o
        for cell in notebook["cells"]
        for o in cell.get("outputs", [])
        if "falnb-sweep-grid" in "".join(o.get("data", {}).get("text/html", ""))
    ]
    return output


@pytest.mark.timeout(240)  # a loaded 2-core machine: JupyterLab alone can take 40 s to load
@pytest.mark.parametrize("frontend", FRONTENDS, indirect=True)
def test_the_live_view_fills_in_and_the_saved_grid_renders_and_enlarges(
    open_notebook: Any, lab: LabServer, page: Any, frontend: str
) -> None:
    name = f"sweep-grid-{frontend}.ipynb"
    page = open_notebook(name, ["import falnb", GRID.format(steps=STEPS[frontend])])
    page.evaluate(RECORD_VIEW)
    run_all(page)
    live = page.locator(".falnb-sweep")
    # Generous timeouts: on a loaded machine the kernel may take a while to get there.
    expect(live.locator(".falnb-sweep-square")).to_have_count(JOBS, timeout=60_000)
    expect(live.locator(".falnb-sweep-thumbs img").first).to_be_visible(timeout=30_000)
    screenshot(page, f"sweep-live-{frontend}")
    grid = page.locator(".falnb-sweep-grid")
    expect(grid).to_be_visible(timeout=60_000)
    expect(live).to_have_count(0)  # the live view gave way to a stable line
    # What stays is the same on a re-run that replays the sweep: no rate, no times.
    line = page.locator('.jp-OutputArea-output[data-mime-type="text/plain"]')
    expect(line).to_have_text(f"sweep local/text-to-image · {JOBS} jobs: {JOBS} done")

    seen: list[dict[str, Any]] = page.evaluate("window.falnbSweepSeen")
    states = [tally(s["counts"]) for s in seen]
    assert states[0].get("done", 0) == 0, seen
    assert states[-1] == {"done": JOBS}, seen
    # Thumbnails arrived while other jobs still ran or waited, never more than were done.
    assert any(
        0 < s["thumbs"] < JOBS and (t.get("running") or t.get("queued"))
        for s, t in zip(seen, states, strict=True)
    ), seen
    assert all(s["thumbs"] <= t.get("done", 0) for s, t in zip(seen, states, strict=True)), seen
    assert all(t.get("running", 0) <= 2 for t in states), seen  # --concurrency 2 holds

    check_grid(grid)
    screenshot(page, f"sweep-grid-{frontend}")

    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    saved = lab.root / name
    wait_until(
        lambda: grid_output(json.loads(saved.read_text())),
        timeout=20,
        what="the saved notebook's grid",
    )
    output = grid_output(json.loads(saved.read_text()))
    # The widget is gone from the file: nothing there needs the kernel to render.
    assert not any("widget" in mime for mime in output["data"]), output["data"].keys()
    assert output["data"]["image/jpeg"], "the whole-grid picture for HTML-less renderers"

    lab.shut_down_kernels()
    page.goto(lab.notebook_url(name, frontend))
    wait_for_idle_kernel(page)
    reopened = page.locator(".falnb-sweep-grid")
    expect(reopened).to_be_visible(timeout=30_000)
    check_grid(reopened)
    first = reopened.locator("img").first
    shown = float(first.evaluate("i => i.getBoundingClientRect().width"))
    natural = int(first.evaluate("i => i.naturalWidth"))
    assert 100 < shown < natural, (shown, natural)  # embedded larger than shown
    first.click()
    zoom = page.locator(".falnb-zoom")
    expect(zoom).to_be_visible()
    zoomed = zoom.locator("img")
    wait_until(
        lambda: zoomed.evaluate("i => i.complete && i.getBoundingClientRect().width") == natural,
        timeout=10,
        what="the clicked image at its own size",
    )
    expect(zoom).to_contain_text("local/text-to-image seed 1")
    screenshot(page, f"sweep-grid-enlarged-{frontend}")
    zoom.click()
    expect(zoom).to_have_count(0)


def check_grid(grid: Any) -> None:
    """Rows are the prompts, columns the seeds, a loaded image in each cell."""
    table = grid.locator("table.falnb-grid")
    expect(table.locator("tr").first.locator("th")).to_have_text(
        ["", *(f"seed={seed}" for seed in SEEDS)]
    )
    expect(table.locator("tr th[style*='text-align:right']")).to_have_text(
        [f"prompt={prompt}" for prompt in PROMPTS]
    )
    images = table.locator("img")
    expect(images).to_have_count(JOBS)
    for index in range(JOBS):
        image = images.nth(index)
        expect(image).to_be_visible()
        assert image.evaluate("i => i.complete && i.naturalWidth > 0"), index
    expect(images.first).to_have_attribute("alt", "local/text-to-image seed 1")


@pytest.mark.timeout(240)
def test_cancel_on_the_live_view_cancels_every_accepted_job_and_ends_the_cell(
    open_notebook: Any, falnb_server: FalnbServer
) -> None:
    page = open_notebook("sweep-cancel.ipynb", ["import falnb", STOPPED])
    falnb_server.clear_journal()
    run_all(page)
    live = page.locator(".falnb-sweep")
    expect(live.locator(".falnb-sweep-counts")).to_contain_text("3 running", timeout=30_000)

    def accepted() -> list[dict[str, Any]]:
        return [
            e
            for e in falnb_server.journal()
            if e["role"] == "queue"
            and e["method"] == "POST"
            and e["status"] == 200
            and e["path"].endswith("/local/slow")
        ]

    wait_until(lambda: len(accepted()) == 3, timeout=20, what="three accepted submissions")
    screenshot(page, "sweep-cancel-running")
    prompt = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-InputPrompt")
    expect(prompt).to_contain_text("[*]")
    live.locator(".falnb-sweep-cancel").click()
    expect(prompt).not_to_contain_text("[*]", timeout=20_000)
    line = page.locator('.jp-OutputArea-output[data-mime-type="text/plain"]')
    expect(line.filter(has_text="sweep local/slow")).to_have_text(
        "sweep local/slow · 8 jobs: 8 cancelled"
    )
    expect(live).to_have_count(0)
    screenshot(page, "sweep-cancelled")

    journal = falnb_server.journal()
    ids = sorted(str(e["request_id"]) for e in accepted())
    cancels = [e for e in journal if e["method"] == "PUT" and e["path"].endswith("/cancel")]
    assert sorted(e["path"].split("/")[-2] for e in cancels) == ids, cancels
    assert all(e["status"] == 202 for e in cancels), cancels
    assert len(accepted()) == 3  # nothing was submitted after the click

"""``%fal form`` in JupyterLab and Notebook 7 + headless Chromium, filled in as a person does:
Run with the prompt left empty marks it and sends nothing; then a typed prompt, a dragged
slider and a picked choice run as one submission with exactly those arguments, the result
renders inside the form, and "Copy as cell" shows the cell that ran."""

from __future__ import annotations

from typing import Any

import pytest
from labkit import FRONTENDS, FalnbServer, LabServer, run_all, screenshot, wait_until
from playwright.sync_api import Locator, expect

T2I = "local/text-to-image"
PROMPT = "a fox filled into a form"


def submissions(server: FalnbServer) -> list[dict[str, Any]]:
    """Queue submits the server accepted for T2I: what would have been paid for."""
    return [
        e
        for e in server.journal()
        if e["method"] == "POST"
        and e["role"] == "queue"
        and e["status"] == 200
        and e["path"].endswith("/" + T2I)
    ]


def shown_cell(form: Locator) -> str:
    """The cell the form stands for now, as "Copy as cell" writes it into the form."""
    form.get_by_role("button", name="Copy as cell").click()
    return str(form.locator(".falnb-form-cell textarea").input_value())


@pytest.mark.timeout(240)  # a loaded 2-core machine: JupyterLab alone can take 40 s to load
@pytest.mark.parametrize("frontend", FRONTENDS, indirect=True)
def test_a_form_filled_in_runs_once_with_exactly_its_values(
    open_notebook: Any, lab: LabServer, falnb_server: FalnbServer, frontend: str
) -> None:
    falnb_server.clear_journal()
    # Each front end's own prompt: the lab's lock would replay the other's run for free.
    prompt = f"{PROMPT} in {frontend}"
    page = open_notebook(f"form-{frontend}.ipynb", ["import falnb", f"%fal form {T2I} --seed 11"])
    run_all(page)
    form = page.locator(".falnb-form")
    expect(form).to_be_visible(timeout=60_000)
    run = form.get_by_role("button", name="Run")

    # Run with the required prompt empty: the field is marked, the reason shown, nothing sent.
    run.click()
    expect(form.locator(".falnb-form-error")).to_contain_text("prompt: required")
    expect(form.locator(".falnb-field-prompt.falnb-form-bad")).to_have_count(1)
    assert submissions(falnb_server) == []

    form.locator(".falnb-field-prompt textarea").fill(prompt)
    # Drag the num_images handle (1..4) to a third of its track: 2.
    track = form.locator(".falnb-field-num_images .noUi-target").bounding_box()
    knob = form.locator(".falnb-field-num_images .noUi-handle").bounding_box()
    assert track is not None
    assert knob is not None
    middle = knob["y"] + knob["height"] / 2
    page.mouse.move(knob["x"] + knob["width"] / 2, middle)
    page.mouse.down()
    page.mouse.move(track["x"] + track["width"] / 3, middle, steps=8)
    page.mouse.up()
    expect(form.locator(".falnb-field-num_images .widget-readout")).to_have_text("2")
    form.locator(".falnb-field-output_format select").select_option("png")
    # Both reached the kernel before Run is pressed: the cell the form stands for says so.
    wait_until(
        lambda: "num_images: 2" in shown_cell(form) and "output_format: png" in shown_cell(form),
        timeout=20,
        what="the slider and the choice to reach the kernel",
    )
    assert shown_cell(form) == "\n".join(
        [f"%%fal {T2I} --seed 11", f"prompt: {prompt}", "num_images: 2", "output_format: png"]
    )

    run.click()
    output = form.locator(".falnb-form-output")
    expect(output.locator("img")).to_have_count(2, timeout=60_000)
    expect(form.locator(".falnb-form-error")).to_have_count(0)
    expect(output).to_contain_text("2 images")  # the result's own caption and cost line
    expect(run).to_be_enabled()
    screenshot(page, f"form-ran-{frontend}")

    [sent] = submissions(falnb_server)
    assert sent["body"] == {
        "prompt": prompt,
        "num_images": 2,
        "output_format": "png",
        "seed": 11,
    }


@pytest.mark.timeout(240)
def test_a_forms_run_shows_live_progress_whose_cancel_stops_it(
    open_notebook: Any, falnb_server: FalnbServer
) -> None:
    falnb_server.clear_journal()
    page = open_notebook("form-cancel.ipynb", ["import falnb", "%fal form local/slow"])
    run_all(page)
    form = page.locator(".falnb-form")
    expect(form).to_be_visible(timeout=60_000)
    form.locator(".falnb-field-duration input").fill("30")
    form.locator(".falnb-field-duration input").press("Enter")
    wait_until(
        lambda: "duration: 30" in shown_cell(form), timeout=20, what="the duration to arrive"
    )
    form.get_by_role("button", name="Run").click()
    view = form.locator(".falnb-form-output .falnb-progress")
    expect(view.locator(".falnb-progress-status")).to_have_text("running", timeout=30_000)
    expect(view.locator(".falnb-progress-logs")).to_contain_text("step")
    screenshot(page, "form-running")
    view.locator(".falnb-progress-cancel").click()
    # The form's own thread ran it, so the kernel was free to take the click at once.
    expect(form.locator(".falnb-form-error")).to_contain_text("Cancelled", timeout=25_000)
    expect(form.locator(".falnb-form-output")).to_contain_text("local/slow: cancelled")
    expect(form.get_by_role("button", name="Run")).to_be_enabled()
    cancels = [
        e for e in falnb_server.journal() if e["method"] == "PUT" and e["path"].endswith("/cancel")
    ]
    assert [e["status"] for e in cancels] == [202], cancels  # accepted while the job ran

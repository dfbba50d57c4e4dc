"""%%fal in JupyterLab 4 and Notebook 7 + headless Chromium: live progress, Cancel, media."""

from __future__ import annotations

from typing import Any

import pytest
from labkit import FRONTENDS, FalnbServer, run_all, screenshot, wait_until
from playwright.sync_api import expect


@pytest.mark.parametrize("frontend", FRONTENDS, indirect=True)
def test_progress_view_moves_and_cancel_cancels(
    open_notebook: Any, falnb_server: FalnbServer, frontend: str
) -> None:
    page = open_notebook(
        f"progress-{frontend}.ipynb",
        ["import falnb", "%%fal local/slow --no-wait -o job\nduration: 40\nsteps: 80"],
    )
    falnb_server.clear_journal()
    run_all(page)
    view = page.locator(".falnb-progress")
    expect(view).to_be_visible()
    bar = view.locator(".falnb-progress-bar")

    def width() -> float:
        return float(bar.evaluate("b => parseFloat(b.style.width) || 0"))

    first = wait_until(width, timeout=20, what="the bar to move")
    wait_until(lambda: width() > first, timeout=20, what="the bar to move on")
    expect(view.locator(".falnb-progress-logs")).to_contain_text("step")
    expect(view.locator(".falnb-progress-status")).to_have_text("running")
    screenshot(page, f"progress-{frontend}-running")

    view.locator(".falnb-progress-cancel").click()
    wait_until(
        lambda: [
            e
            for e in falnb_server.journal()
            if e["method"] == "PUT" and e["path"].endswith("/cancel")
        ],
        timeout=20,
        what="the cancel to reach the server",
    )
    # The live view is replaced by a stable line once the job has ended.
    expect(
        page.locator(".jp-OutputArea-output").filter(has_text="local/slow: cancelled")
    ).to_be_visible()
    screenshot(page, f"progress-{frontend}-cancelled")


@pytest.mark.parametrize("frontend", FRONTENDS, indirect=True)
def test_images_video_and_audio_render(open_notebook: Any, frontend: str) -> None:
    page = open_notebook(
        f"media-{frontend}.ipynb",
        [
            "import falnb",
            (
                "%%fal local/text-to-image --seed 7\nprompt: a red fox in the snow\nnum_images: 2\n"
                "image_size: square"
            ),
            "%%fal local/text-to-video --seed 7\nprompt: waves at dusk",
            "%%fal local/text-to-audio --seed 7\nprompt: a calm tune",
        ],
    )
    run_all(page)
    images = page.locator(".falnb-images img")
    expect(images.first).to_be_visible(timeout=60_000)
    expect(page.locator(".falnb-images figcaption").first).to_contain_text("512x512 · seed 7")
    expect(page.locator("video.falnb-video")).to_be_visible(timeout=60_000)
    expect(page.locator("audio.falnb-audio")).to_be_attached(timeout=60_000)
    assert page.locator("video.falnb-video").evaluate(
        "v => v.readyState >= 1 || v.networkState !== 3"
    )
    expect(page.locator(".falnb-progress")).to_have_count(0)
    # The cost line's dollars stay text: the front end's MathJax would read "$...$" as maths.
    cost = page.locator(".falnb-cost").first
    expect(cost).to_contain_text("2 images \u00d7 $")
    expect(page.locator(".falnb-result mjx-container, .falnb-result .MathJax")).to_have_count(0)
    screenshot(page, f"media-{frontend}")

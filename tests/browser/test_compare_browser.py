"""The compare view in JupyterLab + headless Chromium: dragging the swipe divider reveals the
other image and reaches the kernel; the side-by-side row shows every item with its label."""

from __future__ import annotations

from typing import Any

from labkit import LabServer, run_all, screenshot, wait_until
from playwright.sync_api import expect

SETUP = (
    "import falnb\nfrom PIL import Image\n"
    "red, blue = Image.new('RGB', (256, 256), 'red'), Image.new('RGB', (256, 256), 'blue')"
)
SWIPE = (
    "w = falnb.compare(red, blue, labels=['before', 'after'])\n"
    "w.observe(lambda change: open('position.txt', 'w').write(str(change['new'])), 'position')\n"
    "w"
)
SIDE = "falnb.compare(red, blue, Image.new('RGB', (256, 256), 'green'), labels=['a', 'b', 'c'])"


def test_the_swipe_divider_follows_a_drag_and_the_row_shows_every_item(
    open_notebook: Any, lab: LabServer
) -> None:
    (lab.root / "position.txt").unlink(missing_ok=True)
    page = open_notebook("compare.ipynb", [SETUP, SWIPE, SIDE])
    run_all(page)
    view = page.locator('.falnb-compare[data-mode="swipe"]')
    expect(view).to_be_visible()
    expect(view).to_have_attribute("data-position", "50")
    stage = view.locator(".falnb-compare-stage")
    expect(stage.locator("img")).to_have_count(2)
    box = stage.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    expect(view).to_have_attribute("data-position", "20")
    # The top (before) image is clipped at the divider: the right 80% shows "after".
    clip = view.locator(".falnb-compare-top").evaluate("n => n.style.clipPath")
    assert clip.startswith("inset(0px 80"), clip
    expect(view.locator(".falnb-compare-label")).to_have_text(["before", "after"])
    saved = lab.root / "position.txt"
    wait_until(
        lambda: saved.exists() and round(float(saved.read_text() or 0)) == 20,
        timeout=20,
        what="the kernel to see the new position",
    )
    side = page.locator('.falnb-compare[data-mode="side"]')
    expect(side.locator(".falnb-compare-cell")).to_have_count(3)
    expect(side.locator(".falnb-compare-label")).to_have_text(["a", "b", "c"])
    screenshot(page, "compare-swipe-and-side")

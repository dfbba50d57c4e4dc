"""The realtime widget in JupyterLab + Chromium: drag the slider, watch the frame follow it."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import expect

from falnb import SyncClient, Target

# The same picture in the kernel and in this test, so a direct call can be compared.
PICTURE = """\
from PIL import Image

def picture():
    image = Image.new("RGB", (256, 192), (30, 90, 160))
    for x in range(0, 256, 32):
        image.paste((240, 190, 60), (x, 60, x + 16, 132))
    return image
"""
SETUP = (
    PICTURE
    + """
from ipywidgets import FloatSlider, Layout
from falnb.widgets import Realtime

slider = FloatSlider(0.0, min=0.0, max=1.0, step=0.1, description="strength",
                     layout=Layout(width="500px"))
realtime = Realtime(
    "local/image-to-image",
    base={"image_url": picture(), "prompt": "a watercolor fox", "seed": 3},
    controls={"strength": slider},
)
realtime"""
)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
FRAME = ".falnb-realtime-frame"
READ_FRAME = """async (img) => {
  const data = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let text = "";
  for (const byte of data) text += String.fromCharCode(byte);
  return btoa(text);
}"""


def picture_png() -> bytes:
    namespace: dict[str, Any] = {}
    exec(PICTURE, namespace)
    buffer = io.BytesIO()
    namespace["picture"]().save(buffer, format="PNG")
    return buffer.getvalue()


def direct_frame(server: Any, strength: float) -> bytes:
    inputs = {"image": picture_png(), "prompt": "a watercolor fox", "seed": 3, "strength": strength}
    with (
        SyncClient(Target.local(server.base_url, server.key)) as client,
        client.realtime("local/image-to-image") as connection,
    ):
        connection.send(inputs)
        result = connection.recv(timeout=30)
    assert result is not None
    content: bytes = result["images"][0]["content"]
    return content


def shown_frame(page: Any) -> bytes:
    """The bytes behind the <img> the user sees (its blob URL, fetched in the page)."""
    return base64.b64decode(page.locator(FRAME).evaluate(READ_FRAME))


def test_dragging_the_slider_updates_the_frame(
    open_notebook: Callable[[str, list[str]], Any], falnb_server: Any
) -> None:
    page = open_notebook("realtime.ipynb", [SETUP])
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    frame = page.locator(FRAME)
    expect(frame).to_be_visible(timeout=60_000)
    expect(page.locator(".falnb-realtime-caption")).to_have_text("strength=0.0")
    first = shown_frame(page)
    assert first == direct_frame(falnb_server, 0.0)
    assert Image.open(io.BytesIO(first)).size == (256, 192)

    # Drag the handle with the mouse, in small moves as a hand would, to ~70% of the track.
    handle = page.locator(".widget-slider .noUi-handle").first
    track = page.locator(".widget-slider .noUi-target").first
    box = track.bounding_box()
    start = handle.bounding_box()
    assert box is not None
    assert start is not None
    y = start["y"] + start["height"] / 2
    page.mouse.move(start["x"] + start["width"] / 2, y)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(box["x"] + box["width"] * 0.7 * step / 20, y)
    page.mouse.up()

    readout = page.locator(".widget-slider .widget-readout").first
    final = float(readout.text_content() or "nan")
    assert 0.5 <= final <= 0.9
    caption = page.locator(".falnb-realtime-caption")
    expect(caption).to_have_text(f"strength={final}", timeout=30_000)
    expect(page.locator(".falnb-realtime-status")).to_have_text("live")
    expect(page.locator(".falnb-realtime-fps")).to_contain_text("fps")
    expect(page.locator(".falnb-realtime-latency")).to_contain_text("ms")
    last = shown_frame(page)
    assert last != first
    assert last == direct_frame(falnb_server, final)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator(".falnb-realtime").first.screenshot(path=str(ARTIFACTS / "realtime-widget.png"))

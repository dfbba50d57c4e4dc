"""The realtime widget in JupyterLab + Chromium: drag the slider, watch the frame follow it.

The widget is two outputs: the live view, and a still of the last frame (hidden while the view
shows) that the kernel updates once frames settle. The saved notebook carries the last frame,
and reopened with a kernel that no longer has the widget it shows that picture.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from labkit import FRONTENDS, run_all, screenshot, wait_for_idle_kernel
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
#: The first slider the widget's own JS drew (interact abbreviations, %fal realtime lines).
SLIDER = ".falnb-realtime-drawn input[type=range]"
# The still: the widget cell's second output.
STILL = ".jp-Notebook .jp-Cell >> nth=0 >> .jp-OutputArea-child >> nth=1"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# The bytes the frame's canvas was drawn from, proven to be what it shows: its pixels (read
# in the same task as the bytes, so a newer frame cannot slip in between) must equal those
# bytes decoded again the way the widget decodes them (WebCodecs' ImageDecoder where the page
# has one, else a Blob's bitmap) and drawn the same way, every pixel.
READ_FRAME = """async (canvas) => {
  const source = canvas.falnbShown;
  if (!(source?.bytes instanceof Uint8Array)) {
    throw new Error(`the frame was not drawn from bytes: ${source}`);
  }
  const { width, height } = canvas;
  const shown = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  const bitmap =
    typeof ImageDecoder === "function"
      ? (await new ImageDecoder({ data: source.bytes, type: source.type }).decode()).image
      : await createImageBitmap(new Blob([source.bytes], { type: source.type }));
  const size = [bitmap.displayWidth || bitmap.width, bitmap.displayHeight || bitmap.height];
  if (size[0] !== width || size[1] !== height) {
    throw new Error(`the canvas is ${width}x${height}, its bytes ${size[0]}x${size[1]}`);
  }
  const copy = new OffscreenCanvas(width, height).getContext("2d", { alpha: false });
  copy.drawImage(bitmap, 0, 0);
  const decoded = copy.getImageData(0, 0, width, height).data;
  const differ = decoded.findIndex((value, i) => value !== shown[i]);
  if (differ >= 0) throw new Error(`the canvas does not show its bytes (pixel ${differ / 4})`);
  let text = "";
  for (const byte of source.bytes) text += String.fromCharCode(byte);
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


# The cell's outputs as JupyterLab's notebook model holds them (what docmanager:save writes).
CELL_OUTPUTS = """() => {
  const outputs = window.jupyterapp.shell.currentWidget.content.model.cells.get(0).outputs;
  const found = [];
  for (let i = 0; i < outputs.length; i++) found.push(outputs.get(i).toJSON());
  return JSON.stringify(found);
}"""


def cell_outputs(page: Any) -> list[dict[str, Any]]:
    outputs: list[dict[str, Any]] = json.loads(page.evaluate(CELL_OUTPUTS))
    return outputs


def display_output(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The realtime widget's still (the output with a static picture)."""
    (output,) = [o for o in outputs if "image/jpeg" in o.get("data", {})]
    return output


def text(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "".join(value)


def drag_slider(page: Any, fraction: float, midway: Callable[[float], None] | None = None) -> float:
    """Drag the handle with the mouse, in small moves as a hand would; the readout after.

    ``midway(value)`` runs with the button still down, halfway, given the readout there.
    """
    handle = page.locator(".widget-slider .noUi-handle").first
    track = page.locator(".widget-slider .noUi-target").first
    box = track.bounding_box()
    start = handle.bounding_box()
    assert box is not None
    assert start is not None
    x0, y = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    x1 = box["x"] + box["width"] * fraction
    page.mouse.move(x0, y)
    page.mouse.down()
    readout = page.locator(".widget-slider .widget-readout").first
    for step in range(1, 21):
        page.mouse.move(x0 + (x1 - x0) * step / 20, y)
        if step == 10 and midway is not None:
            midway(float(readout.text_content() or "nan"))
    page.mouse.up()
    return float(readout.text_content() or "nan")


def drag_drawn_slider(page: Any, fraction: float) -> float:
    """Drag the slider the widget's JS drew from its handle to ``fraction`` of the track, in small
    moves as a hand would; the value its readout shows after."""
    box = page.locator(SLIDER).bounding_box()
    assert box is not None
    value = float(page.locator(SLIDER).input_value())
    y = box["y"] + box["height"] / 2
    inset = 8  # half the handle: its centre travels the track less the handle's width
    width = box["width"] - 2 * inset
    x0, x1 = box["x"] + inset + width * value, box["x"] + inset + width * fraction
    page.mouse.move(x0, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x0 + (x1 - x0) * step / 10, y)
    page.mouse.up()
    return float(page.locator(".falnb-realtime-readout").text_content() or "nan")


def settled_on(page: Any, value: float) -> dict[str, Any]:
    """Wait (with a deadline) for the kernel's settle update naming ``value``; that output."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        output = display_output(cell_outputs(page))
        if f"strength={value})" in text(output["data"]["text/plain"]):
            return output
        page.wait_for_timeout(100)  # poll the page's state, not a fixed wait for it
    raise AssertionError(f"no settle update for strength={value}: {cell_outputs(page)}")


def shown_frame(page: Any) -> bytes:
    """The bytes of the frame the user sees (proven in the page to be what its canvas shows)."""
    return base64.b64decode(page.locator(FRAME).evaluate(READ_FRAME))


def test_dragging_the_slider_updates_the_frame_and_the_saved_output(
    open_notebook: Callable[[str, list[str]], Any], falnb_server: Any, lab: Any
) -> None:
    page = open_notebook("realtime.ipynb", [SETUP])
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    frame = page.locator(FRAME)
    expect(frame).to_be_visible(timeout=60_000)
    expect(page.locator(".falnb-realtime-caption")).to_have_text("strength=0.0")
    first = shown_frame(page)
    assert first == direct_frame(falnb_server, 0.0)
    assert Image.open(io.BytesIO(first)).size == (256, 192)

    # Drag the handle to ~70% of the track.
    final = drag_slider(page, 0.7)
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

    # Frames settle: the kernel re-emits the output with the last frame; save through the UI.
    output = settled_on(page, final)
    assert base64.b64decode(output["data"]["image/jpeg"]) == last
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    saved = display_output(
        wait_until_saved(lab.root / "realtime.ipynb", lambda o: f"strength={final})" in o)
    )
    assert base64.b64decode(saved["data"]["image/jpeg"]) == last
    assert Image.open(io.BytesIO(last)).size == (256, 192)
    assert text(saved["data"]["text/plain"]) == (
        f"Realtime local/image-to-image (strength={final}): last frame 256x192 image/jpeg"
    )
    # The live view is the output before the still; the still is hidden while the view shows.
    saved_outputs = wait_until_saved(lab.root / "realtime.ipynb", lambda o: True)
    assert WIDGET_VIEW in saved_outputs[0]["data"]
    assert WIDGET_VIEW not in saved["data"]
    expect(page.locator(STILL)).to_be_hidden()

    # The view keeps working: drag again, the frame follows, and the still settles again. A
    # hand held still mid-drag for longer than the settle time must not re-render the view.
    expect(page.locator(".falnb-realtime-view")).to_have_count(1)
    page.locator(".widget-slider .noUi-handle").first.evaluate("h => h.dataset.marked = '1'")

    def hold_still(value: float) -> None:
        expect(caption).to_have_text(f"strength={value}", timeout=30_000)
        page.wait_for_timeout(2500)  # proving an absence takes time: longer than settle=1.5
        assert f"strength={final})" in text(
            display_output(cell_outputs(page))["data"]["text/plain"]
        )
        expect(page.locator(".widget-slider .noUi-handle[data-marked]")).to_have_count(1)

    again = drag_slider(page, 0.2, midway=hold_still)
    assert again != final
    expect(caption).to_have_text(f"strength={again}", timeout=30_000)
    assert shown_frame(page) == direct_frame(falnb_server, again)
    settled_on(page, again)
    expect(page.locator(".falnb-realtime-view")).to_have_count(1)  # never re-rendered

    # Save, shut the kernel down, reopen without running: the last frame shows.
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    wait_until_saved(lab.root / "realtime.ipynb", lambda o: f"strength={again})" in o)
    lab.shut_down_kernels()
    page.goto(lab.notebook_url("realtime.ipynb"))
    wait_for_idle_kernel(page)
    still = page.locator(STILL).locator("img")
    expect(still).to_be_visible()
    source = str(still.get_attribute("src"))
    assert base64.b64decode(source.split(",", 1)[1]) == direct_frame(falnb_server, again)
    expect(page.locator(".falnb-realtime-view")).to_have_count(0)
    screenshot(page, "realtime-reopened")


def wait_until_saved(path: Path, saved: Callable[[str], bool]) -> list[dict[str, Any]]:
    """The first code cell's outputs in the .ipynb on disk, once ``saved`` holds for them."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        notebook = nbformat.read(str(path), as_version=4)
        outputs: list[dict[str, Any]] = notebook.cells[0].outputs
        if any(saved(text(o.get("data", {}).get("text/plain", ""))) for o in outputs):
            return outputs
        time.sleep(0.1)
    raise AssertionError(f"{path.name} was not saved with the settled output")


# The README's %fal realtime line, its image a {variable} (a PIL image in the kernel).
README_LINE = (
    '%fal realtime local/image-to-image strength=(0.0, 1.0, 0.05) prompt="a watercolor fox" '
    "image_url={photo}"
)


@pytest.mark.parametrize("frontend", FRONTENDS, indirect=True)
def test_a_realtime_line_with_a_variable_image_shows_frames_of_that_image(
    open_notebook: Callable[[str, list[str]], Any], frontend: str
) -> None:
    page = open_notebook(
        f"realtime-line-{frontend}.ipynb",
        [PICTURE + "\nimport falnb\nphoto = picture()", README_LINE],
    )
    run_all(page)
    frame = page.locator(FRAME)
    expect(frame).to_be_visible(timeout=60_000)
    caption = page.locator(".falnb-realtime-caption")
    # The slider starts mid-range, as ipywidgets.interact's do.
    expect(caption).to_have_text("strength=0.5, prompt='a watercolor fox'")
    expect(page.locator(".falnb-realtime-status")).to_have_text("live")
    first = shown_frame(page)
    # The kernel's picture reached the model: the frame has its size (256x192, not a name).
    assert Image.open(io.BytesIO(first)).size == (256, 192)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
    for leak in ("__falnb", "is not a value", "Traceback", "Error"):
        expect(cell.locator(".jp-OutputArea")).not_to_contain_text(leak)
    # The still saved after the live view is hidden while the view shows.
    expect(cell.locator(".jp-OutputArea-child").nth(1)).to_be_hidden()
    # The line's slider (0.0..1.0 by 0.05) and text box, drawn by the widget's JS, drive it.
    expect(page.locator(".falnb-realtime-slider .falnb-realtime-name")).to_have_text("strength")
    expect(page.locator(".falnb-realtime-drawn input[type=text]")).to_have_value("a watercolor fox")
    final = drag_drawn_slider(page, 0.85)
    assert 0.7 <= final <= 1.0
    assert round(final / 0.05) * 0.05 == pytest.approx(final)
    expect(caption).to_have_text(f"strength={final}, prompt='a watercolor fox'", timeout=30_000)
    assert shown_frame(page) != first
    page.locator(".falnb-realtime-view").first.screenshot(
        path=str(ARTIFACTS / f"realtime-line-{frontend}.png")
    )

"""Realtime straight from the browser, in JupyterLab + Chromium (issue 17).

The widget's JS asks the kernel for a token scoped to the one app, opens the realtime socket
itself and draws its own slider; frames never cross the kernel. Forced to the kernel path (or
when the direct socket fails) the same widget works through the kernel. The key never reaches
the page: not the DOM, not anything the kernel sends it, not a URL it opens, not the saved
notebook; the token the page holds opens that one app only.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import nbformat
from labkit import run_all, wait_until
from playwright.sync_api import expect
from test_realtime_browser import (
    PICTURE,
    direct_frame,
    drag_drawn_slider,
    settled_on,
    shown_frame,
    wait_until_saved,
)
from websockets.sync.client import connect

CELL = (
    PICTURE
    + """
import falnb.widgets.realtime
from falnb.widgets import Realtime

falnb.widgets.realtime.TOKEN_EXPIRATION = {expiration}
realtime = Realtime(
    "local/image-to-image",
    base={{"image_url": picture(), "prompt": "a watercolor fox", "seed": 3}},
    controls={{"strength": (0.0, 1.0, 0.1)}},
    transport="{transport}",
)
realtime"""
)
CAPTION = ".falnb-realtime-caption"
TRANSPORT = ".falnb-realtime-transport"


class Sockets:
    """Every WebSocket the page opens, and what each carried (text as sent, bytes decoded)."""

    def __init__(self, page: Any, server: Any) -> None:
        self.server = server
        self.opened: list[Any] = []
        self.payloads: list[str] = []
        page.on("websocket", self._opened)

    def _opened(self, ws: Any) -> None:
        self.opened.append(ws)
        for event in ("framesent", "framereceived"):
            ws.on(event, self._frame)

    def _frame(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            payload = payload.decode("latin-1")
        self.payloads.append(payload)

    def realtime(self) -> list[Any]:
        """The sockets the page opened to the falnb server itself (not to JupyterLab)."""
        origin = "ws" + self.server.base_url[len("http") :]
        return [ws for ws in self.opened if ws.url.startswith(origin)]


def open_widget(
    open_notebook: Callable[[str, list[str]], Any],
    name: str,
    transport: str,
    *,
    expiration: int = 120,
    extra: tuple[str, ...] = (),
) -> Any:
    cell = CELL.format(transport=transport, expiration=expiration)
    return open_notebook(name, [cell, *extra])


def test_browser_direct_frames_skip_the_kernel_and_the_key_stays_there(
    open_notebook: Callable[[str, list[str]], Any], page: Any, falnb_server: Any, lab: Any
) -> None:
    sockets = Sockets(page, falnb_server)
    open_widget(
        open_notebook,
        "direct.ipynb",
        "auto",
        expiration=4,
        extra=('print("heard", realtime.controls["strength"].value)',),
    )
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-cell')")
    expect(page.locator(".falnb-realtime-frame")).to_be_visible(timeout=60_000)
    expect(page.locator(TRANSPORT)).to_have_text("browser-direct", timeout=30_000)
    expect(page.locator(CAPTION)).to_have_text("strength=0.5")
    (socket,) = sockets.realtime()
    query = parse_qs(urlsplit(socket.url).query)
    token = query["fal_jwt_token"][0]
    assert urlsplit(socket.url).path == "/local/image-to-image/realtime"

    # The slider drawn by the widget's JS drives the frame through the page's own socket.
    falnb_server.clear_journal()
    received = len(sockets.payloads)
    final = drag_drawn_slider(page, 0.8)
    assert final == 0.8
    expect(page.locator(CAPTION)).to_have_text("strength=0.8", timeout=30_000)
    expect(page.locator(".falnb-realtime-status")).to_have_text("live")
    assert shown_frame(page) == direct_frame(falnb_server, 0.8)
    assert len(sockets.payloads) > received
    # The kernel sent no input: its own realtime connection carried nothing (the journal has
    # no new realtime handshake from it, and the page's socket is still the only one).
    assert sockets.realtime() == [socket]

    # The saved still follows the browser's frame; the kernel heard where the slider rests.
    output = settled_on(page, 0.8)
    assert base64.b64decode(output["data"]["image/jpeg"]) == shown_frame(page)
    page.evaluate(
        "() => { const nb = window.jupyterapp.shell.currentWidget.content;"
        " nb.activeCellIndex = 1; window.jupyterapp.commands.execute('notebook:run-cell'); }"
    )
    expect(page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea")).to_have_text(
        "heard 0.8", timeout=30_000
    )

    # The token is refreshed before it expires (4 s here): the JS asks, the kernel mints.
    def minted() -> int:
        return sum(1 for e in falnb_server.journal() if e["path"].endswith("/tokens/"))

    wait_until(minted, timeout=20, what="a token refreshed before it expires")

    # The key is nowhere in the page; the token only in the socket URL and its custom message.
    key = falnb_server.key
    assert key not in page.content()
    assert all(key not in payload for payload in sockets.payloads)
    assert all(key not in ws.url for ws in sockets.opened)
    assert token not in page.content()
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    path = lab.root / "direct.ipynb"
    wait_until_saved(path, lambda o: "strength=0.8)" in o)
    saved = path.read_text()
    assert key not in saved
    assert token not in saved
    notebook = nbformat.reads(saved, as_version=4)
    assert "fal_jwt_token" not in json.dumps(notebook.metadata)

    # The token opens this app only: another app refuses it.
    base = "ws" + falnb_server.base_url[len("http") :]
    with connect(f"{base}/local/realtime-echo/realtime?fal_jwt_token={token}") as other:
        assert json.loads(other.recv(timeout=10)) == {"status": "error", "error": "Unauthorized"}


def drag_follows(page: Any, server: Any, value: float) -> None:
    """Drag the drawn slider to ``value``: the picture changes to that value's frame."""
    first = shown_frame(page)
    assert drag_drawn_slider(page, value) == value
    expect(page.locator(CAPTION)).to_have_text(f"strength={value}", timeout=30_000)
    frame = shown_frame(page)
    assert frame != first
    assert frame == direct_frame(server, value)


def test_the_kernel_path_when_forced(
    open_notebook: Callable[[str, list[str]], Any], page: Any, falnb_server: Any
) -> None:
    sockets = Sockets(page, falnb_server)
    open_widget(open_notebook, "kernel.ipynb", "kernel")
    run_all(page)
    expect(page.locator(".falnb-realtime-frame")).to_be_visible(timeout=60_000)
    expect(page.locator(".falnb-realtime-view[data-transport=kernel]")).to_have_count(1)
    expect(page.locator(TRANSPORT)).to_have_text("via kernel")
    drag_follows(page, falnb_server, 0.7)
    assert sockets.realtime() == []  # every frame came through the kernel


def test_auto_falls_back_to_the_kernel_when_the_direct_socket_fails(
    open_notebook: Callable[[str, list[str]], Any], page: Any, falnb_server: Any
) -> None:
    # The page's socket is closed before any answer (a proxy or a firewall in the way).
    origin = "ws" + falnb_server.base_url[len("http") :]
    tried: list[str] = []

    def refuse(ws: Any) -> None:
        tried.append(ws.url)
        ws.close(code=1011)

    page.route_web_socket(f"{origin}/**", refuse)
    open_widget(open_notebook, "fallback.ipynb", "auto")
    run_all(page)
    expect(page.locator(".falnb-realtime-frame")).to_be_visible(timeout=60_000)
    # The JS tried its own socket, saw it fail, and handed the frames back to the kernel.
    expect(page.locator(".falnb-realtime-view[data-transport=kernel]")).to_have_count(
        1, timeout=30_000
    )
    assert len(tried) == 1
    assert tried[0].startswith(f"{origin}/local/image-to-image/realtime?fal_jwt_token=")
    expect(page.locator(TRANSPORT)).to_have_text("via kernel")
    drag_follows(page, falnb_server, 0.6)
    expect(page.locator(".falnb-realtime-error")).to_be_hidden()


# What the page sends the kernel of its drawn controls' values (browser-direct: once they rest),
# and which of those messages the kernel has finished handling (its idle status for each).
KERNEL = "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
WATCH_SAVES = """() => {
  const watch = { saves: [], ids: [], handled: [] };
  window.falnbWatch = watch;
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  kernel.anyMessage.connect((_, { msg, direction }) => {
    const type = msg.header.msg_type;
    if (direction === "send" && type === "comm_msg") {
      const state = (msg.content.data || {}).state || {};
      if ("values" in state) {
        watch.saves.push(state.values.strength);
        watch.ids.push(msg.header.msg_id);
      }
    } else if (type === "status" && msg.content.execution_state === "idle") {
      watch.handled.push(msg.parent_header.msg_id);
    }
  });
}"""
BUSY_UNTIL_GO = """\
import time
from pathlib import Path

while not Path("go").exists():
    time.sleep(0.02)"""
ALL_SAVES_HANDLED = """() => {
  const watch = window.falnbWatch;
  return watch.ids.length > 0 && watch.ids.every((id) => watch.handled.includes(id));
}"""


def test_moves_made_while_the_kernel_catches_up_are_kept(
    open_notebook: Callable[[str, list[str]], Any], page: Any, falnb_server: Any, lab: Any
) -> None:
    # Browser-direct the page tells the kernel where a control rests; the kernel's answer to
    # that (ipywidgets echoes every update back) must not pull the slider back to the old
    # value when the hand has moved on meanwhile. A busy kernel makes the answer come late.
    cell = CELL.format(transport="auto", expiration=120).replace("0.1)}", "0.01)}")
    open_notebook(
        "echo.ipynb",
        [cell, BUSY_UNTIL_GO, 'print("heard", realtime.controls["strength"].value)'],
    )
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-cell')")
    expect(page.locator(TRANSPORT)).to_have_text("browser-direct", timeout=60_000)
    expect(page.locator(CAPTION)).to_have_text("strength=0.5")
    page.evaluate(WATCH_SAVES)

    def run_cell(index: int) -> None:
        page.evaluate(
            "(i) => { const nb = window.jupyterapp.shell.currentWidget.content;"
            " nb.activeCellIndex = i; window.jupyterapp.commands.execute('notebook:run-cell'); }",
            index,
        )

    go = lab.root / "go"
    go.unlink(missing_ok=True)
    run_cell(1)  # the kernel is busy until told: what the page sends it waits
    page.wait_for_function(f"() => {KERNEL}.status === 'busy'")
    slider = page.locator(".falnb-realtime-drawn input[type=range]")
    slider.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => window.falnbWatch.saves.length === 1")  # 0.51 rests: sent
    for _ in range(3):  # the hand moves on while the kernel is still busy
        page.keyboard.press("ArrowRight")
    presses = 4
    go.touch()
    # Keep moving (faster than a resting control is reported) until the kernel has handled
    # every value sent it, so its answers reach the page while the hand moves on.
    while not page.evaluate(ALL_SAVES_HANDLED):
        page.keyboard.press("ArrowRight")
        presses += 1
        page.wait_for_timeout(100)
    for _ in range(3):
        page.keyboard.press("ArrowRight")
        presses += 1
    assert presses < 50
    final = round(0.5 + presses * 0.01, 2)
    expect(page.locator(".falnb-realtime-readout")).to_have_text(str(final))
    expect(page.locator(CAPTION)).to_have_text(f"strength={final}", timeout=30_000)
    assert float(slider.input_value()) == final
    assert shown_frame(page) == direct_frame(falnb_server, final)
    # Where it rests now reaches the kernel too.
    page.wait_for_function(f"() => window.falnbWatch.saves.at(-1) === {final}")
    run_cell(2)
    heard = page.locator(".jp-Cell").nth(2).locator(".jp-OutputArea")
    expect(heard).to_have_text(f"heard {final}", timeout=30_000)

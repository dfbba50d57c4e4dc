"""The kernel's half of browser-direct realtime, driven as the widget's JS drives it.

The JS asks by custom message; the kernel answers with a token for the one app, the socket's
URL and the fixed inputs, and never with the key; the token is in no trait (so in no saved
widget state). The JS reports where its drawn controls rest and its latest frame.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from PIL import Image
from websockets.sync.client import connect

from falnb.client import SyncClient
from falnb.local import LocalServer
from falnb.widgets._realtime_spec import parse_realtime_line
from falnb.widgets.realtime import Realtime

I2I = "local/image-to-image"


@pytest.fixture
def client(server: LocalServer) -> Iterator[SyncClient]:
    with SyncClient(server.target) as sync:
        yield sync


class Page:
    """Stands in for the widget's JS: sends custom messages, records the kernel's replies."""

    def __init__(self, widget: Realtime) -> None:
        self.widget = widget
        self.replies: list[tuple[dict[str, Any], list[bytes]]] = []
        widget.view.send = self._record  # type: ignore[method-assign]

    def _record(self, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        self.replies.append((content, list(buffers or [])))

    def ask(self, content: dict[str, Any], buffers: list[bytes] | None = None) -> None:
        self.widget.view._handle_custom_msg(content, buffers or [])

    def set(self, **state: Any) -> None:
        """A state update from the browser (as model.save_changes sends it)."""
        self.widget.view.set_state(state)


def make(client: SyncClient, picture: Image.Image | None = None, **options: Any) -> Realtime:
    image = picture or Image.new("RGB", (64, 48), (200, 40, 40))
    return Realtime(
        I2I,
        base={"image": image, "prompt": "a fox", "seed": 3},
        controls={"strength": (0.0, 1.0, 0.1)},
        client=client,
        **options,
    )


def test_a_session_gives_a_token_for_the_one_app_and_never_the_key(
    server: LocalServer, client: SyncClient, until: Any
) -> None:
    widget = make(client, transport="browser")
    try:
        page = Page(widget)
        page.ask({"type": "session"})
        until(lambda: page.replies, what="the kernel's answer")
        (content, buffers), *_ = page.replies
        assert content["type"] == "session"
        assert content["url"] == server.target.realtime_url + "/local/image-to-image/realtime"
        assert content["base"] == {"prompt": "a fox", "seed": 3}
        assert content["binary"] == ["image"]
        assert Image.open(io.BytesIO(buffers[0])).size == (64, 48)
        assert content["expires_in"] == 120
        token = content["token"]
        assert server.key not in json.dumps(content)
        # In no trait: a saved notebook's widget state cannot hold it.
        state = json.dumps(widget.view.get_state(), default=repr)
        assert token not in state
        assert server.key not in state

        # The token opens image-to-image, and only it.
        with connect(f"{content['url']}?fal_jwt_token={token}") as ws:
            ws.send(msgpack.packb({"image": buffers[0], "prompt": "a fox", "strength": 0.3}))
            reply = ws.recv(timeout=10)
            assert isinstance(reply, bytes)
            answer = msgpack.unpackb(reply)
            assert answer["images"][0]["content"]
        echo = content["url"].replace("image-to-image", "realtime-echo")
        with connect(f"{echo}?fal_jwt_token={token}") as ws:
            assert json.loads(ws.recv(timeout=10)) == {"status": "error", "error": "Unauthorized"}

        # A refresh within a second is the same token (rate limit); after a refusal, a new one.
        page.ask({"type": "token"})
        until(lambda: len(page.replies) == 2, what="the refresh")
        assert page.replies[1][0]["token"] == token
        page.ask({"type": "token", "refused": True})
        until(lambda: len(page.replies) == 3, what="the fresh token")
        assert page.replies[2][0]["token"] != token
    finally:
        widget.close()


def test_browser_direct_the_kernel_hears_values_and_the_last_frame(
    client: SyncClient, until: Any
) -> None:
    widget = make(client, settle=0.05)
    try:
        assert widget.wait_for_frame(10)  # auto: the first frame through the kernel
        sent = widget.stats["sent"]
        page = Page(widget)
        page.set(transport_in_use="browser")
        assert widget.direct
        # The drawn slider rests at 0.8: the control reads it, the kernel sends nothing.
        page.set(values={"strength": 0.8})
        assert widget.controls["strength"].value == 0.8
        frame = widget.last_frame
        assert frame is not None
        page.ask(
            {
                "type": "frame",
                "inputs": {"prompt": "a fox", "seed": 3, "strength": 0.8},
                "content_type": "image/jpeg",
                "width": 64,
                "height": 48,
                "latency_ms": 12.5,
            },
            [frame.image],
        )
        shown = widget.last_frame
        assert shown is not None
        assert shown is not frame
        assert shown.inputs["strength"] == 0.8
        assert shown.latency == pytest.approx(0.0125)
        assert widget.summary() == (
            "Realtime local/image-to-image (strength=0.8): last frame 64x48 image/jpeg"
        )
        assert widget.stats["sent"] == sent  # no input went through the kernel

        # The JS falls back to the kernel path: the kernel draws the current values again.
        page.set(transport_in_use="kernel")
        until(lambda: widget.stats["sent"] == sent + 1, what="the kernel's exchange")
    finally:
        widget.close()


def test_kernel_path_drawn_controls_drive_the_kernel(client: SyncClient, until: Any) -> None:
    widget = make(client, transport="kernel")
    try:
        assert widget.view.transport_in_use == "kernel"
        assert widget.view.controls_spec == [
            {
                "name": "strength",
                "label": "strength",
                "kind": "slider",
                "min": 0.0,
                "max": 1.0,
                "step": 0.1,
                "integer": False,
            }
        ]
        Page(widget).set(values={"strength": 0.2})
        until(
            lambda: widget.last_frame is not None and widget.last_frame.inputs["strength"] == 0.2,
            what="a frame for the value the browser sent",
        )
    finally:
        widget.close()


def test_a_line_picks_its_transport() -> None:
    assert parse_realtime_line(f"{I2I} seed=3", {}).transport == "auto"
    spec = parse_realtime_line(f'{I2I} strength=(0, 1) transport="browser"', {})
    assert spec.transport == "browser"
    assert list(spec.abbreviations) == ["strength"]
    assert "transport" not in spec.base


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"{I2I} transport=cloud", "transport=cloud is not one of auto, browser, kernel"),
        (f"{I2I} transport=kernel transport=browser", "transport is given twice"),
    ],
)
def test_a_bad_transport_is_one_line(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_realtime_line(line, {})


def test_a_bad_transport_argument(client: SyncClient) -> None:
    with pytest.raises(ValueError, match="transport='fast' is not one of auto, browser, kernel"):
        make(client, transport="fast")

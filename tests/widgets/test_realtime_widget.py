"""The realtime widget driven from Python against the local server's realtime apps."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ipywidgets import FloatSlider, IntSlider, Text
from PIL import Image

from falnb import _runtime
from falnb.client import SyncClient
from falnb.client._transport import RetryPolicy
from falnb.local import LocalServer
from falnb.local.apps.media.image_to_image import image_to_image_realtime
from falnb.local.registry import Context, Endpoint
from falnb.widgets.realtime import Realtime, SettleTimer

I2I = "local/image-to-image"
QUICK = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05)
Until = Callable[..., Any]


@pytest.fixture
def client(server: LocalServer) -> Iterator[SyncClient]:
    with SyncClient(server.target, retry=QUICK) as sync:
        yield sync


@pytest.fixture
def picture() -> Image.Image:
    image = Image.new("RGB", (96, 64), (30, 120, 200))
    for x in range(0, 96, 8):
        image.paste((240, 200, 40), (x, 20, x + 4, 44))
    return image


@pytest.fixture
def widgets() -> Iterator[list[Realtime]]:
    made: list[Realtime] = []
    yield made
    for widget in made:
        widget.close()


Fox = Callable[..., Realtime]


@pytest.fixture
def fox(client: SyncClient, picture: Image.Image, widgets: list[Realtime]) -> Fox:
    """Makes a widget on ``picture`` with the prompt "a fox" (kept in ``widgets`` for cleanup):
    ``fox(controls, endpoint=I2I, seed=None, **options)``."""

    def make(
        controls: dict[str, Any], endpoint: str = I2I, seed: int | None = None, **options: Any
    ) -> Realtime:
        base = {"image": picture, "prompt": "a fox"} | ({} if seed is None else {"seed": seed})
        widget = Realtime(endpoint, base=base, controls=controls, client=client, **options)
        widgets.append(widget)
        return widget

    return make


def direct(client: SyncClient, endpoint: str, inputs: dict[str, Any]) -> bytes:
    """The image a plain realtime call answers for ``inputs``."""
    with client.realtime(endpoint) as connection:
        connection.send(inputs)
        result = connection.recv(timeout=10)
    assert result is not None
    content: bytes = result["images"][0]["content"]
    return content


def shows(widget: Realtime, **values: Any) -> bool:
    frame = widget.last_frame
    return frame is not None and all(frame.inputs.get(k) == v for k, v in values.items())


def test_changes_produce_frames(
    server: LocalServer,
    client: SyncClient,
    picture: Image.Image,
    widgets: list[Realtime],
    until: Until,
) -> None:
    strength = FloatSlider(0.5, min=0.0, max=1.0, step=0.05)
    prompt = Text("a watercolor fox")
    widget = Realtime(
        I2I,
        base={"image_url": picture, "seed": 3},
        controls={"strength": strength, "prompt": prompt},
        client=client,
    )
    widgets.append(widget)
    assert widget.wait_for_frame(10)
    first = widget.frame
    assert first.startswith(b"\xff\xd8")  # JPEG bytes in the Bytes trait, not base64 text
    assert widget.view.frame_type == "image/jpeg"
    assert widget.status == "live"
    assert widget.view.frame_label == "strength=0.5, prompt='a watercolor fox'"

    strength.value = 0.9
    until(lambda: shows(widget, strength=0.9), what="a frame for strength=0.9")
    prompt.value = "a neon city"
    until(lambda: shows(widget, prompt="a neon city"), what="a frame for the new prompt")
    assert widget.frame != first
    assert widget.view.frames == widget.stats["frames"] >= 3
    assert widget.view.latency_ms > 0
    # The picture went up to the CDN once, however many frames used it.
    uploads = server.journal.entries(method="POST", path_contains="/_cdn/files/upload")
    assert len(uploads) == 1


def test_rapid_changes_coalesce_and_the_last_frame_matches(
    client: SyncClient, fox: Fox, until: Until
) -> None:
    strength = FloatSlider(0.0, min=0.0, max=1.0, step=0.01)
    widget = fox({"strength": strength}, seed=7)
    assert widget.wait_for_frame(10)
    values = [round(i / 100, 2) for i in range(1, 101)]
    for value in values:
        strength.value = value
    until(lambda: shows(widget, strength=1.0), what="the frame for the final value")
    stats = widget.stats
    assert stats["changes"] == 1 + len(values)
    assert stats["sent"] < stats["changes"]  # latest wins: intermediate values were dropped
    assert stats["sent"] == stats["frames"]  # one in flight, one answer each
    inputs = {"image": widget.base["image"], "prompt": "a fox", "seed": 7, "strength": 1.0}
    assert widget.frame == direct(client, I2I, inputs)
    assert widget.last_frame is not None
    assert widget.last_frame.inputs == {"prompt": "a fox", "seed": 7, "strength": 1.0}


def test_a_live_view_sends_one_state_message_per_frame(fox: Fox, until: Until) -> None:
    # In JupyterLab every extra small comm message can stall behind a delayed ACK (its
    # websocket runs with Nagle on): once live, an exchange must not flip the view to busy.
    strength = FloatSlider(0.0, min=0.0, max=1.0, step=0.01)
    widget = fox({"strength": strength}, seed=7)
    assert widget.wait_for_frame(10)
    until(lambda: widget.driver.report.status == "live", what="the first exchange's end")
    sent: list[set[str]] = []
    send_state = widget.view.send_state

    def record(key: Any = None) -> None:
        keys = set(key) if isinstance(key, (set, list, tuple)) else {str(key)}
        if keys:  # an empty hold_sync sends nothing
            sent.append(keys)
        send_state(key)

    widget.view.send_state = record
    for value in (0.1, 0.2, 0.3):
        strength.value = value
        until(lambda value=value: shows(widget, strength=value), what=f"the frame for {value}")
    assert widget.status == "live"
    frames = [keys for keys in sent if "frame" in keys]
    assert len(frames) == 3
    assert len(sent) == len(frames), sent  # no status-only (busy) message between frames
    assert all("status" not in keys for keys in sent)


@pytest.fixture
def flaky_endpoint(server: LocalServer) -> Iterator[str]:
    """image-to-image that fails for strength above 0.9 (an app error, x-fal-error)."""

    def realtime(arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        if arguments.get("strength", 0) > 0.9:
            raise ValueError("strength too high for this test")
        return image_to_image_realtime(arguments, ctx)

    server.registry.add(Endpoint("test/realtime-widget-flaky", realtime=realtime))
    yield "test/realtime-widget-flaky"
    server.registry.remove("test/realtime-widget-flaky")


def test_app_errors_show_and_the_next_change_recovers(
    server: LocalServer,
    flaky_endpoint: str,
    fox: Fox,
    until: Until,
) -> None:
    strength = FloatSlider(0.5, min=0.0, max=1.0, step=0.05)
    widget = fox({"strength": strength}, flaky_endpoint)
    assert widget.wait_for_frame(10)
    strength.value = 1.0
    until(lambda: widget.status == "error", what="the error state")
    assert "INTERNAL_ERROR" in widget.error
    assert "strength too high" in widget.view.error
    assert shows(widget, strength=0.5)  # the last good frame stays up
    strength.value = 0.25
    until(lambda: shows(widget, strength=0.25), what="recovery on the next change")
    assert widget.status == "live"
    assert widget.error == ""
    assert widget.stats["errors"] == 1
    # The server closed the session after the error (as fal's SDK does); the change went on
    # a new one.
    assert len(server.journal.entries(path_contains=f"{flaky_endpoint}/realtime")) == 2


def _refuse_tokens(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Every token counts as expired: the socket is refused with {"status":"error",...}."""
    monkeypatch.setattr(server.state.tokens, "check", lambda *args, **kwargs: False)
    return monkeypatch.undo


def _fail_token_fetch(server: LocalServer, _monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    server.faults.add("status=503;ingress", path_contains="/_rest/tokens")
    return server.faults.clear


@pytest.mark.parametrize(
    ("fault", "shown"),
    [(_refuse_tokens, "Unauthorized"), (_fail_token_fetch, "503")],
    ids=["refused token", "failed token fetch"],
)
def test_a_failed_connection_shows_then_recovers_on_the_next_change(
    server: LocalServer,
    fox: Fox,
    until: Until,
    monkeypatch: pytest.MonkeyPatch,
    fault: Callable[[LocalServer, pytest.MonkeyPatch], Callable[[], None]],
    shown: str,
) -> None:
    heal = fault(server, monkeypatch)
    seed = IntSlider(1, min=0, max=10)
    widget = fox({"seed": seed})
    until(lambda: widget.status == "error", what="the failed connection")
    assert shown in widget.error
    assert server.key not in widget.error
    heal()
    seed.value = 2
    until(lambda: shows(widget, seed=2), what="a frame once the server answers again")
    assert widget.status == "live"
    assert widget.error == ""


def test_idle_timeout_shows_then_reconnects_on_change(
    server: LocalServer,
    fox: Fox,
    until: Until,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server.state, "realtime_idle_timeout", 0.3)
    seed = IntSlider(1, min=0, max=10)
    widget = fox({"seed": seed})
    assert widget.wait_for_frame(10)
    until(lambda: "idle session" in widget.error, what="the idle timeout notice")
    assert widget.status == "idle"
    seed.value = 5
    until(lambda: shows(widget, seed=5), what="a frame on a new session")
    assert widget.error == ""
    sockets = server.journal.entries(path_contains="/realtime")
    assert len(sockets) == 2


def test_changes_from_many_threads(
    fox: Fox,
    until: Until,
) -> None:
    # Widget callbacks may run on ipykernel 7 subshell threads, concurrently with each other.
    seed = IntSlider(0, min=0, max=1000)
    widget = fox({"seed": seed})
    assert widget.wait_for_frame(10)
    start = threading.Barrier(4)

    def drag(offset: int) -> None:
        start.wait()
        for i in range(50):
            widget._on_change({"new": offset + i})  # as an observer on another thread would

    threads = [threading.Thread(target=drag, args=(k * 100,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seed.value = 999
    until(lambda: shows(widget, seed=999), what="the final value's frame")
    assert widget.stats["changes"] == 1 + 200 + 1
    assert widget.stats["sent"] < widget.stats["changes"]


def test_close_closes_the_connection_and_leaves_a_static_picture(
    server: LocalServer, fox: Fox, until: Until
) -> None:
    strength = FloatSlider(0.4, min=0.0, max=1.0, step=0.1)
    widget = fox({"strength": strength})  # closed by the test; the fixture's close is a no-op
    assert widget.wait_for_frame(10)
    live = widget._repr_mimebundle_()
    assert live is not None
    assert "application/vnd.jupyter.widget-view+json" in live
    assert base64.b64decode(live["image/jpeg"]) == widget.frame
    assert live["text/plain"] == (
        "Realtime local/image-to-image (strength=0.4): last frame 96x64 image/jpeg"
    )
    updates: list[dict[str, Any]] = []

    class Handle:
        def update(self, bundle: dict[str, Any], raw: bool = False) -> None:
            updates.append(bundle)

    widget._handle = Handle()
    assert widget.driver._connection is not None
    socket = widget.driver._connection.connection
    assert socket.is_open
    sent = widget.stats["sent"]
    widget.close()
    assert widget.status == "closed"
    assert widget.driver._connection is None
    assert not socket.is_open
    assert updates[0].keys() == {"text/plain", "image/jpeg"}  # no dead widget in the output
    strength.value = 0.8  # no longer bound
    assert widget.stats["sent"] == sent
    static = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" not in static


def test_bad_controls_are_refused(client: SyncClient) -> None:
    with pytest.raises(TypeError, match="strength"):
        Realtime(I2I, controls={"strength": 0.5}, client=client)


class FakeHandle:
    """Stands in for IPython's DisplayHandle: records each re-emitted bundle."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []

    def update(self, bundle: dict[str, Any], raw: bool = False) -> None:
        assert raw
        self.updates.append(bundle)


def loop_drained() -> None:
    """Every callback queued on falnb's loop before this call has run."""
    _runtime.submit(asyncio.sleep(0)).result(timeout=5)


def displayed(widget: Realtime) -> FakeHandle:
    """What _ipython_display_ leaves behind, with a fake handle instead of IPython's."""
    handle = FakeHandle()
    widget._emitted = widget.last_frame
    widget._handle = handle
    return handle


def settling(fox: Fox, *, settle: float) -> tuple[Realtime, FloatSlider]:
    """A strength-slider widget with a short settle delay."""
    strength = FloatSlider(0.2, min=0.0, max=1.0, step=0.1)
    return fox({"strength": strength}, settle=settle), strength


def test_settle_timer_fires_once_after_quiet_and_waits_while_held(until: Until) -> None:
    fired: list[float] = []
    timer = SettleTimer(0.05, lambda: fired.append(time.monotonic()))
    for _ in range(5):
        timer.poke()
    until(lambda: fired, what="the settle action")
    loop_drained()
    assert len(fired) == 1
    assert not timer.armed
    timer.hold()
    timer.poke()
    loop_drained()
    assert not timer.armed  # a hand on the controls: no countdown at all
    timer.release()
    loop_drained()
    assert timer.armed
    until(lambda: len(fired) == 2, what="the action once released")
    timer.poke()
    timer.cancel()
    loop_drained()
    assert not timer.armed
    assert len(fired) == 2


def test_settled_output_carries_the_last_frame(fox: Fox, until: Until) -> None:
    widget, strength = settling(fox, settle=0.2)
    assert widget.wait_for_frame(10)
    handle = displayed(widget)
    first = widget.frame
    for value in (0.3, 0.5, 0.7):
        strength.value = value
    until(
        lambda: handle.updates and "0.7" in handle.updates[-1]["text/plain"],
        what="the settle update for the final value",
    )
    bundle = handle.updates[-1]
    emitted = len(handle.updates)
    assert shows(widget, strength=0.7)
    assert base64.b64decode(bundle["image/jpeg"]) == widget.frame != first
    assert bundle["text/plain"] == (
        "Realtime local/image-to-image (strength=0.7): last frame 96x64 image/jpeg"
    )
    assert "application/vnd.jupyter.widget-view+json" not in bundle  # the still, not the view
    # Settled again on the same frame: nothing new to emit, so no re-render.
    widget._settle.poke()  # type: ignore[union-attr]
    until(lambda: not widget._settle.armed, what="the timer to run out")  # type: ignore[union-attr]
    loop_drained()
    assert len(handle.updates) == emitted


def test_no_settle_update_while_a_hand_is_on_the_controls(fox: Fox, until: Until) -> None:
    widget, strength = settling(fox, settle=0.1)
    assert widget.wait_for_frame(10)
    handle = displayed(widget)
    widget.view.interacting = True  # as the browser reports a pointer held down mid-drag
    strength.value = 0.6
    until(lambda: shows(widget, strength=0.6), what="the frame for 0.6")
    loop_drained()
    assert not widget._settle.armed  # type: ignore[union-attr]
    assert handle.updates == []
    widget.view.interacting = False  # the pointer is released
    until(lambda: handle.updates, what="the settle update after the drag")
    assert base64.b64decode(handle.updates[0]["image/jpeg"]) == widget.frame
    assert "strength=0.6" in handle.updates[0]["text/plain"]


def test_closing_cancels_the_settle_update(fox: Fox, until: Until) -> None:
    widget, _ = settling(fox, settle=0.1)
    assert widget.wait_for_frame(10)
    handle = displayed(widget)
    widget.close()
    loop_drained()
    assert widget._settle is not None
    assert not widget._settle.armed
    assert [bundle.keys() for bundle in handle.updates] == [{"text/plain", "image/jpeg"}]

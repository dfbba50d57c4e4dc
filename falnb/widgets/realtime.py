"""A realtime widget: ipywidgets controls bound to a realtime model connection.

Drag a slider and the model answers: each change sends the controls' current values (plus
the fixed ``base`` inputs) over one realtime connection, latest wins, and the newest output
image shows above the controls with the connection state, frames per second and the last
round-trip latency::

    from ipywidgets import FloatSlider, Text
    from falnb.widgets import Realtime

    Realtime(
        "local/image-to-image",
        base={"image_url": img, "seed": 3},
        controls={"strength": FloatSlider(0.5, min=0, max=1, step=0.05), "prompt": Text("a fox")},
    )

Controls given as ipywidgets controls are bound from Python, as above. Controls given as
``ipywidgets.interact``-style abbreviations (``(min, max[, step])`` a slider, ``"text"`` a text
box, ``True`` a checkbox, ``[a, b]`` a dropdown) are drawn by the widget's own JS, so the
widget is a complete anywidget without ipywidgets' front end (``Realtime(...).view`` is what
marimo and other anywidget hosts display); the Python side hears their values.

Transport. With ``transport="browser"`` the widget's JS opens the realtime socket itself: it
asks the kernel (a custom message, never a synced or saved trait) for a token that opens this
one app and expires soon (``POST /tokens/``; the key stays in the kernel), encodes inputs with
msgpack, sends latest-wins, draws frames, and asks for a fresh token before expiry and after an
``Unauthorized``. Moves of its drawn controls go straight to the socket. With
``transport="kernel"`` every input and frame crosses the kernel (``RealtimeDriver``).
``"auto"`` (the default) takes the first frame through the kernel (so a notebook run without a
browser still saves a picture), then goes browser-direct when the page can reach the socket's
URL (fal's cloud; the embedded server when the browser runs on the kernel's machine), and
falls back to the kernel path when the direct socket fails. The view says which is in use.

Displayed, the widget is two outputs: the live view, and after it a still (the last frame and
one text line) that the saved notebook keeps. Front ends that render the live view hide the
still while it shows (realtime.css); a reopened notebook whose kernel no longer has the widget,
GitHub and nbconvert show the still. Once frames settle (``settle`` seconds without a new one,
and no hand on the controls) the still is updated with the current frame. ``close()`` closes
the connection and leaves the still (and the text line in place of the live view).
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets
import traitlets

from falnb import _runtime
from falnb._values import sniff_image_type
from falnb.client import AsyncClient, SyncClient
from falnb.widgets._realtime_driver import Frame, RealtimeDriver, Report, describe_failure
from falnb.widgets._realtime_spec import TRANSPORTS, control_for, parse_realtime_line

__all__ = ["TRANSPORTS", "Realtime", "RealtimeView", "SettleTimer", "from_magic"]

logger = logging.getLogger("falnb.widgets")

_STATIC = Path(__file__).resolve().parent.parent / "static"
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: Lifetime of a token the browser connects with; the JS asks for a new one at 90 %.
TOKEN_EXPIRATION = 120
#: A browser asking again within this many seconds gets the token it has (rate limit).
_MINT_INTERVAL = 1.0


class RealtimeView(anywidget.AnyWidget):
    """The live picture: latest frame (binary, never base64), state, fps, latency, error."""

    _esm = _STATIC / "realtime.js"
    _css = _STATIC / "realtime.css"

    endpoint = traitlets.Unicode("").tag(sync=True)
    frame = traitlets.Bytes(b"").tag(sync=True)
    frame_type = traitlets.Unicode("image/jpeg").tag(sync=True)
    frame_label = traitlets.Unicode("").tag(sync=True)
    frames = traitlets.Int(0).tag(sync=True)
    status = traitlets.Unicode("idle").tag(sync=True)
    fps = traitlets.Float(0.0).tag(sync=True)
    latency_ms = traitlets.Float(0.0).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    #: Set by the browser while a pointer is held down on the widget or a text box in it is
    #: being edited: re-emitting the output re-renders the view, so it waits for this to clear.
    interacting = traitlets.Bool(default_value=False).tag(sync=True)
    #: The transport asked for (auto, browser, kernel) and the one in use (set by the JS:
    #: browser once its own socket is open, kernel when it falls back; "" before either).
    transport = traitlets.Unicode("auto").tag(sync=True)
    transport_in_use = traitlets.Unicode("").tag(sync=True)
    #: The controls the JS draws (name, kind and bounds), and every control's current value:
    #: the JS writes the values of the controls it draws, Python those of ipywidgets controls.
    #: No echo: browser-direct the page tells the kernel where a control rests while the hand
    #: may have moved on, and ipywidgets' echo of that older value would pull the control back.
    controls_spec = traitlets.List(traitlets.Dict()).tag(sync=True)
    values = traitlets.Dict().tag(sync=True, echo_update=False)

    def __repr__(self) -> str:
        return f"RealtimeView({self.endpoint!r}, {self.status}, frames={self.frames})"


def _image_bytes(value: Any) -> Any:
    """PIL images and paths become bytes once, at construction; other values pass as is."""
    if isinstance(value, Path):
        return value.read_bytes()
    if hasattr(value, "save") and hasattr(value, "mode") and hasattr(value, "size"):
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return buffer.getvalue()
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value


class SettleTimer:
    """Runs ``action`` on falnb's loop once nothing has happened for ``delay`` seconds.

    ``poke()`` restarts the countdown (a frame or a change arrived); ``hold()`` suspends it
    while a hand is on the controls and ``release()`` restarts it; ``cancel()`` stops it for
    good. All are thread-safe; ``action`` runs on falnb's loop thread and must not block.
    """

    def __init__(self, delay: float, action: Callable[[], None]) -> None:
        self.delay = delay
        self.action = action
        self._timer: asyncio.TimerHandle | None = None
        self._held = False
        self._cancelled = False

    def poke(self) -> None:
        """Start the countdown again from now."""
        _runtime.call_soon(self._arm)

    def hold(self) -> None:
        """Suspend the timer until :meth:`release`."""
        _runtime.call_soon(self._set_held, True)  # noqa: FBT003 - a callback argument

    def release(self) -> None:
        """Resume the timer: the countdown starts again from now."""
        _runtime.call_soon(self._set_held, False)  # noqa: FBT003 - a callback argument

    def cancel(self) -> None:
        """Stop for good: ``action`` never runs after this."""
        self._cancelled = True
        _runtime.call_soon(self._disarm)

    @property
    def armed(self) -> bool:
        return self._timer is not None

    def _set_held(self, held: bool) -> None:
        self._held = held
        self._arm()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        self._disarm()
        if not self._held and not self._cancelled:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._cancelled or self._held:
            return
        try:
            self.action()
        except Exception:
            logger.debug("realtime settle action failed", exc_info=True)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _spec(name: str, control: ipywidgets.ValueWidget) -> dict[str, Any]:
    """How the JS draws ``control`` (one of the kinds ``control_for`` makes)."""
    spec: dict[str, Any] = {"name": name, "label": control.description or name}
    if isinstance(control, (ipywidgets.IntSlider, ipywidgets.FloatSlider)):
        integer = isinstance(control, ipywidgets.IntSlider)
        spec.update(kind="slider", min=control.min, max=control.max, step=control.step)
        spec["integer"] = integer
    elif isinstance(control, ipywidgets.Checkbox):
        spec["kind"] = "checkbox"
    elif isinstance(control, ipywidgets.Dropdown):
        spec["kind"] = "dropdown"
        pairs = zip(control._options_labels, control._options_values, strict=True)
        spec["options"] = [[str(label), value] for label, value in pairs]
    else:
        spec["kind"] = "text"
    return spec


class Realtime(ipywidgets.VBox):  # type: ignore[misc]
    """Controls bound to a realtime endpoint, with the latest output frame above them.

    ``controls`` maps input names to ipywidgets controls (their ``.value`` is read; they show
    below the picture) or to interact-style abbreviations, which the widget's JS draws (see
    the module docstring); ``controls[name].value`` reads either kind. ``base`` holds the other
    inputs (PIL images, paths and bytes are sent as image bytes, or uploaded once for inputs
    named ``*_url``). ``client`` is a falnb Sync/AsyncClient (the default client when None).
    ``throttle`` is the least time between two sends in seconds; at most one input is ever in
    flight, and the newest waiting input goes next. ``settle`` is how long frames must stay
    quiet (in seconds) before the displayed still is updated with the latest frame, so a saved
    notebook shows the last picture (None: never). ``transport`` is auto, browser or kernel.
    """

    def __init__(
        self,
        endpoint: str,
        base: Mapping[str, Any] | None = None,
        controls: Mapping[str, Any] | None = None,
        *,
        client: SyncClient | AsyncClient | None = None,
        throttle: float = 0.0,
        timeout: float = 30.0,
        first_frame_timeout: float = 10.0,
        settle: float | None = 1.5,
        transport: str = "auto",
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport={transport!r} is not one of {', '.join(TRANSPORTS)}")
        bound: dict[str, ipywidgets.ValueWidget] = {}
        drawn: dict[str, ipywidgets.ValueWidget] = {}
        for name, control in dict(controls or {}).items():
            if isinstance(control, ipywidgets.Widget) and hasattr(control, "value"):
                bound[name] = control
                continue
            made = control_for(name, control)
            if made is None:
                raise TypeError(
                    f"control {name!r} must be an ipywidgets control with a .value or an "
                    "abbreviation: (min, max[, step]), 'text', True/False or [choices]"
                )
            drawn[name] = made
        self.endpoint = endpoint
        self.base = {name: _image_bytes(value) for name, value in (base or {}).items()}
        self.controls: dict[str, ipywidgets.ValueWidget] = {**bound, **drawn}
        self.first_frame_timeout = first_frame_timeout
        self.throttle = max(0.0, throttle)
        self.view = RealtimeView(
            endpoint=endpoint,
            transport=transport,
            transport_in_use="kernel" if transport == "kernel" else "",
            controls_spec=[_spec(name, control) for name, control in drawn.items()],
        )
        box = ipywidgets.VBox(list(bound.values()))
        box.add_class("falnb-realtime-controls")
        super().__init__([self.view, box])
        self.add_class("falnb-realtime")
        self._box = box
        self._bound = bound
        self._lock = threading.Lock()
        self._quiet = threading.local()  # set while values from the browser are applied
        self._last_frame: Frame | None = None
        self._first_frame = threading.Event()
        self._live: Any = None  # the display of the live view
        self._handle: Any = None  # the display of the still saved beside it
        self._emitted: Frame | None = None  # the frame in the still as last emitted
        self._closed = False
        self._minted: tuple[float, str] | None = None  # (when, token) of the last mint
        self._settle = SettleTimer(settle, self._settled) if settle is not None else None
        self.view.observe(self._on_interacting, names="interacting")
        self.view.observe(self._on_values, names="values")
        self.view.observe(self._on_transport, names="transport_in_use")
        self.view.on_msg(self._on_message)
        if client is None:
            import falnb  # the default client, only when none is given

            client = falnb.default_async_client()
        async_client = client.async_client if isinstance(client, SyncClient) else client
        _ = async_client.target  # resolve the default (maybe start the embedded server) here
        self.driver = RealtimeDriver(
            async_client, endpoint, self._on_report, throttle=throttle, timeout=timeout
        )
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self._publish_values()
        if transport != "browser":
            self.refresh()  # the first frame comes through the kernel: the still gets it
        else:
            self._first_frame.set()  # the browser asks for the first frame itself

    @property
    def direct(self) -> bool:
        """Whether the browser's own socket carries inputs and frames now."""
        return "browser" in (self.view.transport, self.view.transport_in_use)

    # -- inputs (any thread) -----------------------------------------------------------------

    def inputs(self) -> dict[str, Any]:
        """The inputs a frame is asked for now: ``base`` overlaid with the controls' values."""
        values = dict(self.base)
        for name, control in self.controls.items():
            values[name] = _image_bytes(control.value)
        return values

    def _on_change(self, change: Any = None) -> None:
        # May run on an ipykernel 7 subshell thread: read current values, hand off, return.
        if self._closed or getattr(self._quiet, "on", False):
            return
        owner = change.get("owner") if isinstance(change, dict) else None
        if self.direct or owner not in self._bound.values():
            # The browser draws this control, or sends browser-direct: it must hear the value.
            # (A bound control on the kernel path needs no message: each one can wait for a
            # delayed ACK on JupyterLab's websocket.)
            self._publish_values()
        if not self.direct:
            self._request()

    def _request(self) -> None:
        self.driver.request(self.inputs())
        if self._settle is not None:
            self._settle.poke()  # a frame is coming: not settled yet

    def refresh(self) -> None:
        """Ask for a frame for the current values (as a change of any control does)."""
        if not self._closed and not self.direct:
            self._request()

    def _publish_values(self) -> None:
        values = {name: _image_bytes(c.value) for name, c in self.controls.items()}
        if values != self.view.values:
            self._quiet.on = True  # our own write, not the browser's: _on_values ignores it
            try:
                self.view.values = values
            finally:
                self._quiet.on = False

    def _on_values(self, change: Any) -> None:
        # Comm thread: the browser's drawn controls moved (browser-direct: once they rest).
        if getattr(self._quiet, "on", False):
            return
        self._quiet.on = True
        try:
            for name, value in change["new"].items():
                control = self.controls.get(name)
                if control is not None and control.value != value:
                    control.value = value
        except traitlets.TraitError:
            logger.debug("a value from the browser does not fit its control", exc_info=True)
        finally:
            self._quiet.on = False
        if not self.direct and not self._closed:
            self._request()

    def _on_transport(self, change: Any) -> None:
        # The JS fell back to the kernel path: frames come from here again, from now on.
        if change["new"] == "kernel" and change["old"] == "browser":
            self.refresh()
        elif change["new"] == "browser":
            self._publish_values()  # bound controls' values the kernel path kept to itself

    # -- the browser's own socket: tokens, fixed inputs, its frames (comm thread) --------------

    def _on_message(self, _view: Any, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, dict) or self._closed:
            return
        kind = content.get("type")
        if kind in ("session", "token"):
            _runtime.submit(self._answer(kind, refused=bool(content.get("refused"))))
        elif kind == "frame" and buffers:
            self._on_browser_frame(content, bytes(buffers[0]))

    async def _answer(self, kind: str, *, refused: bool = False) -> None:
        """Reply with a token (and for a session the URL and the fixed inputs), or why not.

        ``refused``: the server refused the browser's last token (Unauthorized), so a new one
        is minted even within the rate limit (the JS gives up after two refusals in a row).
        """
        try:
            token = await self._token(fresh=refused)
            reply: dict[str, Any] = {"type": kind, "token": token, "expires_in": TOKEN_EXPIRATION}
            buffers: list[bytes] = []
            if kind == "session":
                base = await self.driver.prepare(self.base)
                reply["url"] = self.driver.socket_url()
                reply["base"] = {k: v for k, v in base.items() if not isinstance(v, bytes)}
                reply["binary"] = [k for k, v in base.items() if isinstance(v, bytes)]
                buffers = [base[k] for k in reply["binary"]]
                reply["throttle_ms"] = round(self.throttle * 1000)
        except Exception as exc:  # noqa: BLE001 - any failure is one line in the view
            reply, buffers = {"type": kind, "error": describe_failure(exc)}, []
        if not self._closed:
            self.view.send(reply, buffers=buffers)

    async def _token(self, *, fresh: bool) -> str:
        now = time.monotonic()
        minted = self._minted
        if not fresh and minted is not None and now - minted[0] < _MINT_INTERVAL:
            return minted[1]
        token = await self.driver.mint_token(TOKEN_EXPIRATION)
        self._minted = (now, token)
        return token

    def _on_browser_frame(self, content: dict[str, Any], image: bytes) -> None:
        """The browser's latest frame, once its frames rest: the still and the summary use it."""
        inputs = content.get("inputs")
        width, height = content.get("width"), content.get("height")
        frame = Frame(
            image=image,
            content_type=sniff_image_type(image, str(content.get("content_type") or "")),
            inputs=dict(inputs) if isinstance(inputs, dict) else {},
            latency=float(content.get("latency_ms") or 0.0) / 1000.0,
            width=width if isinstance(width, int) else None,
            height=height if isinstance(height, int) else None,
        )
        with self._lock:
            self._last_frame = frame
        self._first_frame.set()
        if self._settle is not None:
            self._settle.poke()

    # -- reports (falnb's loop thread) -------------------------------------------------------

    def _on_report(self, report: Report) -> None:
        if self.direct and report.status != "closed":
            return  # the browser shows its own socket's state; this one idles
        view = self.view
        frame = report.frame
        with self._lock:
            new_frame = frame is not None and frame is not self._last_frame
            if new_frame:
                self._last_frame = frame
        with view.hold_sync():
            view.status = self._shown_status(report.status)
            view.error = report.error
            view.fps = round(report.fps, 1)
            view.latency_ms = round(report.latency * 1000.0, 1)
            if new_frame and frame is not None:
                view.frame_type = frame.content_type
                view.frame_label = self._label(frame.inputs)
                view.frame = frame.image
                view.frames = report.frames
        if new_frame:
            self._first_frame.set()
        if report.status == "error":
            self._first_frame.set()  # an error is an answer too: don't hold the display
        if self._settle is not None and report.status != "closed":
            self._settle.poke()

    def _shown_status(self, status: str) -> str:
        # The view labels busy as live. Flipping the synced trait live -> busy -> live around
        # every exchange cost one extra comm message per frame, and on JupyterLab's websocket
        # (Nagle on, no TCP_NODELAY) each small extra message can wait for a delayed ACK, so
        # a live view stays live while the next frame is on its way.
        if status == "busy" and self.view.status == "live":
            return "live"
        return status

    # -- the saved output follows the frames once they settle (falnb's loop thread) ----------

    def _on_interacting(self, change: Any) -> None:
        # Comm thread (main or subshell): a drag or an edit started or ended in the browser.
        if self._settle is None:
            return
        if change["new"]:
            self._settle.hold()
        else:
            self._settle.release()

    def _settled(self) -> None:
        """Update the still with the latest frame, if it shows an older one.

        Only when frames are quiet and nobody is dragging or typing: the still is hidden while
        the live view shows, but a front end without that rule shows both.
        """
        frame = self.last_frame
        if self._closed or self._handle is None or frame is None or frame is self._emitted:
            return
        if self.view.interacting or self.driver.report.status in ("busy", "connecting"):
            return  # a newer frame (or the end of the drag) pokes the timer again
        self._emitted = frame
        self._handle.update(self._static_bundle(), raw=True)

    def _label(self, inputs: Mapping[str, Any]) -> str:
        names = self.controls or inputs
        return ", ".join(f"{name}={_short(inputs[name])}" for name in names if name in inputs)

    # -- state -------------------------------------------------------------------------------

    @property
    def frame(self) -> bytes:
        """The latest output image's bytes (b"" before the first frame)."""
        return self.view.frame

    @property
    def last_frame(self) -> Frame | None:
        """The latest :class:`Frame`: image bytes, content type, inputs and latency."""
        with self._lock:
            return self._last_frame

    @property
    def status(self) -> str:
        """idle, connecting, busy, live, error or closed, as the view shows it.

        Once live, the view stays live while further frames are on their way (no busy);
        ``driver.report.status`` has the exchange-by-exchange state.
        """
        return self.view.status

    @property
    def error(self) -> str:
        return self.view.error

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: ``changes`` asked for, inputs ``sent``, ``frames`` shown, ``errors``."""
        report = self.driver.report
        return {
            "changes": report.changes,
            "sent": report.sent,
            "frames": report.frames,
            "errors": report.errors,
            "fps": report.fps,
            "latency": report.latency,
        }

    def wait_for_frame(self, timeout: float | None = None) -> bool:
        """Block until the first frame (or error) arrives; True when one did."""
        return self._first_frame.wait(timeout)

    # -- output: live view plus a static fallback ---------------------------------------------

    def summary(self) -> str:
        """The stable text line saved with the notebook (no timings, no object ids)."""
        frame = self.last_frame
        # The values that produced the picture saved beside this text (else the controls').
        shown = frame.inputs if frame is not None else {}
        values = ", ".join(
            f"{name}={_short(shown[name] if name in shown else getattr(control, 'value', None))}"
            for name, control in self.controls.items()
        )
        text = f"Realtime {self.endpoint}" + (f" ({values})" if values else "")
        if frame is None:
            return text + ": no frame yet"
        size = f" {frame.width}x{frame.height}" if frame.width and frame.height else ""
        return text + f": last frame{size} {frame.content_type}"

    def _static_bundle(self) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": self.summary()}
        frame = self.last_frame
        if frame is not None and frame.content_type in ("image/jpeg", "image/png"):
            bundle[frame.content_type] = base64.b64encode(frame.image).decode("ascii")
        return bundle

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = self._static_bundle()
        if not self._closed:
            # With no ipywidgets controls the view alone is the widget (an anywidget, which
            # needs no ipywidgets front end); else the box holding it and the controls.
            if self._bound:
                live = super()._repr_mimebundle_(**kwargs) or {}
            else:
                live = self.view._repr_mimebundle_(**kwargs) or {}
                if isinstance(live, tuple):  # anywidget's is (data, metadata)
                    live = live[0]
            if _WIDGET_VIEW in live:
                bundle[_WIDGET_VIEW] = live[_WIDGET_VIEW]
        return bundle

    def _ipython_display_(self) -> None:
        # Two outputs, not one bundle: a front end picks a bundle's widget view whenever it
        # has one, and a reopened notebook whose kernel lacks the widget then shows "Error
        # displaying widget" instead of the picture. Wait briefly for the first frame so the
        # still carries a picture.
        from IPython.display import display  # only in IPython

        self.wait_for_frame(self.first_frame_timeout)
        self._emitted = self.last_frame
        live = self._repr_mimebundle_() or {}
        self._live = display(  # type: ignore[no-untyped-call]
            {
                "text/plain": f"Realtime {self.endpoint}: live view (its last frame below)",
                **{k: v for k, v in live.items() if k == _WIDGET_VIEW},
            },
            raw=True,
            display_id=True,
        )
        self._handle = display(  # type: ignore[no-untyped-call]
            self._static_bundle(), raw=True, display_id=True
        )

    def __repr__(self) -> str:
        return self.summary()

    def close(self) -> None:
        """Close the realtime connection and the view; the output keeps the last frame."""
        if getattr(self, "_closed", True):  # closed already, or never fully built
            return
        self._closed = True
        if self._settle is not None:
            self._settle.cancel()
        for control in self.controls.values():
            control.unobserve(self._on_change, names="value")
        self.driver.close()
        handle = self._handle
        if handle is not None:
            handle.update(self._static_bundle(), raw=True)
        if self._live is not None:
            self._live.update({"text/plain": self.summary()}, raw=True)
        self.view.close()
        self._box.close()
        super().close()
        # ipywidgets disables display of a closed widget; ours still shows its static picture.
        self.__dict__.pop("_repr_mimebundle_", None)


def from_magic(line: str, namespace: Mapping[str, Any]) -> Realtime:
    """The widget for ``%fal realtime <line>``.

    ``local/image-to-image strength=(0.0, 1.0, 0.05) prompt="a fox" image_url={img} seed=3``:
    tuples become sliders (as ipywidgets.interact's abbreviations), quoted strings text boxes,
    lists dropdowns, booleans checkboxes; ``{name}`` takes a value from ``namespace`` and other
    literals are fixed inputs; ``transport=`` picks how frames travel. The widget's JS draws
    the controls. Raises ValueError with a readable message for a bad line.
    """
    spec = parse_realtime_line(line, namespace)
    # The line's controls are drawn by the widget's JS: browser-direct, a move never waits on
    # the kernel, and the widget needs no ipywidgets front end.
    return Realtime(
        spec.endpoint, base=spec.base, controls=spec.abbreviations, transport=spec.transport
    )

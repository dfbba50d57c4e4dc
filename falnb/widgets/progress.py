"""Live progress of one fal request: an anywidget view, or a text line where widgets can't render.

One :class:`ProgressState` (pure data: status, queue position, step i/N, latest logs) feeds
either view. Both live in a display handle; when the request ends the handle is updated with
the final output, so a saved notebook never shows a stuck bar. Updates may come from any
thread (display handles and trait updates are thread-safe). Only the text view in a terminal,
which cannot update an output in place, prints: each log line once, the status as it changes.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from falnb import _comm_pump
from falnb._progress import (
    MAX_LOG_LINES,
    NullProgress,
    Progress,
    ProgressState,
    State,
    log_messages,
)
from falnb.client._status import Completed, InProgress, Status

if TYPE_CHECKING:
    from falnb.result import Result

__all__ = [
    "NullProgress",
    "Progress",
    "ProgressState",
    "Show",
    "TextProgress",
    "WidgetProgress",
    "make_progress",
]

_STATIC = Path(__file__).resolve().parent.parent / "static"


def _partial_text(output: dict[str, Any]) -> str:
    for key in ("text", "output", "response"):
        value = output.get(key)
        if isinstance(value, str):
            return value
    return ""


#: What a view says when a cancel was requested but the request completed first.
CANCELLED_BUT_COMPLETED = "cancel requested, but it completed first: result delivered and recorded"


class _DisplayedProgress:
    """Shared logic of the two visible views: state, cancel callback, final replacement."""

    def __init__(self, endpoint: str, *, logs: bool = True) -> None:
        self.state = ProgressState(endpoint)
        self.show_logs = logs
        self._cancel: Callable[[], object] | None = None
        self._lock = threading.Lock()
        self._handle: Any = None

    def request(self, request_id: str, cancel: Callable[[], object] | None) -> None:
        with self._lock:
            self.state.request_id = request_id
            self.state.status = (
                "IN_QUEUE" if self.state.status == "SUBMITTING" else self.state.status
            )
            self._cancel = cancel
        self._push(force=True)

    def status(self, status: Status) -> None:
        with self._lock:
            before = (self.state.status, self.state.queue_position, self.state.progress_label)
            self.state.apply(status)
            if not self.show_logs:
                self.state.logs = []
            changed = before != (
                self.state.status,
                self.state.queue_position,
                self.state.progress_label,
            )
        self._push(force=changed)

    def partial(self, output: dict[str, Any]) -> None:
        with self._lock:
            self.state.status = "IN_PROGRESS"
            text = _partial_text(output)
            if text:
                self.state.logs = text.splitlines()[-MAX_LOG_LINES:] or [text]
        self._push(force=False)

    def cancel(self) -> None:
        """Cancel the request (the Cancel button); safe from any thread, once."""
        with self._lock:
            cancel, self._cancel = self._cancel, None
        if cancel is not None:
            cancel()

    def finished(self, result: Result) -> None:
        data, metadata = result._repr_mimebundle_()
        note = CANCELLED_BUT_COMPLETED if getattr(result, "cancel_requested", False) else ""
        if note:  # the output that stays says so too, not only the live view
            data = {**data, "text/plain": f"{data.get('text/plain', '')}\n({note})"}
            if "text/html" in data:
                data["text/html"] = f"<p><em>{note}</em></p>{data['text/html']}"
        self._end("COMPLETED", note)
        self._replace(data, metadata)

    def failed(self, message: str, *, cancelled: bool = False) -> None:
        self._end("CANCELLED" if cancelled else "ERROR", message)
        # A stable line in place of the live view; the error itself is the cell's error output.
        word = "cancelled" if cancelled else "failed"
        self._replace({"text/plain": f"{self.state.endpoint}: {word}"}, {})

    def _end(self, status: State, message: str) -> None:
        with self._lock:
            self.state.status, self.state.error = status, message
            self.state.ended = time.monotonic()
            self._cancel = None

    def _push(self, *, force: bool) -> None:
        raise NotImplementedError

    def _replace(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        if self._handle is not None:
            self._handle.update(data, metadata=metadata, raw=True)


class TextProgress(_DisplayedProgress):
    """A text line: in a display handle (nbclient, nbconvert), or printed (terminal IPython).

    A kernel's front end replaces the handle's text in place. A terminal cannot, so there
    each log line is printed once and the status line again only when it changes.
    """

    #: At most this many updates a second, except on a change of state.
    RATE = 4.0

    def __init__(self, endpoint: str, *, logs: bool = True) -> None:
        super().__init__(endpoint, logs=logs)
        from falnb._environment import detect_frontend

        self._last_push = 0.0
        self._in_place = detect_frontend() not in ("terminal", "none")
        self._printed: tuple[Any, ...] | None = None
        self._unprinted: list[str] = []
        if not self._in_place:
            self._print_changes()
            return
        from IPython.display import display  # only in a notebook

        self._handle = display({"text/plain": self.state.line()}, raw=True, display_id=True)  # type: ignore[no-untyped-call]

    def status(self, status: Status) -> None:
        if not self._in_place and self.show_logs and isinstance(status, (InProgress, Completed)):
            with self._lock:
                self._unprinted.extend(log_messages(status.logs or []))
        super().status(status)

    def _push(self, *, force: bool) -> None:
        if not self._in_place:
            self._print_changes()
            return
        now = time.monotonic()
        if not force and now - self._last_push < 1 / self.RATE:
            return
        self._last_push = now
        if self._handle is not None:
            with self._lock:
                line = self.state.line()
            self._handle.update({"text/plain": line}, raw=True)

    def _print_changes(self) -> None:
        with self._lock:
            state = self.state
            shown = (state.status, state.queue_position, state.progress_label, state.error)
            lines: list[str] = []
            if shown != self._printed:
                self._printed = shown
                lines.append(state.line().split("\n", 1)[0])
            lines.extend(f"  {message}" for message in self._unprinted)
            self._unprinted.clear()
        if lines:
            print("\n".join(lines), flush=True)  # noqa: T201 - a terminal's progress is printed


#: Shows a view and returns its handle (``.update(data, metadata=..., raw=True)``): the
#: cell's output by default; ``%fal form`` shows its runs inside the form instead.
Show = Callable[[Any], Any]


def _display(widget: Any) -> Any:
    from IPython.display import display  # only in a notebook

    return display(widget, display_id=True)  # type: ignore[no-untyped-call]


class WidgetProgress(_DisplayedProgress):
    """The anywidget view (js/src/progress.js): bar, logs, elapsed time, Cancel."""

    def __init__(self, endpoint: str, *, logs: bool = True, show: Show | None = None) -> None:
        super().__init__(endpoint, logs=logs)
        self.widget = _widget_class()(endpoint=endpoint, started_at=time.time() * 1000)
        self.widget.on_msg(self._on_msg)
        # A blocking wait on the kernel's main thread still handles this view's Cancel.
        self._comm_id = str(getattr(self.widget.comm, "comm_id", ""))
        _comm_pump.watch(self._comm_id)
        self._handle = (show or _display)(self.widget)

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "cancel":
            # Widget messages arrive on a kernel (sub)shell thread, or from falnb's blocking
            # wait on the main thread (falnb._comm_pump): cancelling must block neither.
            threading.Thread(target=self.cancel, name="falnb-cancel", daemon=True).start()

    def _push(self, *, force: bool) -> None:  # noqa: ARG002 - hook/protocol signature
        with self._lock:
            state = self.state
            values = {
                "status": state.status,
                "queue_position": state.queue_position,
                "progress": state.progress,
                "progress_label": state.progress_label,
                "logs": list(state.logs),
                "error": state.error,
                "request_id": state.request_id,
                "cancellable": self._cancel is not None,
            }
            if state.ended is not None:
                values["ended_at"] = time.time() * 1000
        with self.widget.hold_sync():
            for name, value in values.items():
                setattr(self.widget, name, value)

    def _end(self, status: State, message: str) -> None:
        super()._end(status, message)
        self._push(force=True)

    def _replace(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        super()._replace(data, metadata)
        _comm_pump.unwatch(self._comm_id)
        self.widget.close()


@functools.cache
def _widget_class() -> type[Any]:
    """The anywidget model class, built on first use so importing falnb stays light."""
    import anywidget
    import traitlets

    class ProgressWidget(anywidget.AnyWidget):
        _esm = _STATIC / "progress.js"
        _css = _STATIC / "progress.css"
        endpoint = traitlets.Unicode("").tag(sync=True)
        status = traitlets.Unicode("SUBMITTING").tag(sync=True)
        queue_position = traitlets.Int(-1).tag(sync=True)
        progress = traitlets.Float(-1.0).tag(sync=True)
        progress_label = traitlets.Unicode("").tag(sync=True)
        logs = traitlets.List(traitlets.Unicode()).tag(sync=True)
        error = traitlets.Unicode("").tag(sync=True)
        request_id = traitlets.Unicode("").tag(sync=True)
        cancellable = traitlets.Bool(default_value=False).tag(sync=True)
        started_at = traitlets.Float(0.0).tag(sync=True)
        ended_at = traitlets.Float(0.0).tag(sync=True)

        def __repr__(self) -> str:
            # Stable text/plain: no object id in saved notebooks.
            return f"falnb progress: {self.endpoint}"

    return ProgressWidget


def make_progress(
    endpoint: str, *, quiet: bool = False, logs: bool = True, show: Show | None = None
) -> Progress:
    """The live view the current front end can show (see ``falnb._environment``); with
    ``show`` (a widget's own output area, where widgets render by definition) the widget."""
    from falnb._environment import progress_mode

    mode = "none" if quiet else "widget" if show is not None else progress_mode()
    if mode == "widget":
        try:
            return WidgetProgress(endpoint, logs=logs, show=show)
        except ImportError:
            mode = "text"
    if mode == "text":
        return TextProgress(endpoint, logs=logs)
    return NullProgress()

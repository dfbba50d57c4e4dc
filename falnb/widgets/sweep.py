"""A sweep's one live view: done / running / queued / failed, throughput, ETA, Cancel.

:class:`TextSweepView` is a line in a display handle (nbclient, nbconvert) or printed now and
then (a terminal); :class:`WidgetSweepView` is an anywidget (js/src/sweep.js) whose Cancel
click is handled while the cell blocks (:mod:`falnb._comm_pump`). Both end as a stable summary
line (no times: a re-run that replays the sweep leaves the same output), so a saved notebook
never shows a stuck view.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from falnb import _comm_pump

if TYPE_CHECKING:
    from falnb.result import Result
    from falnb.sweeps import Failed, SweepResults, SweepState, SweepView

__all__ = ["TextSweepView", "WidgetSweepView", "make_sweep_view"]

_STATIC = Path(__file__).resolve().parent.parent / "static"
#: Thumbnails the live view keeps (the newest); the grid shows them all afterwards.
MAX_THUMBNAILS = 64
#: Thumbnails are sent inline up to this size (bigger outputs are left to the grid).
MAX_THUMBNAIL_BYTES = 256 * 1024


class TextSweepView:
    """The sweep's line: updated in place where the front end can, else printed at most
    every ``PRINT_EVERY`` seconds (and at the end)."""

    RATE = 4.0
    PRINT_EVERY = 2.0

    def __init__(self) -> None:
        from falnb._environment import detect_frontend

        self._in_place = detect_frontend() not in ("terminal", "none")
        self._last = 0.0
        self._handle: Any = None
        self._lock = threading.Lock()

    def started(self, state: SweepState, cancel: Callable[[], object]) -> None:  # noqa: ARG002 - a text line has no button; interrupt cancels
        if self._in_place:
            from IPython.display import display  # only in a notebook

            self._handle = display({"text/plain": state.line()}, raw=True, display_id=True)  # type: ignore[no-untyped-call]
        else:
            print(state.line(), flush=True)  # noqa: T201 - a terminal's progress is printed
        self._last = time.monotonic()

    def changed(self, state: SweepState) -> None:
        now = time.monotonic()
        every = 1 / self.RATE if self._in_place else self.PRINT_EVERY
        with self._lock:
            if now - self._last < every:
                return
            self._last = now
        self._show(state.line())

    def job_finished(self, index: int, outcome: Result | Failed) -> None:  # noqa: ARG002 - a line shows no images
        return None

    def ended(self, state: SweepState, results: SweepResults) -> None:
        # A saved notebook keeps the stable line; a terminal is not saved, so it gets the times.
        self._show(_final_line(state, results) if self._in_place else state.line())

    def _show(self, line: str) -> None:
        if self._handle is not None:
            self._handle.update({"text/plain": line}, raw=True)
        elif not self._in_place:
            print(line, flush=True)  # noqa: T201 - a terminal's progress is printed


class WidgetSweepView:
    """The anywidget view (js/src/sweep.js): counts, throughput, ETA, one square per job,
    the newest images as they arrive, and Cancel (handled while the cell blocks)."""

    RATE = 4.0

    def __init__(self) -> None:
        self.widget = _widget_class()()
        self.widget.on_msg(self._on_msg)
        self._comm_id = str(getattr(self.widget.comm, "comm_id", ""))
        _comm_pump.watch(self._comm_id)
        self._cancel: Callable[[], object] | None = None
        self._lock = threading.Lock()
        self._last = 0.0
        self._thumbs: list[dict[str, Any]] = []
        self._handle: Any = None

    def started(self, state: SweepState, cancel: Callable[[], object]) -> None:
        from IPython.display import display  # only in a notebook

        self._cancel = cancel
        self.widget.title = state.title
        self._push(state, force=True)
        self._handle = display(self.widget, display_id=True)  # type: ignore[no-untyped-call]

    def changed(self, state: SweepState) -> None:
        self._push(state, force=False)

    def job_finished(self, index: int, outcome: Result | Failed) -> None:
        thumb = _thumbnail(outcome)
        if thumb is None:
            return
        with self._lock:
            self._thumbs = [*self._thumbs, {"index": index, "src": thumb}][-MAX_THUMBNAILS:]

    def ended(self, state: SweepState, results: SweepResults) -> None:
        self._cancel = None
        self._push(state, force=True)
        _comm_pump.unwatch(self._comm_id)
        if self._handle is not None:
            # A stable summary in place of the live view; the grid is the results' own view.
            self._handle.update({"text/plain": _final_line(state, results)}, raw=True)
        self.widget.close()

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "cancel":
            cancel = self._cancel
            if cancel is not None:
                # From a kernel subshell or falnb's pump on the main thread: must block neither.
                threading.Thread(target=cancel, name="falnb-sweep-cancel", daemon=True).start()

    def _push(self, state: SweepState, *, force: bool) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last < 1 / self.RATE:
                return
            self._last = now
            thumbs = list(self._thumbs)
        eta = state.eta()
        values = {
            "statuses": list(state.statuses),
            "throughput": state.throughput(),
            "eta": -1.0 if eta is None or state.ended is not None else eta,
            "elapsed": (state.ended or now) - state.started,
            "throttled": state.throttled,
            "thumbs": thumbs,
            "cancellable": self._cancel is not None and state.ended is None,
            "line": state.line(),
        }
        with self.widget.hold_sync():
            for name, value in values.items():
                setattr(self.widget, name, value)


def _final_line(state: SweepState, results: SweepResults) -> str:
    """What stays in the cell once the sweep has ended: the same on a re-run that replays it
    (no throughput, no times), so a saved notebook diffs clean."""
    return f"{state.title} · {results.summary()}"


def _thumbnail(outcome: Result | Failed) -> str | None:
    """The first image of a result as a data URI (small ones only), for the live view."""
    from falnb._values import data_uri

    files = getattr(outcome, "files", None) or []
    for file in files:
        if file.kind == "image" and len(file.data) <= MAX_THUMBNAIL_BYTES:
            return data_uri(file.data, file.content_type)
    return None


@functools.cache
def _widget_class() -> type[Any]:
    """The anywidget model class, built on first use so importing falnb stays light."""
    import anywidget
    import traitlets

    class SweepWidget(anywidget.AnyWidget):
        _esm = _STATIC / "sweep.js"
        _css = _STATIC / "sweep.css"
        title = traitlets.Unicode("").tag(sync=True)
        statuses = traitlets.List(traitlets.Unicode()).tag(sync=True)
        throughput = traitlets.Float(0.0).tag(sync=True)
        eta = traitlets.Float(-1.0).tag(sync=True)
        elapsed = traitlets.Float(0.0).tag(sync=True)
        throttled = traitlets.Int(0).tag(sync=True)
        thumbs = traitlets.List(traitlets.Dict()).tag(sync=True)
        cancellable = traitlets.Bool(default_value=False).tag(sync=True)
        line = traitlets.Unicode("").tag(sync=True)

        def __repr__(self) -> str:
            return f"falnb sweep: {self.title}"  # stable text/plain: no object id

    return SweepWidget


def make_sweep_view(*, quiet: bool = False) -> SweepView:
    """The sweep view the current front end can show (see ``falnb._environment``)."""
    from falnb._environment import progress_mode
    from falnb.sweeps import NullSweepView

    mode = "none" if quiet else progress_mode()
    if mode == "widget":
        try:
            return WidgetSweepView()
        except ImportError:
            mode = "text"
    if mode == "text":
        return TextSweepView()
    return NullSweepView()

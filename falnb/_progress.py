"""What a live progress view shows, below both the session and the views.

:class:`ProgressState` is pure data (status, queue position, step i/N, latest logs) folded
from queue statuses; :class:`Progress` is what :class:`falnb.session.Session` tells a view,
and :class:`NullProgress` the view that shows nothing. The views themselves (an anywidget, a
text line) are :mod:`falnb.widgets.progress`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from falnb.client._status import Completed, InProgress, Queued, Reconnecting, Status

if TYPE_CHECKING:
    from falnb.result import Result

__all__ = ["MAX_LOG_LINES", "NullProgress", "Progress", "ProgressState", "State", "log_messages"]

_STEP = re.compile(r"\b(\d+)\s*/\s*(\d+)\b")
MAX_LOG_LINES = 5
State = Literal[
    "SUBMITTING", "IN_QUEUE", "IN_PROGRESS", "RECONNECTING", "COMPLETED", "CANCELLED", "ERROR"
]


@dataclass
class ProgressState:
    """What a progress view shows; :meth:`apply` folds in one queue status."""

    endpoint: str
    status: State = "SUBMITTING"
    queue_position: int = -1
    progress: float = -1.0
    progress_label: str = ""
    logs: list[str] = field(default_factory=list)
    error: str = ""
    request_id: str = ""
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    def apply(self, status: Status) -> None:
        if isinstance(status, Reconnecting):
            self.status = "RECONNECTING"
            self.error = f"lost the server {status.seconds:.0f} s ago ({status.reason}), retrying"
            return
        if self.status == "RECONNECTING":
            self.error = ""  # back in touch: the next state replaces the notice
        if isinstance(status, Queued):
            self.status, self.queue_position = "IN_QUEUE", status.position
            return
        if isinstance(status, (InProgress, Completed)):
            self.add_logs(status.logs or [])
        if isinstance(status, InProgress):
            self.status = "IN_PROGRESS"
        elif isinstance(status, Completed):
            self.status = "COMPLETED" if not status.error else "ERROR"
            self.error = status.error or ""
            if status.error_type == "client_cancelled":
                self.status, self.error = "CANCELLED", "cancelled"

    def add_logs(self, logs: list[dict[str, Any]]) -> None:
        for message in log_messages(logs):
            step = _STEP.search(message)
            if step and int(step[2]) > 0:
                done, total = int(step[1]), int(step[2])
                self.progress = min(1.0, done / total)
                self.progress_label = f"step {done}/{total}"
            self.logs = [*self.logs, message][-MAX_LOG_LINES:]

    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def line(self) -> str:
        """One text line (plus the latest logs) for terminals and nbclient."""
        label = {
            "SUBMITTING": "submitting",
            "IN_QUEUE": "in queue",
            "IN_PROGRESS": "running",
            "RECONNECTING": "reconnecting",
            "COMPLETED": "done",
            "CANCELLED": "cancelled",
            "ERROR": "failed",
        }[self.status]
        parts = [self.endpoint, label]
        if self.status == "IN_QUEUE" and self.queue_position >= 0:
            parts.append(f"queue position {self.queue_position}")
        if self.progress >= 0:
            filled = round(self.progress * 20)
            parts.append(f"[{'#' * filled}{'.' * (20 - filled)}] {self.progress_label}")
        if self.error and self.status != "CANCELLED":
            parts.append(self.error)
        parts.append(f"{self.elapsed():.1f} s")
        lines = [" · ".join(parts)]
        lines.extend(f"  {log}" for log in self.logs[-3:])
        return "\n".join(lines)


def log_messages(logs: list[dict[str, Any]]) -> list[str]:
    """The non-empty messages of fal log entries, stripped."""
    messages = (str(entry.get("message", "")).strip() for entry in logs)
    return [message for message in messages if message]


class Progress(Protocol):
    """What :class:`falnb.session.Session` tells a progress view."""

    def request(self, request_id: str, cancel: Callable[[], object] | None) -> None: ...
    def status(self, status: Status) -> None: ...
    def partial(self, output: dict[str, Any]) -> None: ...
    def finished(self, result: Result) -> None: ...
    def failed(self, message: str, *, cancelled: bool = False) -> None: ...


class NullProgress:
    """No live view (``--quiet``, or no notebook)."""

    def request(self, request_id: str, cancel: Callable[[], object] | None) -> None:  # noqa: ARG002 - hook/protocol signature
        return None

    def status(self, status: Status) -> None:  # noqa: ARG002 - hook/protocol signature
        return None

    def partial(self, output: dict[str, Any]) -> None:  # noqa: ARG002 - hook/protocol signature
        return None

    def finished(self, result: Result) -> None:  # noqa: ARG002 - hook/protocol signature
        return None

    def failed(self, message: str, *, cancelled: bool = False) -> None:  # noqa: ARG002 - hook/protocol signature
        return None

"""Queue status types, named as fal_client names them, and their parsing.

A request is ``IN_QUEUE``, then ``IN_PROGRESS``, then ``COMPLETED``; fal has no FAILED state,
a failed request completes with ``error`` / ``error_type`` set (fal-protocol.md section 3.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Completed",
    "InProgress",
    "LogDeduper",
    "Queued",
    "Reconnecting",
    "Status",
    "parse_status",
]

Log = dict[str, Any]


class Status:
    """Base class of :class:`Queued`, :class:`InProgress` and :class:`Completed`."""

    __slots__ = ()


@dataclass(frozen=True)
class Queued(Status):
    """Waiting in the queue; ``position`` is 0-indexed."""

    position: int


@dataclass(frozen=True)
class InProgress(Status):
    """Running. ``logs`` holds the log lines new since the previous status (None without logs)."""

    logs: list[Log] | None = None


@dataclass(frozen=True)
class Completed(Status):
    """Done, successfully or not: ``error`` and ``error_type`` are set when the request failed."""

    logs: list[Log] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None


@dataclass(frozen=True)
class Reconnecting(Status):
    """Not one of fal's states: falnb lost the server ``seconds`` ago and is reconnecting.

    ``reason`` is the last failure, briefly (``ConnectError``, ``503``). Only falnb's own views
    ask for it; the public status iterators yield fal's three states alone.
    """

    reason: str
    seconds: float = 0.0


class LogDeduper:
    """Passes each log line once, in order.

    Polled logs are a moving window, and a reconnected status stream repeats what it sent, so
    lines are keyed on ``(timestamp, message)`` as fal's own tools do.
    """

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()

    def new(self, logs: Any) -> list[Log] | None:
        if logs is None:
            return None
        fresh: list[Log] = []
        for entry in logs if isinstance(logs, list) else []:
            if not isinstance(entry, dict):
                continue
            key = (str(entry.get("timestamp", "")), str(entry.get("message", "")))
            if key not in self._seen:
                self._seen.add(key)
                fresh.append(entry)
        return fresh


def parse_status(data: Any, logs: LogDeduper | None = None) -> Status:
    """A :class:`Status` from a status body (polled or streamed)."""
    if not isinstance(data, dict) or "status" not in data:
        raise ValueError(f"not a queue status: {str(data)[:120]!r}")
    dedupe = logs or LogDeduper()
    state = data["status"]
    if state == "IN_QUEUE":
        return Queued(position=int(data.get("queue_position") or 0))
    if state == "IN_PROGRESS":
        return InProgress(logs=dedupe.new(data.get("logs")))
    if state == "COMPLETED":
        return Completed(
            logs=dedupe.new(data.get("logs")),
            metrics=dict(data.get("metrics") or {}),
            error=data.get("error"),
            error_type=data.get("error_type"),
        )
    raise ValueError(f"unknown queue status {state!r}")

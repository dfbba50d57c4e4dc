"""Route an app function's ``print()`` and ``logging`` output to its request's status logs.

While a handler runs inside :func:`capture_logs`, a context variable names its
:class:`~falnb.local.registry.Context`. ``sys.stdout``/``sys.stderr`` are proxies (installed
only while some handler runs) that send complete lines to ``ctx.log`` when the variable is set
in the writing thread or task, and pass everything else through unchanged. A logging handler
on the root logger, present over the same span, does the same for log records.

Context variables are per thread and per asyncio task (and anyio copies them into worker
threads), so other threads' output is unaffected.

Example::

    with capture_logs(ctx):
        print("loading weights")      # -> ctx.log("loading weights", "STDOUT")
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from falnb.local.registry import Context, LogLevel

__all__ = ["capture_logs"]


class _Capture:
    """One handler run's destination, with the unfinished line of each stream."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.partial: dict[LogLevel, str] = {}
        self.lock = threading.Lock()

    def write(self, level: LogLevel, text: str) -> None:
        with self.lock:
            pending = self.partial.pop(level, "") + text
            *lines, rest = pending.split("\n")
            if rest:
                self.partial[level] = rest
        for line in lines:
            self.emit(line, level)

    def emit(self, line: str, level: LogLevel) -> None:
        line = line.rstrip("\r")
        if line.strip():
            self.ctx.log(line, level)

    def finish(self) -> None:
        with self.lock:
            partial, self.partial = self.partial, {}
        for level, line in partial.items():
            self.emit(line, level)


_current: ContextVar[_Capture | None] = ContextVar("falnb_app_capture", default=None)


class _StreamProxy:
    """Stands in for ``sys.stdout``/``sys.stderr``; captures only in a handler's context."""

    def __init__(self, wrapped: Any, level: LogLevel) -> None:
        self._wrapped = wrapped
        self._level: LogLevel = level

    def write(self, text: str) -> int:
        capture = _current.get()
        if capture is not None:
            capture.write(self._level, text)
            return len(text)
        if self._wrapped is None:  # pythonw and friends have no stdout
            return len(text)
        return int(self._wrapped.write(text))

    def flush(self) -> None:
        if _current.get() is None and self._wrapped is not None:
            self._wrapped.flush()

    def __getattr__(self, name: str) -> Any:
        # encoding, isatty, fileno, ...: whatever the real stream says.
        return getattr(self._wrapped, name)


_LEVELS: list[tuple[int, LogLevel]] = [
    (logging.ERROR, "ERROR"),
    (logging.WARNING, "WARN"),
    (logging.INFO, "INFO"),
]


def _fal_level(levelno: int) -> LogLevel:
    for threshold, level in _LEVELS:
        if levelno >= threshold:
            return level
    return "DEBUG"


class _CaptureHandler(logging.Handler):
    """Sends records made in a handler's context to its logs; acts as if absent otherwise."""

    def emit(self, record: logging.LogRecord) -> None:
        capture = _current.get()
        if capture is not None:
            try:
                message = self.format(record)
            except Exception:  # noqa: BLE001 - a bad format string is the app's bug, not ours
                self.handleError(record)
                return
            for line in message.splitlines():
                capture.emit(line, _fal_level(record.levelno))
            return
        # Being on the root logger hides logging's last resort (stderr) from other threads;
        # stand in for it when no other handler would take the record.
        last_resort = logging.lastResort
        if (
            last_resort is not None
            and record.levelno >= last_resort.level
            and not self._others_take(record)
        ):
            last_resort.handle(record)

    def _others_take(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = (
            logging.getLogger(record.name) if record.name != "root" else logging.getLogger()
        )
        while logger is not None:
            if any(h is not self and record.levelno >= h.level for h in logger.handlers):
                return True
            if not logger.propagate:
                return False
            logger = logger.parent
        return False


_install_lock = threading.Lock()
_active = 0
_installed: list[tuple[str, Any, _StreamProxy]] = []
_handler = _CaptureHandler()


def _install() -> None:
    global _active  # noqa: PLW0603 - sys.stdout is process-wide, so is its refcount
    with _install_lock:
        _active += 1
        if _active > 1:
            return
        for name, level in (("stdout", "STDOUT"), ("stderr", "STDERR")):
            original = getattr(sys, name)
            proxy = _StreamProxy(original, level)  # type: ignore[arg-type]
            setattr(sys, name, proxy)
            _installed.append((name, original, proxy))
        logging.getLogger().addHandler(_handler)


def _uninstall() -> None:
    global _active  # noqa: PLW0603
    with _install_lock:
        _active -= 1
        if _active > 0:
            return
        logging.getLogger().removeHandler(_handler)
        for name, original, proxy in _installed:
            # Someone else (pytest, ipykernel) may have swapped the stream meanwhile: keep theirs.
            if getattr(sys, name) is proxy:
                setattr(sys, name, original)
        _installed.clear()


@contextlib.contextmanager
def capture_logs(ctx: Context) -> Iterator[None]:
    """Send this thread's (or task's) ``print()`` and logging output to ``ctx.log``."""
    capture = _Capture(ctx)
    _install()
    token = _current.set(capture)
    try:
        yield
    finally:
        _current.reset(token)
        capture.finish()
        _uninstall()

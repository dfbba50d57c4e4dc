"""falnb's own widget messages, handled while a sync call blocks the kernel's main thread.

A ``%%fal`` cell blocks the kernel's main thread until its job ends, and the kernel handles
shell messages for the main shell on that thread: so a click on the progress view's Cancel
would wait for the very job it should stop. JupyterLab may send widget messages to a
subshell (ipykernel 7), but the kernel can route them back to the main shell (ipykernel 7.4
replies on the shell the comm last spoke from), and ipykernel 6 has only the main shell.

While falnb's sync front waits, it calls :func:`pump` now and then: pending main-shell
messages for the comms falnb watches (its progress views) are handled at once, on this
thread, by the kernel's own ``comm_msg`` handler; every other message (execute requests,
other widgets' messages) is handed back to the kernel untouched and in order, to run when
the cell ends, as it would have without falnb. Messages are taken through the stream's
public ``flush``; only the stream's registered callback is read from a private attribute.
Where any of this is missing (no kernel, another thread, an unknown ipykernel), nothing is
pumped and the wait is a plain blocking wait.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from falnb._environment import ipython_shell

__all__ = ["pump", "unwatch", "wanted", "watch"]

_lock = threading.Lock()
_watched: set[str] = set()
_pumping = False


def watch(comm_id: str) -> None:
    """Handle ``comm_id``'s messages while falnb blocks the kernel's main thread."""
    with _lock:
        _watched.add(comm_id)


def unwatch(comm_id: str) -> None:
    with _lock:
        _watched.discard(comm_id)


def wanted() -> bool:
    """Whether a wait on this thread should pump: falnb watches a comm, and this is a kernel's
    main thread whose main-shell stream is reachable."""
    with _lock:
        if not _watched or _pumping:
            return False
    return _target() is not None


def pump() -> int:
    """Handle pending messages for watched comms; the number handled.

    Only on the kernel's main thread, never re-entered (a handler that blocks in falnb again
    waits plainly).
    """
    global _pumping  # noqa: PLW0603 - one pump at a time, on the main thread
    with _lock:
        if not _watched or _pumping:
            return 0
    target = _target()
    if target is None:
        return 0
    kernel, stream = target
    original: Callable[[Any], Any] = stream._recv_callback  # private: see the module doc
    copy = bool(getattr(stream, "_recv_copy", False))
    handled = 0

    def intercept(raw: list[Any]) -> Any:
        nonlocal handled
        message = _watched_comm_msg(kernel, raw, copy=copy)
        if message is None:
            return original(raw)  # the kernel's own path; the stream schedules an awaitable
        handled += 1
        _dispatch(kernel, stream, message)
        return None

    _pumping = True
    stream.on_recv(intercept, copy=copy)
    try:
        stream.flush(_POLLIN)
    finally:
        stream.on_recv(original, copy=copy)
        _pumping = False
    return handled


_POLLIN = 1  # zmq.POLLIN, without importing zmq outside a kernel


def _target() -> tuple[Any, Any] | None:
    """The running ipykernel and its main-shell stream, if this is its main thread (where
    the main shell is handled) and both look as this module expects."""
    if "ipykernel" not in sys.modules or threading.current_thread() is not threading.main_thread():
        return None
    kernel = getattr(ipython_shell(), "kernel", None)
    if kernel is None or getattr(kernel, "session", None) is None:
        return None
    if not callable(getattr(kernel, "shell_handlers", {}).get("comm_msg")):
        return None
    stream = _main_shell_stream(kernel)
    return (kernel, stream) if stream is not None else None


def _main_shell_stream(kernel: Any) -> Any:
    """The stream the main shell's messages arrive on (ipykernel 7: from the shell channel
    thread through an inproc pair; ipykernel 6: the shell socket itself)."""
    try:
        channel = getattr(kernel, "shell_channel_thread", None)
        if channel is not None:
            stream = channel.manager.get_shell_channel_to_subshell_pair(None).to_stream
        else:
            stream = getattr(kernel, "shell_stream", None)
    except Exception:  # noqa: BLE001 - an ipykernel this module does not know: do not pump
        return None
    needed = ("on_recv", "flush", "_recv_callback")
    return stream if stream is not None and all(hasattr(stream, n) for n in needed) else None


def _watched_comm_msg(kernel: Any, raw: list[Any], *, copy: bool) -> dict[str, Any] | None:
    """The deserialized message if ``raw`` is a comm_msg for a watched comm, else None.

    The header is peeked without recording the signature, so a message handed back is
    deserialized by the kernel as if it had never been looked at.
    """
    session = kernel.session
    try:
        idents, frames = session.feed_identities(raw, copy=copy)
        peek = session.deserialize(frames, content=False, copy=copy)
        if peek["header"].get("msg_type") != "comm_msg":
            return None
        comm_id = session.unpack(peek["content"]).get("comm_id")
        with _lock:
            if comm_id not in _watched:
                return None
        message: dict[str, Any] = session.deserialize(frames, content=True, copy=copy)
    except Exception:  # noqa: BLE001 - not ours to judge: the kernel reports bad messages
        return None
    message["idents"] = idents
    return message


def _dispatch(kernel: Any, stream: Any, message: dict[str, Any]) -> None:
    """Run the kernel's ``comm_msg`` handler (which calls the widget's) for ``message``.

    The parent stays the running cell's, so anything the handler shows lands in that cell.
    """
    try:
        kernel.shell_handlers["comm_msg"](stream, message.pop("idents"), message)
    except Exception:  # a handler's error must not end the wait
        kernel.log.exception("falnb: error handling a widget message")

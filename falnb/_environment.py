"""Which front end is showing falnb's output, decided in one place.

Widgets only help where a widget manager renders them: JupyterLab / Notebook (their kernels
carry ``JPY_SESSION_NAME``), VS Code and Colab. nbclient, nbconvert and terminal IPython get
text. ``FALNB_PROGRESS=widget|text|none`` overrides the guess.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Literal

__all__ = ["Frontend", "detect_frontend", "in_colab", "ipython_shell", "progress_mode"]

Frontend = Literal["jupyter", "vscode", "colab", "kernel", "terminal", "none"]
ProgressMode = Literal["widget", "text", "none"]

_warned: set[str] = set()  # FALNB_PROGRESS values already reported as unknown


def ipython_shell() -> Any | None:
    """The running IPython shell, or None (IPython is never imported just to ask)."""
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython  # only when IPython is already loaded

    return get_ipython()


def in_colab() -> bool:
    """Whether this process is a Google Colab runtime (its kernel imports ``google.colab``)."""
    return "google.colab" in sys.modules


def detect_frontend() -> Frontend:
    """Where output goes: a widget-capable front end, a plain kernel, a terminal, or none."""
    shell = ipython_shell()
    if shell is None:
        return "none"
    name = type(shell).__name__
    if name == "TerminalInteractiveShell":
        return "terminal"
    if in_colab():
        return "colab"
    if name != "ZMQInteractiveShell":
        return "terminal"
    if os.environ.get("VSCODE_PID"):
        return "vscode"
    if os.environ.get("JPY_SESSION_NAME"):
        return "jupyter"
    return "kernel"


def progress_mode() -> ProgressMode:
    """How live progress is shown: an anywidget view, a text line, or not at all."""
    raw = os.environ.get("FALNB_PROGRESS", "")
    forced = raw.strip().lower()
    if forced in ("widget", "text", "none"):
        return forced  # type: ignore[return-value]
    if forced and raw not in _warned:
        _warned.add(raw)
        print(  # noqa: T201 - one line where the cell's output shows it, once per value
            f"falnb: FALNB_PROGRESS={raw!r} is not widget, text or none; ignoring it",
            file=sys.stderr,
        )
    frontend = detect_frontend()
    if frontend in ("jupyter", "vscode", "colab"):
        return "widget"
    if frontend == "none":
        return "none"
    return "text"

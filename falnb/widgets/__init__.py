"""falnb's notebook views (anywidget): live progress, the realtime widget and input forms.

Importing this package is light: the widget classes (and anywidget) load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Form", "Realtime"]


def __getattr__(name: str) -> Any:
    if name == "Realtime":
        from falnb.widgets.realtime import Realtime  # lazy: pulls in anywidget

        return Realtime
    if name == "Form":
        from falnb.widgets.form import Form  # lazy: pulls in ipywidgets

        return Form
    raise AttributeError(f"module 'falnb.widgets' has no attribute {name!r}")

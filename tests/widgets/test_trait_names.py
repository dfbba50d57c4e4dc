"""The names the widgets' JavaScript reads and writes are the traits Python syncs.

A renamed trait on one side only would leave a view silently blank (``model.get`` of an
unknown name is ``undefined``), so each name the front end uses must be a synced trait of
that widget's Python class. The sources are read: the shipped files are their minified build,
and ``make check`` proves they are exactly what the sources build to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import pytest

from falnb.widgets.progress import _widget_class
from falnb.widgets.realtime import RealtimeView

ROOT = Path(__file__).resolve().parents[2]
_DIRECT = re.compile(r"""model\.(?:get|set)\(\s*["'](\w+)["']""")
_CHANGE = re.compile(r"""["'`]change:(\w+)["'`]""")
#: ``for (const name of [...]) model.on(`change:${name}`, ...)`` and the arrays it spreads.
_LISTS = re.compile(r"""(?:names\s*=|for\s*\(const\s+name\s+of)\s*\[([^\]]*)\]""")
_WORD = re.compile(r"""["'](\w+)["']""")


def used_names(source: str) -> set[str]:
    names = set(_DIRECT.findall(source)) | set(_CHANGE.findall(source))
    for listed in _LISTS.findall(source):
        names |= set(_WORD.findall(listed))
    return names


def synced(cls: Any) -> set[str]:
    """The synced traits the widget declares itself (not ipywidgets' layout, tooltip ...)."""
    inherited = set(anywidget.AnyWidget.class_trait_names(sync=True))
    return {n for n in cls.class_trait_names(sync=True) if n not in inherited and n[0] != "_"}


WIDGETS: dict[str, Callable[[], type[Any]]] = {
    "progress": _widget_class,
    "realtime": lambda: RealtimeView,
}


@pytest.mark.parametrize("widget", sorted(WIDGETS))
def test_js_names_are_python_traits(widget: str) -> None:
    where = "js/src"
    source = (ROOT / where / f"{widget}.js").read_text(encoding="utf-8")
    used = used_names(source)
    assert len(used) >= 5, f"the parser found too few names in {where}/{widget}.js: {used}"
    traits = synced(WIDGETS[widget]())
    assert used - traits == set(), f"{where}/{widget}.js uses names Python does not sync"


@pytest.mark.parametrize("widget", sorted(WIDGETS))
def test_python_traits_are_used_by_the_view(widget: str) -> None:
    used = used_names((ROOT / "js/src" / f"{widget}.js").read_text(encoding="utf-8"))
    # request_id is synced for the notebook's widget state (which request a view showed).
    unused = synced(WIDGETS[widget]()) - used - {"request_id"}
    assert unused == set(), f"{widget}: synced traits no view reads or writes"


def test_the_parser_sees_loops_and_direct_calls() -> None:
    source = """
      const names = ["a", "b"];
      for (const name of [...names, "c"]) model.on(`change:${name}`, update);
      model.get("d"); model.set('e', 1); model.on("change:f", g);
    """
    assert used_names(source) == {"a", "b", "c", "d", "e", "f"}

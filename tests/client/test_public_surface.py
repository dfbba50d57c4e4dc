"""Every falnb type the public API hands back can be named from the package.

A user who gets a ``Job`` back from ``Session.submit`` (or a realtime connection, a media
file, a key) can import that type for an annotation or an ``isinstance`` check from
``falnb``, or from one of its public packages (``falnb.repro`` for the lock's types), never
from a private module.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from typing import Any

import falnb

_NAME = re.compile(r"\b([A-Z]\w*)\b")


def falnb_classes() -> dict[str, type[Any]]:
    """Every class defined in a falnb module, by name (the package's modules all imported)."""
    for info in pkgutil.walk_packages(falnb.__path__, "falnb."):
        if ".local.apps" not in info.name:
            importlib.import_module(info.name)
    found: dict[str, type[Any]] = {}
    for name, module in list(sys.modules.items()):
        if name == "falnb" or name.startswith("falnb."):
            for value in vars(module).values():
                if inspect.isclass(value) and value.__module__.startswith("falnb"):
                    found.setdefault(value.__name__, value)
    return found


def returned_names(obj: Any) -> dict[str, str]:
    """Capitalised names in the return annotations of ``obj`` (a function, or a class's
    public methods and properties), each with where it was seen."""
    members = (
        [(n, v) for n, v in vars(obj).items() if not n.startswith("_")]
        if inspect.isclass(obj)
        else [("", obj)]
    )
    out: dict[str, str] = {}
    for member, value in members:
        function = value.fget if isinstance(value, property) else inspect.unwrap(value)
        function = getattr(function, "__func__", function)
        if not callable(function):
            continue
        try:
            annotation = inspect.signature(function).return_annotation
        except (TypeError, ValueError):
            continue
        text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
        for name in _NAME.findall(text):
            out.setdefault(name, f"{getattr(obj, '__name__', obj)}.{member}".rstrip("."))
    return out


#: The public packages whose ``__all__`` also counts as exported.
PUBLIC_PACKAGES = ("falnb.client", "falnb.repro", "falnb.local", "falnb.widgets")


def test_every_returned_falnb_type_is_exported() -> None:
    classes = falnb_classes()
    exported = set(falnb.__all__).union(
        *(importlib.import_module(p).__all__ for p in PUBLIC_PACKAGES)
    )
    missing = {
        returned: where
        for name in falnb.__all__
        for returned, where in returned_names(getattr(falnb, name)).items()
        if returned in classes and returned not in exported
    }
    assert not missing, f"returned by the public API but not in falnb.__all__: {missing}"


def test_the_walk_sees_methods_and_properties() -> None:
    names = returned_names(falnb.SyncClient)
    assert {"RequestHandle", "Stream", "Status"} <= set(names)
    assert "MediaFile" in returned_names(falnb.Result)  # a property: Result.files

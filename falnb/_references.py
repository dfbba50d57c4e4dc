"""``{name}`` and ``$name`` in a magic's line or body: the notebook variables they stand for.

A reference is ``{name}``, ``{obj.attr}``, ``{d['key']}`` or ``{items[0]}`` (chains of
those), or ``$name`` where the caller allows it. ``{{name}}`` and ``$$`` are the literal
text ``{name}`` and ``$``. Other braces (JSON, ``{a: 1}``, ``{ spaced }``) are not references.

A reference that names nothing in the notebook is an :class:`InterpolationError` naming it
(with a close name when there is one), never a null or an empty string sent to a paid
endpoint. Values are looked up only when used, so a reference inside a YAML comment costs
nothing. Lookups walk names, attributes and literal subscripts; nothing is ``eval``-ed.

:class:`Template` keeps the values out of the text until after it is parsed: each reference
becomes a placeholder word, and :meth:`Template.resolve` puts back the typed value where a
placeholder is a whole value, or its text where it is part of a string (or quoted, as in
``"{n}"``).
"""

from __future__ import annotations

import ast
import difflib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["InterpolationError", "Template", "lookup", "substitute_text", "whole_reference"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_KEY = r"""(?:-?[0-9]+|'[^'\\\]\n]*'|"[^"\\\]\n]*")"""
_EXPR = rf"{_NAME}(?:\.{_NAME}|\[{_KEY}\])*"
#: ``{{expr}}`` (literal) before ``{expr}`` (reference); with ``$``: ``$$`` and ``$name``.
_BRACES = re.compile(rf"\{{\{{(?P<literal>{_EXPR})\}}\}}|\{{(?P<expr>{_EXPR})\}}")
_WITH_DOLLARS = re.compile(rf"{_BRACES.pattern}|(?P<dollars>\$\$)|\$(?P<name>{_NAME})")
_WHOLE = re.compile(rf"\{{(?P<expr>{_EXPR})\}}|\$(?P<name>{_NAME})")
#: Names IPython puts in every namespace: never a useful "did you mean".
_SHELL_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython"})


class InterpolationError(ValueError):
    """A reference that cannot be looked up; the message is one line naming it."""


def _spelled(expr: str, dollar: bool) -> str:
    return f"${expr}" if dollar else f"{{{expr}}}"


def _suggestion(name: str, namespace: Mapping[str, Any]) -> str:
    candidates = [
        n
        for n in namespace
        if isinstance(n, str) and not n.startswith("_") and n not in _SHELL_NAMES
    ]
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.7)
    return f" (did you mean {close[0]}?)" if close else ""


def lookup(expr: str, namespace: Mapping[str, Any], *, dollar: bool = False) -> Any:
    """The value ``expr`` (the text inside the braces) names in ``namespace``."""
    spelled = _spelled(expr, dollar)
    try:
        tree = ast.parse(expr, mode="eval").body
    except SyntaxError:
        raise InterpolationError(f"{spelled} is not a variable reference") from None
    return _evaluate(tree, namespace, spelled)


def _evaluate(node: ast.expr, namespace: Mapping[str, Any], spelled: str) -> Any:
    if isinstance(node, ast.Name):
        if node.id not in namespace:
            escape = f"${spelled}" if spelled.startswith("$") else f"{{{spelled}}}"
            raise InterpolationError(
                f"{spelled}: no variable {node.id!r} in the notebook"
                f"{_suggestion(node.id, namespace)}; write {escape} for the literal text"
            )
        return namespace[node.id]
    if isinstance(node, ast.Attribute):
        owner = _evaluate(node.value, namespace, spelled)
        try:
            return getattr(owner, node.attr)
        except Exception as exc:  # noqa: BLE001 - any failure of the user's object is one line
            raise InterpolationError(
                f"{spelled}: {type(owner).__name__} has no attribute {node.attr!r} "
                f"({type(exc).__name__})"
            ) from None
    if isinstance(node, ast.Subscript):
        owner = _evaluate(node.value, namespace, spelled)
        key = ast.literal_eval(node.slice)
        try:
            return owner[key]
        except Exception as exc:  # noqa: BLE001 - KeyError, IndexError, TypeError, ...
            raise InterpolationError(
                f"{spelled}: {type(owner).__name__} has no item {key!r} ({type(exc).__name__})"
            ) from None
    raise InterpolationError(f"{spelled} is not a variable reference")


def whole_reference(text: str) -> tuple[str, bool] | None:
    """``(expr, is_dollar)`` when ``text`` is exactly one reference, else None."""
    match = _WHOLE.fullmatch(text.strip())
    if match is None:
        return None
    return (match["expr"], False) if match["expr"] else (match["name"], True)


def substitute_text(text: str, namespace: Mapping[str, Any], *, dollars: bool = False) -> str:
    """``text`` with each reference replaced by its value's text (``str``)."""

    def swap(match: re.Match[str]) -> str:
        if match["literal"]:
            return "{" + match["literal"] + "}"
        if match.groupdict().get("dollars"):
            return "$"
        if match["expr"]:
            return str(lookup(match["expr"], namespace))
        return str(lookup(match["name"], namespace, dollar=True))

    return (_WITH_DOLLARS if dollars else _BRACES).sub(swap, text)


@dataclass
class _Slot:
    expr: str
    dollar: bool = False
    literal: str | None = None  # ``{{x}}``: the text ``{x}``, never looked up
    as_text: bool = False  # quoted in the source (``"{n}"``): always its text


_UNSET = object()


class Template:
    """References swapped for placeholder words, and back once the text is parsed."""

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        self.namespace = namespace
        self._slots: list[_Slot] = []
        self._values: dict[int, Any] = {}
        self._tag = f"__falnb{secrets.token_hex(4)}_"
        self._placeholder = re.compile(rf"{self._tag}(\d+)__")

    def mark(self, text: str, *, dollars: bool = False) -> str:
        """``text`` with every reference (and escape) replaced by a placeholder word."""
        pattern = _WITH_DOLLARS if dollars else _BRACES

        def swap(match: re.Match[str]) -> str:
            if match.groupdict().get("dollars"):
                return "$"
            before = text[match.start() - 1 : match.start()]
            after = text[match.end() : match.end() + 1]
            quoted = before in ("'", '"') and before == after
            if match["literal"]:
                slot = _Slot(match["literal"], literal="{" + match["literal"] + "}")
            elif match["expr"]:
                slot = _Slot(match["expr"], as_text=quoted)
            else:
                slot = _Slot(match["name"], dollar=True, as_text=quoted)
            self._slots.append(slot)
            return f"{self._tag}{len(self._slots) - 1}__"

        return pattern.sub(swap, text)

    def _value(self, index: int) -> Any:
        slot = self._slots[index]
        if slot.literal is not None:
            return slot.literal
        value = self._values.get(index, _UNSET)
        if value is _UNSET:
            value = lookup(slot.expr, self.namespace, dollar=slot.dollar)
            self._values[index] = value
        return value

    def text(self, value: str) -> str:
        """``value`` with every placeholder replaced by its value's text."""
        return self._placeholder.sub(lambda m: str(self._value(int(m[1]))), value)

    def resolve(self, value: Any) -> Any:
        """Parsed data with its placeholders replaced: typed where whole, text elsewhere.

        Keys are always text; lists and dicts are rebuilt, other values returned as they are.
        """
        if isinstance(value, dict):
            return {
                (self.text(k) if isinstance(k, str) else k): self.resolve(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, str):
            whole = self._placeholder.fullmatch(value)
            if whole is not None:
                index = int(whole[1])
                slot = self._slots[index]
                resolved = self._value(index)
                return str(resolved) if slot.as_text or slot.literal is not None else resolved
            return self.text(value)
        return value

    def is_whole(self, value: str) -> bool:
        """Whether ``value`` is exactly one placeholder (a reference that is a whole value)."""
        return self._placeholder.fullmatch(value) is not None

    def source(self, text: str) -> str:
        """``text`` as the user wrote it (placeholders back to their references), for messages."""

        def back(match: re.Match[str]) -> str:
            slot = self._slots[int(match[1])]
            if slot.literal is not None:
                return "{" + slot.literal + "}"
            return _spelled(slot.expr, slot.dollar)

        return self._placeholder.sub(back, text)

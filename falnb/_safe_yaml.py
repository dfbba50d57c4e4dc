"""YAML (and so JSON) typed by a user, read within bounds.

``yaml.safe_load`` is safe from code execution but not from size: a 300-byte body of nested
aliases ("billion laughs") expands to a billion nodes the moment anything walks the result,
and deep nesting ends in a RecursionError. :func:`load` refuses, with one line each:

* text longer than :data:`MAX_CHARS`;
* nesting deeper than :data:`MAX_DEPTH`, counted through aliases;
* more than :data:`MAX_NODES` values once aliases are expanded, and aliases inside their own
  anchor (a recursive value has no JSON form);
* values JSON has no form for: ``nan``/``inf``, sets, ordered pairs.

Plain words are read by YAML 1.2's core schema (JSON's types), not PyYAML's YAML 1.1:
``16:9``, ``yes``, ``010`` and ``2024-01-01`` stay the text they look like.

Mapping keys given twice are an error rather than the last one silently winning.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

__all__ = ["MAX_CHARS", "MAX_DEPTH", "MAX_NODES", "UnusableYAMLError", "YAMLInputError", "load"]

MAX_CHARS = 256 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000

try:  # libyaml's scanner is several times faster than PyYAML's own
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, text: str) -> None:
            Reader.__init__(self, text)
            Scanner.__init__(self)
            Parser.__init__(self)


class YAMLInputError(ValueError):
    """Text that is not YAML within the bounds; the message is one line, ``line`` 1-based."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class UnusableYAMLError(YAMLInputError):
    """YAML refused though it parses (beyond a bound, or with no JSON form): never to be
    taken for plain text instead."""


class _Resolver(Resolver):
    """YAML 1.2's core schema: plain words are read as JSON would read them.

    PyYAML follows YAML 1.1, where ``aspect_ratio: 16:9`` is the number 969 (base 60),
    ``yes``/``no``/``on``/``off`` are booleans, ``010`` is 8 and ``2024-01-01`` a date: each
    a wrong value sent without a word. Here those stay the text they look like; ``true``,
    ``false``, ``null``, ``~``, decimal, ``0x``/``0o`` integers and floats (``1e3`` too) keep
    their types, and ``<<`` merges.
    """


_FLOAT = (
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_Resolver.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("float", _FLOAT, "-+.0123456789"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("merge", r"^(?:<<)$", "<"),
):
    _Resolver.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))


def _line(node: Any) -> int | None:
    mark = getattr(node, "start_mark", None)
    return mark.line + 1 if mark is not None else None


class _Loader(Composer, _Parser, SafeConstructor, _Resolver):
    """PyYAML's composer (Python, so it can count) over libyaml's parser, with the bounds."""

    def __init__(self, text: str) -> None:
        _Parser.__init__(self, text)
        SafeConstructor.__init__(self)
        _Resolver.__init__(self)
        Composer.__init__(self)
        self._depth = 0
        #: Expanded size and depth of each composed node, by id (nodes live as long as we do).
        self._sizes: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event: Any = self.peek_event()
        if isinstance(event, AliasEvent):
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:
                raise UnusableYAMLError(
                    f"the alias *{event.anchor} is inside its own anchor &{event.anchor}",
                    _line(event),
                )
            return node
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise UnusableYAMLError(f"values nest deeper than {MAX_DEPTH} levels", _line(event))
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is not None:
            self._sizes[id(node)] = self._measure(node)
        return node

    def _measure(self, node: Node) -> tuple[int, int]:
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
            self._check_keys(node)
        size, depth = 1, 1
        for child in children:
            child_size, child_depth = self._sizes[id(child)]
            size += child_size
            depth = max(depth, child_depth + 1)
        if depth > MAX_DEPTH:
            raise UnusableYAMLError(
                f"values nest deeper than {MAX_DEPTH} levels (through aliases)", _line(node)
            )
        if size > MAX_NODES:
            raise UnusableYAMLError(
                f"more than {MAX_NODES:,} values once its aliases are expanded", _line(node)
            )
        return size, depth

    @staticmethod
    def _check_keys(node: MappingNode) -> None:
        seen: set[str] = set()
        for key, _value in node.value:
            if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if key.value in seen:
                    raise UnusableYAMLError(f"the key {key.value!r} is given twice", _line(key))
                seen.add(key.value)


def _construct_int(loader: _Loader, node: Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    # Decimal unless prefixed: YAML 1.1's leading-zero octal and base-60 are gone.
    return int(text, 0) if text.lstrip("+-")[:2] in ("0x", "0o") else int(text)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)  # type: ignore[type-var]


def _check_values(data: Any) -> None:
    """Only values with a JSON form (plus bytes from ``!!binary``, which are uploaded)."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise UnusableYAMLError(f"{value} is not a number JSON can carry")
        elif not isinstance(value, (str, int, bool, bytes)) and value is not None:
            kinds: dict[type, str] = {set: "a set", tuple: "ordered pairs"}
            kind = kinds.get(type(value), type(value).__name__)
            raise UnusableYAMLError(f"YAML reads a value as {kind}, which JSON has no form for")


def load(text: str) -> Any:
    """The value of one YAML document in ``text`` (None when empty), within the bounds."""
    if len(text) > MAX_CHARS:
        raise UnusableYAMLError(
            f"{len(text) // 1024} KiB is more than the {MAX_CHARS // 1024} KiB falnb reads; "
            "put large values in a variable and write {name}"
        )
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        line = mark.line + 1 if mark is not None else None
        if "maximum nesting depth" in problem:  # libyaml's own bound, met before ours
            raise UnusableYAMLError(f"values nest deeper than {MAX_DEPTH} levels", line) from None
        raise YAMLInputError(problem, line) from None
    except yaml.YAMLError as exc:
        raise YAMLInputError(str(exc).splitlines()[0] or "not valid YAML") from None
    except (ValueError, RecursionError, OverflowError) as exc:
        # e.g. an integer literal longer than Python converts (sys.int_info.str_digits_check)
        if isinstance(exc, YAMLInputError):
            raise
        # The first clause only: Python's own advice (sys.set_int_max_str_digits) is not ours.
        raise UnusableYAMLError(
            str(exc).split(";")[0].splitlines()[0] or type(exc).__name__
        ) from None
    finally:
        loader.dispose()
    _check_values(data)
    return data

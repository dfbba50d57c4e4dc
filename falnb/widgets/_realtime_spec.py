"""Parse ``%fal realtime`` lines into an endpoint, fixed inputs and controls.

``local/image-to-image strength=(0.0, 1.0, 0.05) prompt="a fox" image_url={img} seed=3``

The values follow ipywidgets.interact's abbreviations: ``(min, max[, step])`` is a slider
(IntSlider when every bound is an int, else FloatSlider), a quoted string a Text box, a list
a Dropdown, a bool a Checkbox. ``{name}`` (or ``{obj.attr}``, ``{d['k']}``, ``$name``) as a
whole value is a fixed input taken from the namespace, as is; inside a quoted string it is
its text. Any other Python literal (numbers, None) is a fixed input as written.
``transport=auto|browser|kernel`` is not an input: it picks how frames travel (see
:mod:`falnb.widgets.realtime`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ipywidgets

from falnb._protocol import is_endpoint_id
from falnb._references import InterpolationError, lookup, substitute_text, whole_reference

__all__ = ["TRANSPORTS", "RealtimeSpec", "control_for", "parse_realtime_line"]

#: How a realtime widget's frames travel: chosen for the page, the browser's own socket, or
#: through the kernel.
TRANSPORTS = ("auto", "browser", "kernel")

USAGE = (
    "usage: %fal realtime <owner/alias> name=value ... where a value is (min, max[, step]) "
    'for a slider, "text" for a text box, [a, b] for a dropdown, True/False for a checkbox, '
    "{variable} for a fixed input from the notebook, or a number for a fixed input; "
    "transport=auto|browser|kernel picks how frames travel"
)
_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*")
_CLOSERS = {"(": ")", "[": "]", "{": "}"}


@dataclass
class RealtimeSpec:
    """A parsed line: where to connect, what stays fixed, what the user drives."""

    endpoint: str
    base: dict[str, Any] = field(default_factory=dict)
    controls: dict[str, ipywidgets.ValueWidget] = field(default_factory=dict)
    transport: str = "auto"
    #: The controls as written (interact abbreviations): the widget's JS draws these.
    abbreviations: dict[str, Any] = field(default_factory=dict)


def _value_end(text: str, start: int) -> int:
    """Where the value starting at ``start`` ends: top-level whitespace, outside quotes."""
    depth: list[str] = []
    quote = ""
    i = start
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in _CLOSERS:
            depth.append(_CLOSERS[char])
        elif depth and char == depth[-1]:
            depth.pop()
        elif char in ")]}":
            raise ValueError(f"unbalanced {char!r} at column {i + 1}; {USAGE}")
        elif char.isspace() and not depth:
            return i
        i += 1
    if quote:
        raise ValueError(f"unterminated string starting in {text[start:]!r}")
    if depth:
        raise ValueError(f"missing {depth[-1]!r} in {text[start:]!r}")
    return i


def _pairs(text: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    position = 0
    while position < len(text) and text[position:].strip():
        match = _NAME.match(text, position)
        if match is None:
            word = text[position:].split(maxsplit=1)[0]
            hint = USAGE
            if pairs:
                name = pairs[-1][0]
                hint = f"if it is part of {name}'s value, put the value in quotes or brackets"
            raise ValueError(f"expected name=value, got {word!r}; {hint}")
        end = _value_end(text, match.end())
        raw = text[match.end() : end]
        if not raw:
            raise ValueError(f"{match.group(1)}= has no value; {USAGE}")
        pairs.append((match.group(1), raw))
        position = end
    return pairs


def _slider(name: str, bounds: tuple[Any, ...]) -> ipywidgets.ValueWidget:
    if len(bounds) not in (2, 3) or not all(
        isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds
    ):
        raise ValueError(f"{name}: a slider is (min, max) or (min, max, step) of numbers")
    low, high = bounds[0], bounds[1]
    if not low < high:
        raise ValueError(f"{name}: a slider needs min < max, got ({low}, {high})")
    if len(bounds) == 3 and not bounds[2] > 0:
        raise ValueError(f"{name}: a slider's step must be positive, got {bounds[2]}")
    if all(isinstance(b, int) for b in bounds):
        step = bounds[2] if len(bounds) == 3 else 1
        value = low + ((high - low) // 2) // step * step
        return ipywidgets.IntSlider(value=value, min=low, max=high, step=step, description=name)
    step = float(bounds[2]) if len(bounds) == 3 else (high - low) / 100
    value = low + round((high - low) / 2 / step) * step
    return ipywidgets.FloatSlider(
        value=min(value, high), min=low, max=high, step=step, description=name
    )


def control_for(name: str, value: Any) -> ipywidgets.ValueWidget | None:
    """The control an interact-style abbreviation stands for, or None for a fixed value."""
    if isinstance(value, tuple):
        return _slider(name, value)
    if isinstance(value, str):
        return ipywidgets.Text(value=value, description=name)
    if isinstance(value, bool):
        return ipywidgets.Checkbox(value=value, description=name)
    if isinstance(value, list):
        if not value:
            raise ValueError(f"{name}: a dropdown needs at least one option")
        return ipywidgets.Dropdown(options=value, description=name)  # the first is chosen
    return None


def _text_interpolated(value: Any, namespace: Mapping[str, Any]) -> Any:
    """References inside quoted strings (also a dropdown's options) become their text."""
    if isinstance(value, str):
        return substitute_text(value, namespace, dollars=True)
    if isinstance(value, list):
        return [_text_interpolated(item, namespace) for item in value]
    return value


def parse_realtime_line(line: str, namespace: Mapping[str, Any]) -> RealtimeSpec:
    """Parse ``endpoint name=value ...`` (see the module docstring)."""
    text = line.strip()
    if not text:
        raise ValueError(f"no endpoint given; {USAGE}")
    endpoint, _, rest = text.partition(" ")
    if not is_endpoint_id(endpoint):
        raise ValueError(f"{endpoint!r} is not an endpoint id like 'owner/alias'; {USAGE}")
    spec = RealtimeSpec(endpoint)
    transport_given = False
    for name, raw in _pairs(rest):
        if name in spec.base or name in spec.controls:
            raise ValueError(f"{name} is given twice")
        if name == "transport":
            if transport_given:
                raise ValueError("transport is given twice")
            transport_given = True
            spec.transport = raw.strip("'\"")
            if spec.transport not in TRANSPORTS:
                raise ValueError(f"transport={raw} is not one of {', '.join(TRANSPORTS)}")
            continue
        reference = whole_reference(raw)
        if reference is not None:
            expr, dollar = reference
            try:
                spec.base[name] = lookup(expr, namespace, dollar=dollar)
            except InterpolationError as exc:
                raise ValueError(f"{name}={exc}") from None
            continue
        try:
            literal = ast.literal_eval(raw)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise ValueError(
                f'{name}={raw} is not a value: quote text ({name}="{raw}") or use {{variable}}'
            ) from None
        try:
            value = _text_interpolated(literal, namespace)
        except InterpolationError as exc:
            raise ValueError(f"{name}={exc}") from None
        control = control_for(name, value)
        if control is None:
            spec.base[name] = value
        else:
            spec.controls[name] = control
            spec.abbreviations[name] = value
    return spec

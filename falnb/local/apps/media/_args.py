"""Input validation for the media apps, answering bad input with fal's 422 field errors.

Every check raises through :func:`invalid`, so the error shape lives in one place; a handler
reads its arguments through :class:`Arguments`, so one 422 lists every bad field.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from falnb._protocol import IMAGE_SIZE_PRESETS
from falnb.local.apps._fields import Fields, invalid
from falnb.local.registry import Context

__all__ = [
    "IMAGE_SIZES",
    "MAX_SEED",
    "MAX_SIDE",
    "Arguments",
    "choice",
    "image_size",
    "image_url",
    "integer",
    "invalid",
    "number",
    "optional_str",
    "output_format",
    "prompt",
    "seed",
    "warn_unknown",
]

IMAGE_SIZES = IMAGE_SIZE_PRESETS
# fal allows up to 14142 a side; a CPU toy stops earlier so a typo can't eat the machine.
MAX_SIDE = 4096
MAX_SEED = 2**63 - 1


def warn_unknown(arguments: Mapping[str, Any], known: Iterable[str], ctx: Context) -> None:
    """Log (not reject) fields this app ignores: fal's apps ignore extras, a log shows typos."""
    extra = sorted(set(arguments) - set(known))
    if extra:
        ctx.log(f"ignoring unknown argument(s): {', '.join(extra)}", "WARN")


def prompt(arguments: Mapping[str, Any], field: str = "prompt") -> str:
    """The required, non-empty prompt string."""
    if field not in arguments or arguments[field] is None:
        invalid(field, "field required", "missing")
    value = arguments[field]
    if not isinstance(value, str):
        invalid(field, "Input should be a valid string", "string_type")
    if not value.strip():
        invalid(field, "String should have at least 1 character", "string_too_short")
    return value


def optional_str(arguments: Mapping[str, Any], field: str, default: str = "") -> str:
    value = arguments.get(field)
    if value is None:
        return default
    if not isinstance(value, str):
        invalid(field, "Input should be a valid string", "string_type")
    return value


_TRUE = frozenset({"true", "1", "yes", "on", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "off", "f", "n"})


def flag(arguments: Mapping[str, Any], field: str, default: bool = False) -> bool:
    """A boolean argument: true/false, or the strings pydantic accepts for them."""
    value = arguments.get(field)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if not (isinstance(value, int) and value in (0, 1)):
        invalid(field, "Input should be a valid boolean", "bool_type")
    return bool(value)


def integer(
    arguments: Mapping[str, Any],
    field: str,
    default: int,
    low: int,
    high: int,
    *,
    within: tuple[str, ...] = (),
) -> int:
    """An int in ``low..high`` (inclusive); absent or null gives ``default``.

    ``within`` prefixes the error location for nested fields (``image_size.width``).
    """
    loc = (*within, field)
    value = arguments.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            invalid(loc, "Input should be a valid integer", "int_type")
    if not low <= value <= high:
        invalid(loc, f"Input should be between {low} and {high}", "range_error")
    return value


def number(
    arguments: Mapping[str, Any], field: str, default: float, low: float, high: float
) -> float:
    """A float in ``low..high``; numeric strings such as fal's ``duration: "5"`` are accepted."""
    value = arguments.get(field)
    if value is None:
        return default
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            invalid(field, "Input should be a valid number", "float_parsing")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        invalid(field, "Input should be a valid number", "float_type")
    if not low <= value <= high:
        invalid(field, f"Input should be between {low:g} and {high:g}", "range_error")
    return float(value)


def seed(arguments: Mapping[str, Any]) -> int:
    """The caller's seed, or a fresh one (returned in the output so the run can be pinned)."""
    if arguments.get("seed") is None:
        return secrets.randbelow(2**31)
    return integer(arguments, "seed", 0, 0, MAX_SEED)


def choice(arguments: Mapping[str, Any], field: str, choices: tuple[str, ...], default: str) -> str:
    """One of ``choices`` (pydantic's Literal): ``Input should be 'a', 'b' or 'c'``."""
    value = arguments.get(field)
    if value is None:
        return default
    if value not in choices:
        quoted = [f"'{c}'" for c in choices]
        allowed = f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
        invalid(field, f"Input should be {allowed}", "literal_error")
    return str(value)


def output_format(arguments: Mapping[str, Any], default: str = "jpeg") -> str:
    return choice(arguments, "output_format", ("jpeg", "png"), default)


def image_url(arguments: Mapping[str, Any], field: str = "image_url") -> str:
    """A required image URL or data URI (uploaded files arrive as their CDN URL)."""
    value = arguments.get(field)
    if value is None:
        invalid(field, "field required", "missing")
    if not isinstance(value, str) or not value:
        invalid(field, "Input should be a valid URL or data URI", "url_type")
    return value


def image_size(
    arguments: Mapping[str, Any],
    default: str | tuple[int, int],
    field: str = "image_size",
    *,
    max_side: int = MAX_SIDE,
) -> tuple[int, int]:
    """``(width, height)`` from a preset name or ``{"width", "height"}`` (fal's ImageSize)."""
    value = arguments.get(field)
    if value is None:
        return IMAGE_SIZES[default] if isinstance(default, str) else default
    if isinstance(value, str):
        if value not in IMAGE_SIZES:
            names = ", ".join(f"'{name}'" for name in IMAGE_SIZES)
            invalid(field, f"Input should be {names} or {{width, height}}", "enum")
        return IMAGE_SIZES[value]
    if not isinstance(value, Mapping):
        invalid(field, "Input should be a preset name or {width, height}", "model_type")
    sides = Fields(value)  # a bad width and a bad height are both named
    width = sides.read(integer, 512, "width", 512, 1, max_side, within=(field,))
    height = sides.read(integer, 512, "height", 512, 1, max_side, within=(field,))
    sides.check()
    return width, height


class Arguments(Fields):
    """A media app's arguments, read field by field; :meth:`check` raises one 422 for all.

    Each reader returns a stand-in when its field is bad, so the handler reads on and the
    caller learns every mistake at once (pydantic apps answer the same way).
    """

    def prompt(self, field: str = "prompt") -> str:
        return self.read(prompt, "", field)

    def optional_str(self, field: str, default: str = "") -> str:
        return self.read(optional_str, default, field, default)

    def flag(self, field: str, default: bool = False) -> bool:
        return self.read(flag, default, field, default)

    def integer(self, field: str, default: int, low: int, high: int) -> int:
        return self.read(integer, default, field, default, low, high)

    def number(self, field: str, default: float, low: float, high: float) -> float:
        return self.read(number, default, field, default, low, high)

    def seed(self) -> int:
        return self.read(seed, 0)

    def output_format(self, default: str = "jpeg") -> str:
        return self.read(output_format, default, default)

    def choice(self, field: str, choices: tuple[str, ...], default: str) -> str:
        return self.read(choice, default, field, choices, default)

    def image_size(
        self, default: str | tuple[int, int], field: str = "image_size", *, max_side: int = MAX_SIDE
    ) -> tuple[int, int]:
        fallback = IMAGE_SIZES[default] if isinstance(default, str) else default
        return self.read(image_size, fallback, default, field, max_side=max_side)

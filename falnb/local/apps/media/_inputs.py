"""A built-in app's input, declared once: the fields its handler reads and its JSON schema.

Each field knows how to read itself (through :class:`~falnb.local.apps.media._args.Arguments`,
so one 422 names every bad field) and how to describe itself in the OpenAPI document the
server publishes, so the limits a handler enforces and the limits a client validates against
are the same numbers. Example::

    INPUT = Inputs(
        "TextToImageInput",
        Prompt(),
        Integer("num_images", "How many images", default=1, low=1, high=4),
    )
    values = INPUT.read(arguments, ctx)  # one 422 for every bad field; extras logged
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from falnb.local.registry import Context

from . import _args

__all__ = [
    "FILE",
    "IMAGE_OPTIONS",
    "Choice",
    "Field",
    "Flag",
    "Ignored",
    "ImageSize",
    "ImageUrl",
    "Inputs",
    "Integer",
    "Number",
    "Prompt",
    "Seed",
    "Text",
    "image_output",
    "media_output",
    "output_schema",
]


@dataclass(frozen=True)
class Field:
    """One input field: its name, what it means, and (in subclasses) its type and limits."""

    name: str
    description: str = ""
    required = False

    def read(self, args: _args.Arguments) -> Any:
        return args.arguments.get(self.name)

    def json_schema(self) -> dict[str, Any]:
        return {}

    def schema(self) -> dict[str, Any]:
        title = self.name.replace("_", " ").title()
        described = {"description": self.description} if self.description else {}
        return {"title": title, **self.json_schema(), **described}


@dataclass(frozen=True)
class Prompt(Field):
    name: str = "prompt"
    description: str = "The text prompt"
    required = True

    def read(self, args: _args.Arguments) -> str:
        return args.prompt(self.name)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1}


@dataclass(frozen=True)
class Text(Field):
    default: str = ""

    def read(self, args: _args.Arguments) -> str:
        return args.optional_str(self.name, self.default)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "default": self.default}


@dataclass(frozen=True)
class Integer(Field):
    default: int = 0
    low: int = 0
    high: int = 0

    def read(self, args: _args.Arguments) -> int:
        return args.integer(self.name, self.default, self.low, self.high)

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "integer",
            "minimum": self.low,
            "maximum": self.high,
            "default": self.default,
        }


@dataclass(frozen=True)
class Number(Field):
    default: float = 0.0
    low: float = 0.0
    high: float = 0.0
    #: Also a numeric string (kling's ``duration: "5"``).
    numeric_text: bool = False

    def read(self, args: _args.Arguments) -> float:
        return args.number(self.name, self.default, self.low, self.high)

    def json_schema(self) -> dict[str, Any]:
        number = {"type": "number", "minimum": self.low, "maximum": self.high}
        if self.numeric_text:
            text = {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*$"}
            return {"anyOf": [number, text], "default": self.default}
        return {**number, "default": self.default}


@dataclass(frozen=True)
class Flag(Field):
    default: bool = False

    def read(self, args: _args.Arguments) -> bool:
        return args.flag(self.name, self.default)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "boolean", "default": self.default}


@dataclass(frozen=True)
class Choice(Field):
    choices: tuple[str, ...] = ()
    default: str = ""

    def read(self, args: _args.Arguments) -> str:
        return args.choice(self.name, self.choices, self.default)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices), "default": self.default}


@dataclass(frozen=True)
class Seed(Field):
    name: str = "seed"
    description: str = "The same seed and prompt give the same output; random if absent"

    def read(self, args: _args.Arguments) -> int:
        return args.seed()

    def json_schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": 0, "maximum": _args.MAX_SEED}


@dataclass(frozen=True)
class ImageSize(Field):
    """A preset name or ``{width, height}``; ``default=None`` means "the input image's size"."""

    name: str = "image_size"
    description: str = "A preset name or {width, height}"
    default: str | None = None
    max_side: int = _args.MAX_SIDE

    def read(self, args: _args.Arguments) -> tuple[int, int] | None:
        if args.arguments.get(self.name) is None and self.default is None:
            return None
        return args.image_size(self.default or (1, 1), self.name, max_side=self.max_side)

    def json_schema(self) -> dict[str, Any]:
        side = {"type": "integer", "minimum": 1, "maximum": self.max_side}
        sized = {
            "type": "object",
            "title": "ImageSize",
            "properties": {"width": side, "height": side},
            "x-fal-order-properties": ["width", "height"],
        }
        preset = {"type": "string", "enum": list(_args.IMAGE_SIZES)}
        schema: dict[str, Any] = {"anyOf": [preset, sized]}
        if self.default is not None:
            schema["default"] = self.default
        return schema


@dataclass(frozen=True)
class ImageUrl(Field):
    name: str = "image_url"
    description: str = "The input image: a URL or a data URI"
    required = True

    def read(self, args: _args.Arguments) -> str:
        return args.read(_args.image_url, "", self.name)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "ui": {"field": "image"}}


@dataclass(frozen=True)
class Ignored(Field):
    """A field of the fal model this app stands in for: accepted, typed, and not used."""

    type: str = "number"
    description: str = "Accepted for compatibility with fal's model; not used locally"

    def read(self, args: _args.Arguments) -> None:  # noqa: ARG002 - accepted, not read
        return None

    def json_schema(self) -> dict[str, Any]:
        return {"type": self.type}


class Inputs:
    """An app's input fields, in the order a form shows them (``x-fal-order-properties``)."""

    def __init__(self, title: str, *fields: Field) -> None:
        self.title = title
        self.fields = fields
        self.names = frozenset(f.name for f in fields)

    def arguments(self, arguments: Mapping[str, Any]) -> tuple[_args.Arguments, dict[str, Any]]:
        """Every field read: the reader (for checks of the app's own) and the values."""
        args = _args.Arguments(arguments)
        return args, {f.name: f.read(args) for f in self.fields}

    def read(self, arguments: Mapping[str, Any], ctx: Context | None = None) -> dict[str, Any]:
        """The values; one 422 for every bad field; unknown fields logged to ``ctx``."""
        args, values = self.arguments(arguments)
        args.check()
        if ctx is not None:
            _args.warn_unknown(arguments, self.names, ctx)
        return values

    def schema(self) -> dict[str, Any]:
        """The input's JSON schema, as fal's OpenAPI documents carry it."""
        return {
            "type": "object",
            "title": self.title,
            "properties": {f.name: f.schema() for f in self.fields},
            "required": [f.name for f in self.fields if f.required],
            "x-fal-order-properties": [f.name for f in self.fields],
        }


#: fal's File, as its outputs carry one (``url`` always; the rest when known).
FILE: dict[str, Any] = {
    "type": "object",
    "title": "File",
    "required": ["url"],
    "properties": {
        "url": {"type": "string"},
        "content_type": {"type": "string"},
        "file_name": {"type": "string"},
        "file_size": {"type": "integer"},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
    },
}


def output_schema(title: str, **properties: dict[str, Any]) -> dict[str, Any]:
    """An app's output schema: every listed property is always present."""
    return {
        "type": "object",
        "title": title,
        "properties": properties,
        "required": list(properties),
        "x-fal-order-properties": list(properties),
    }


def image_output(title: str) -> dict[str, Any]:
    """fal's image models' output: ``{images, timings, seed, has_nsfw_concepts, prompt}``."""
    return output_schema(
        title,
        images={"type": "array", "items": FILE},
        timings={"type": "object"},
        seed={"type": "integer"},
        has_nsfw_concepts={"type": "array", "items": {"type": "boolean"}},
        prompt={"type": "string"},
    )


def media_output(title: str, field: str) -> dict[str, Any]:
    """One generated file and how it was made: ``{<field>: File, seed, timings, prompt}``."""
    return output_schema(
        title,
        **{field: FILE},
        seed={"type": "integer"},
        timings={"type": "object"},
        prompt={"type": "string"},
    )


#: What fal's image models take after their own fields: the format, data URIs instead of CDN
#: URLs, and the flux fields a local painter accepts and ignores.
IMAGE_OPTIONS: tuple[Field, ...] = (
    Choice("output_format", "The image format", choices=("jpeg", "png"), default="jpeg"),
    Flag("sync_mode", "Return the images as data URIs instead of CDN URLs"),
    Ignored("guidance_scale"),
    Ignored("enable_safety_checker", type="boolean"),
    Ignored("acceleration", type="string"),
    Ignored("negative_prompt", type="string"),
)

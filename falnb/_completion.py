"""Tab completion and Shift-Tab inspection for ``%fal`` / ``%%fal``, from endpoints' schemas.

Tab completes endpoint ids after ``%fal `` and ``%%fal `` (the local server's, and those this
session has used), argument names after ``%fal ENDPOINT `` (``name=``) and at the start of a
``%%fal`` body line (``name: ``), and a field's choices after ``name=`` / ``name: ``.
Shift-Tab on an argument name shows its description, type, default and limits. Both go
through IPython's completer (a v2 matcher) and the kernel's inspect handler, and answer
nothing, never an error, when a schema cannot be had.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from falnb._magic_parse import SUBCOMMANDS
from falnb.schemas import EndpointSchema, describe
from falnb.session import Session, default_session

__all__ = ["Spot", "candidates", "field_doc", "install", "spot"]

_LINE = re.compile(r"^\s*%fal[ \t]+(.*)$")
_CELL = re.compile(r"^\s*%%fal[ \t]+(\S+)")
_CELL_START = re.compile(r"^\s*%%fal[ \t]+(\S*)$")
_BODY_KEY = re.compile(r"^([A-Za-z_][\w.-]*)$")
_BODY_VALUE = re.compile(r"^([A-Za-z_][\w.-]*)\s*:\s*(\S*)$")
_WORD = re.compile(r"[\w./-]+")


@dataclass(frozen=True)
class Spot:
    """What the cursor is on: an endpoint id, an argument name, or a field's value."""

    kind: Literal["endpoint", "argument", "value"]
    endpoint: str = ""
    field: str = ""
    body: bool = False
    """In a ``%%fal`` body (``name: value``) rather than on a ``%fal`` line (``name=value``)."""


def spot(text: str) -> Spot | None:
    """Where ``text`` (the cell up to the cursor) asks for a completion, or None."""
    lines = text.split("\n")
    if len(lines) == 1:
        if _CELL_START.match(lines[0]):
            return Spot("endpoint")
        line = _LINE.match(lines[0])
        if line is None:
            return None
        words = line[1].split()
        current = "" if not line[1] or line[1][-1].isspace() else words[-1]
        if words[:1] == ["form"]:  # %fal form ENDPOINT: the id, then %%fal options only
            words = words[1:]
            if len(words) == 0 or (len(words) == 1 and current):
                return Spot("endpoint")
            return None
        if len(words) == 0 or (len(words) == 1 and current):
            return Spot("endpoint")
        endpoint = words[0]
        if endpoint in SUBCOMMANDS or endpoint.startswith("-") or current.startswith("-"):
            return None
        if "=" in current:
            return Spot("value", endpoint, current.split("=", 1)[0])
        return Spot("argument", endpoint)
    cell = _CELL.match(lines[0])
    if cell is None or cell[1] in SUBCOMMANDS:
        return None
    last = lines[-1]
    if last == "" or _BODY_KEY.match(last):
        return Spot("argument", cell[1], body=True)
    value = _BODY_VALUE.match(last)
    if value is not None:
        return Spot("value", cell[1], value[1], body=True)
    return None


def _schema(session: Session, endpoint: str) -> EndpointSchema | None:
    try:
        return session.schemas.get(session.client_for(session.config.target), endpoint)
    except Exception:  # noqa: BLE001 - completion answers nothing rather than an error
        return None


def _endpoint_ids(session: Session) -> list[str]:
    from falnb.local.apps import default_registry  # the local endpoints

    ids = set(default_registry().ids())
    ids.update(schema.endpoint_id for schema in session.schemas)
    with contextlib.suppress(Exception):  # an unreadable lock just adds nothing
        ids.update(entry.endpoint for entry in session.recorder.lock.entries().values())
    return sorted(ids)


def _choices(field: dict[str, Any], schema: EndpointSchema) -> list[str]:
    found: list[str] = []
    for branch in [field, *field.get("anyOf", []), *field.get("oneOf", [])]:
        resolved = schema.resolve(branch)
        found += [str(v) for v in resolved.get("enum", [])]
        if resolved.get("type") == "boolean":
            found += ["true", "false"]
    return list(dict.fromkeys(found))


def candidates(text: str, token: str, session: Session | None = None) -> list[str]:
    """The completions of ``token`` for the cell ``text`` up to the cursor."""
    where = spot(text)
    if where is None:
        return []
    session = session or default_session()
    if where.kind == "endpoint":
        return [i for i in _endpoint_ids(session) if i.startswith(token)]
    schema = _schema(session, where.endpoint)
    if schema is None:
        return []
    if where.kind == "argument":
        used = set(re.findall(r"(?m)^([A-Za-z_][\w.-]*)\s*:", text)) if where.body else set()
        used |= set(re.findall(r"\s([A-Za-z_][\w.-]*)=", text)) if not where.body else set()
        suffix = ": " if where.body else "="
        return [
            f"{name}{suffix}"
            for name, _ in schema.fields()
            if name.startswith(token) and name not in used
        ]
    field = schema.field(where.field)
    return [c for c in _choices(field or {}, schema) if c.startswith(token)]


def field_doc(code: str, cursor: int, session: Session | None = None) -> str | None:
    """Shift-Tab's text for the word at ``cursor`` in a ``%fal`` / ``%%fal`` cell, or None."""
    lines = code.split("\n")
    row = code.count("\n", 0, cursor)
    line_start = code.rfind("\n", 0, cursor) + 1
    column = cursor - line_start
    line = lines[row]
    word = next((m[0] for m in _WORD.finditer(line) if m.start() <= column <= m.end()), "").split(
        "=", 1
    )[0]
    cell = _CELL.match(lines[0])
    magic = _LINE.match(line)
    endpoint = cell[1] if cell else (magic[1].split() or [""])[0] if magic else ""
    if not word or not endpoint or endpoint in SUBCOMMANDS:
        return None
    schema = _schema(session or default_session(), endpoint)
    if schema is None:
        return None
    if word == endpoint:
        return _endpoint_doc(schema)
    field = schema.field(word)
    return _field_text(schema, word, field) if field is not None else None


def _endpoint_doc(schema: EndpointSchema) -> str:
    about = schema.document.get("info", {}).get("description") or ""
    required = set(schema.input.get("required", []))
    rows = [f"{schema.endpoint_id}" + (f": {about}" if about else ""), "arguments:"]
    rows += [
        f"  {name}{' (required)' if name in required else ''}: {describe(field, schema)}"
        for name, field in schema.fields()
    ]
    return "\n".join(rows)


def _field_text(schema: EndpointSchema, name: str, field: dict[str, Any]) -> str:
    required = name in schema.input.get("required", [])
    rows = [f"{schema.endpoint_id} · {name}" + (" (required)" if required else "")]
    if field.get("description"):
        rows.append(str(field["description"]))
    rows.append(f"allowed: {describe(field, schema)}")
    if "default" in field:
        rows.append(f"default: {field['default']!r}")
    return "\n".join(rows)


# -- IPython ---------------------------------------------------------------------------------


def _matcher(context: Any) -> dict[str, Any]:
    from IPython.core.completer import SimpleCompletion

    # The context's text_until_cursor is the cursor's line only: a body needs the lines above.
    above = context.full_text.split("\n")[: context.cursor_line]
    try:
        found = candidates("\n".join([*above, context.text_until_cursor]), context.token)
    except Exception:  # noqa: BLE001 - completion never raises into the kernel
        found = []
    return {
        "completions": [SimpleCompletion(text, type="fal") for text in found],
        "suppress": bool(found),
        "ordered": True,
    }


_matcher.matcher_priority = 100  # type: ignore[attr-defined]
_matcher.matcher_identifier = "falnb"  # type: ignore[attr-defined]
_matcher.matcher_api_version = 2  # type: ignore[attr-defined]


def _inspector(original: Callable[..., Any]) -> Callable[..., Any]:
    def do_inspect(
        code: str, cursor_pos: int, detail_level: int = 0, omit_sections: Any = ()
    ) -> Any:
        try:
            text = field_doc(code, cursor_pos)
        except Exception:  # noqa: BLE001 - Shift-Tab falls back to IPython's own inspection
            text = None
        if text is None:
            return original(code, cursor_pos, detail_level, omit_sections)
        return {"status": "ok", "found": True, "data": {"text/plain": text}, "metadata": {}}

    do_inspect.falnb = True  # type: ignore[attr-defined]
    return do_inspect


def install(shell: Any) -> None:
    """Add the completer matcher and (in a kernel) the Shift-Tab handler, once."""
    completer = getattr(shell, "Completer", None)
    if completer is not None and _matcher not in completer.custom_matchers:
        completer.custom_matchers.append(_matcher)
    kernel: Any = getattr(shell, "kernel", None)
    inspect = getattr(kernel, "do_inspect", None)
    if inspect is not None and not getattr(inspect, "falnb", False):
        kernel.do_inspect = _inspector(inspect)

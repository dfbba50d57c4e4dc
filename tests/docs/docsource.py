"""What the docs show, read from the docs themselves: README.md's code and ``%fal --help``.

The doc tests are parametrized over what these functions find, so a block, a code span or a
help form added to the docs is tested (or fails for want of a check) without touching a list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

_FENCE = re.compile(r"^```(\w*)\s*$")
_HEADING = re.compile(r"^#+\s+(.*?)\s*$")
_SPAN = re.compile(r"`([^`]+)`")
# A synopsis, not a command: placeholders (ENDPOINT, N, NAME), optional parts, alternatives.
_PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]*\b|\[|\.\.\.|\|")


@dataclass(frozen=True)
class Block:
    """One fenced code block of the README."""

    id: str  # "<section heading> #<n-th block in that section>"
    lang: str
    source: str


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def readme_blocks(text: str | None = None) -> list[Block]:
    """Every fenced code block, in order, named by its section and place in it."""
    blocks: list[Block] = []
    lines: list[str] = []
    section, lang, inside = "", "", False
    count: dict[str, int] = {}
    for line in (text if text is not None else readme_text()).splitlines():
        fence = _FENCE.match(line)
        if inside:
            if line.strip() == "```":
                count[section] = count.get(section, 0) + 1
                blocks.append(Block(f"{section} #{count[section]}", lang, "\n".join(lines)))
                inside = False
            else:
                lines.append(line)
        elif fence:
            lang, lines, inside = fence[1], [], True
        elif heading := _HEADING.match(line):
            section = heading[1]
    assert not inside, "README.md has an unclosed code fence"
    return blocks


def readme_prose(text: str | None = None) -> str:
    """The README without its fenced blocks (where the code spans live)."""
    out, inside = [], False
    for line in (text if text is not None else readme_text()).splitlines():
        if _FENCE.match(line) or (inside and line.strip() == "```"):
            inside = not inside
            continue
        if not inside:
            out.append(line)
    return "\n".join(out)


def readme_spans(prefix: str, text: str | None = None) -> list[str]:
    """Code spans of the prose that start with ``prefix`` (whitespace folded), in order, once."""
    found: list[str] = []
    for span in _SPAN.findall(readme_prose(text)):
        folded = " ".join(span.split())
        if folded.startswith(prefix) and folded not in found:
            found.append(folded)
    return found


def is_synopsis(span: str) -> bool:
    """True for ``falnb serve [--port N]``-like spans: a form to check, not a command to run."""
    return bool(_PLACEHOLDER.search(span))


# -- %fal --help ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HelpForm:
    """One form ``%fal --help`` shows: a synopsis (``%fal status [request_id]``), an option
    line (``--seed N|auto``), or an inline form of the text (``{name}``, ``$name``)."""

    text: str
    flags: tuple[str, ...] = ()  # the spellings an option line gives (-o, --out)
    choices: tuple[str, ...] = ()  # literal alternatives of its value (once, refresh, ...)


_OPTION_LINE = re.compile(r"^\s+(-.*?)(?:\s{2,}|$)")
_FLAG = re.compile(r"(?<![\w-])(--?[a-z][\w-]*)")
_INLINE_FORM = re.compile(r"\{name\}|\$name")


def help_forms(usage: str) -> list[HelpForm]:
    """The forms of a ``%fal --help`` text, in the order it shows them."""
    forms: list[HelpForm] = []
    in_options = False
    for line in usage.splitlines():
        if line.startswith(("%%fal", "%fal")):
            synopsis = re.split(r"\s{2,}", line.strip())[0]
            first, *more = (part.strip() for part in synopsis.split(" | "))
            forms.append(HelpForm(first))
            forms += [HelpForm(f"%fal {part}") for part in more]
        elif line.strip().endswith(":") and not line.startswith(" "):
            # "options:" and "sweeps (...):" both list option lines
            in_options = line.strip() == "options:" or line.startswith("sweeps")
        elif in_options and (option := _OPTION_LINE.match(line)):
            text = option[1].strip()
            flags = tuple(_FLAG.findall(text))
            value = text.split()[-1] if not text.split()[-1].startswith("-") else ""
            choices = tuple(c for c in value.split("|") if "|" in value and c.islower())
            forms.append(HelpForm(text, flags, choices))
        else:
            forms += [HelpForm(m) for m in _INLINE_FORM.findall(line)]
    return list(dict.fromkeys(forms))

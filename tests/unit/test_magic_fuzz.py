"""Property-based fuzzing of ``%%fal`` / ``%fal`` through the magic itself (hypothesis).

Whatever the line and body, the magic ends in one of three ways: a value, a one-line
UsageError (the user's mistake: nothing was sent), or a FalCellError (the server's answer).
Never another exception (a falnb traceback), never a hang, never a placeholder on the wire,
and a reference to an undefined name is never sent. Each example is bounded in time by an
alarm; the server's journal says what was sent.
"""

from __future__ import annotations

import contextlib
import json
import signal
import string
from collections.abc import Iterator
from typing import Any

import yaml
from hypothesis import event, example, given
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import falnb.session
from falnb.local import LocalServer
from falnb.magics import FalCellError
from falnb.session import SessionConfig

EXAMPLE_SECONDS = 8.0
NAMESPACE: dict[str, Any] = {
    "n": 3,
    "name": "fox",
    "season": "winter",
    "d": {"k": "v", "list": [1, 2]},
    "xs": [1, 2, 3],
    "data": b"\x89PNG-bytes",
    "nothing": None,
}


class _Overran(Exception):
    pass


@contextlib.contextmanager
def _bounded(seconds: float) -> Iterator[None]:
    """Interrupt the main thread if the block runs past ``seconds`` (a hang is a failure)."""

    def overran(_signum: int, _frame: Any) -> None:
        raise _Overran(f"the magic ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, overran)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _sent(server: LocalServer) -> list[Any]:
    """Run and queue submissions the server received (POSTs that are not under /_falnb)."""
    return [
        e
        for e in server.journal.entries(method="POST")
        if e.role in ("run", "queue") and "/requests/" not in e.path
    ]


def _run(shell: InteractiveShell, server: LocalServer, line: str, cell: str | None) -> str:
    """Run the magic; return 'ok', 'usage' or 'failed'; check what reached the server."""
    server.journal.clear()
    shell.user_ns.update(NAMESPACE)
    # `%fal config ...` examples change the session: each example starts from the same one.
    falnb.session.default_session().config = SessionConfig(record="off")
    refused: BaseException | None = None
    try:
        with _bounded(EXAMPLE_SECONDS):
            if cell is None:
                shell.run_line_magic("fal", line)
            else:
                shell.run_cell_magic("fal", line, cell)
    except (UsageError, FalCellError) as exc:
        refused = exc
    # Anything else propagates: an internal traceback fails the test, with the example.
    outcome = "usage" if isinstance(refused, UsageError) else "failed" if refused else "ok"
    event(outcome)
    message = str(refused or "")
    assert "__falnb" not in message
    if outcome == "usage":
        assert message.count("\n") <= 1, f"not one line: {message!r}"
        assert _sent(server) == [], f"a usage error was sent anyway: {line!r} {cell!r}"
    for entry in _sent(server):
        assert "__falnb" not in json.dumps(entry.body, default=str)
    return outcome


# -- strategies ---------------------------------------------------------------------------------

NAMES = st.sampled_from(["prompt", "seed", "n", "image_url", "steps", "x", "a.b", "my-key"])
REFERENCES = st.sampled_from(
    [
        "{n}",
        "{name}",
        "{d['k']}",
        '{d["list"][1]}',
        "{xs[-1]}",
        "{data}",
        "{nothing}",
        "$name",
        "$$",
        "{{name}}",
        "{undefined_a}",
        "$undefined_b",
        "{d['undefined_c']}",
        "{n.undefined_d}",
        "{",
        "}",
        "{}",
        "{ name }",
    ]
)
WORDS = st.text(
    alphabet=string.ascii_letters + string.digits + " _-.:/,#&*!|>'\"[]{}()$%@`\\\t\n",
    max_size=20,
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=15),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES, inner, max_size=4),
    max_leaves=12,
)
FRAGMENTS = st.one_of(WORDS, REFERENCES)
TEXT_WITH_REFERENCES = st.lists(FRAGMENTS, max_size=8).map("".join)


@st.composite
def bodies(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["yaml", "json", "text", "mutated", "hostile"]))
    if kind == "text":
        return draw(TEXT_WITH_REFERENCES)
    mapping = draw(st.dictionaries(NAMES, JSON_VALUES | REFERENCES, max_size=5))
    if kind == "json":
        text = json.dumps(mapping)
    else:
        text = yaml.safe_dump(mapping, allow_unicode=True, width=1000) if mapping else ""
    if kind in ("mutated", "json"):
        # Splice fragments (references, braces, quotes) in at random places.
        for _ in range(draw(st.integers(0, 4))):
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(FRAGMENTS) + text[at:]
    if kind == "hostile":
        depth = draw(st.integers(1, 3000))
        text = draw(
            st.sampled_from(
                [
                    "x: " + "[" * depth + "]" * depth,
                    "x: " + "{a: " * depth + "1" + "}" * depth,
                    "a: &a [x, x]\n"
                    + "".join(
                        f"a{i}: &a{i} [*a{i - 1 if i else ''}, *a{i - 1 if i else ''}]\n"
                        for i in range(min(depth, 60))
                    ),
                    "a: &a [*a]",
                    "x: 1" + "0" * depth,
                    "x: !!python/object/apply:os.system [echo]",
                ]
            )
        )
    return text


OPTIONS = st.sampled_from(
    [
        "--seed 3",
        "--seed {n}",
        "--seed $n",
        "--seed -1",
        "--seed x",
        "--seed auto",
        "--timeout 30",
        "--timeout 0",
        "--timeout nan",
        "--no-wait",
        "--stream",
        "--logs",
        "--no-logs",
        "-q",
        "--quiet",
        "--target local",
        "--target mars",
        "--record off",
        "--record bogus",
        "-o out",
        "-o 1x",
        "-o {name}",
        "--bogus",
        "-",
        "--",
        "'",
        '"',
    ]
)
ENDPOINTS = st.one_of(
    st.just("local/echo"),  # most lines name a real endpoint, so their calls go through
    st.just("local/echo"),
    st.sampled_from(["$ep", "{ep}", "local/../x", "a", "/", "", "local/nope"]),
    # Subcommands too (realtime lines have their own test: a widget here would connect).
    st.sampled_from(["config", "status", "endpoints", "help", "--help"]),
    WORDS,
)


@st.composite
def lines(draw: st.DrawFn) -> str:
    parts = [draw(ENDPOINTS)]
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            value = draw(st.one_of(TEXT_WITH_REFERENCES, SCALARS.map(str)))
            quote = draw(st.sampled_from(["", "'", '"']))
            parts.append(f"{draw(NAMES)}={quote}{value}{quote}")
        else:
            parts.append(draw(OPTIONS))
    return " ".join(parts)


# -- properties ---------------------------------------------------------------------------------


@given(line=lines(), cell=st.none() | bodies())
@example(line="local/echo", cell='{"a": {name}}')
@example(line="local/echo --seed {n}", cell="prompt: {undefined_var}")
@example(line="local/echo", cell="[" * 5000 + "]" * 5000)
def test_the_magic_ends_in_a_value_or_one_readable_line(
    shell: InteractiveShell, server: LocalServer, line: str, cell: str | None
) -> None:
    shell.user_ns["ep"] = "local/echo"
    _run(shell, server, line, cell)


@given(
    mapping=st.dictionaries(NAMES, JSON_VALUES, min_size=1, max_size=4),
    undefined=st.sampled_from(["{undefined_x}", "{undefined_x.y}", "$undefined_z"]),
    inside=st.booleans(),
    data=st.data(),
)
def test_an_undefined_reference_is_never_sent(
    shell: InteractiveShell,
    server: LocalServer,
    mapping: dict[str, Any],
    undefined: str,
    inside: bool,
    data: st.DataObject,
) -> None:
    """A misspelt name anywhere a value goes, line or body, whole or inside text."""
    key = data.draw(st.sampled_from(sorted(mapping)))
    reference = f"a {undefined} b" if inside else undefined
    if undefined.startswith("$"):  # $name is a line form
        assert _run(shell, server, f"local/echo x=1 {key}='{reference}'", None) == "usage"
        return
    body = "\n".join(f"{k}: {reference if k == key else json.dumps(v)}" for k, v in mapping.items())
    assert _run(shell, server, "local/echo", body) == "usage"
    assert _run(shell, server, f"local/echo {key}={undefined}", None) == "usage"


REALTIME_NAMES = ["prompt", "seed", "strength", "image_url", "steps", "x", "y", "z", "a.b"]
REALTIME_VALID = st.sampled_from(
    [
        *("(0.0, 1.0, 0.05)", "(0, 10)", '"a fox"', "'{name} at $season'", "[1, 2]", "True"),
        *("{data}", "$name", "{d['k']}", "{xs[-1]}", "None", "3", "'{{literal}}'"),
    ]
)
REALTIME_INVALID = st.sampled_from(
    [
        *("(1, 0)", "(", "{", "9" * 5000, "(" * 300 + ")" * 300, "{xs[9]}", "[]", "1e999"),
        *("{undefined_r}", "'a {undefined_r}'", "$undefined_r", "{d['undefined_r']}"),
    ]
)
REALTIME_VALUES = st.one_of(
    REALTIME_VALID,
    REALTIME_VALID,
    REALTIME_VALID,
    REALTIME_INVALID,
    WORDS.map(lambda w: w.replace("\n", " ")),  # a magic's line has no newline
)


@given(
    pairs=st.lists(
        st.tuples(st.sampled_from(REALTIME_NAMES), REALTIME_VALUES),
        max_size=4,
        unique_by=lambda p: p[0],
    ),
    endpoint=st.sampled_from(["local/image-to-image", "local/realtime-echo", "x", "a/b/c", ""]),
)
def test_realtime_lines_give_a_spec_or_one_readable_line(
    pairs: list[tuple[str, str]], endpoint: str
) -> None:
    from falnb.widgets._realtime_spec import parse_realtime_line

    line = " ".join([endpoint, *(f"{name}={value}" for name, value in pairs)])
    refused: ValueError | None = None
    with _bounded(EXAMPLE_SECONDS):
        try:
            spec = parse_realtime_line(line, NAMESPACE)
        except ValueError as exc:
            refused = exc
    event("refused" if refused else "parsed")
    if refused is not None:
        assert "__falnb" not in str(refused)
        assert "\n" not in str(refused), str(refused)
        return
    assert "undefined_r" not in repr(spec.base)


@given(text=TEXT_WITH_REFERENCES)
def test_placeholders_map_back_to_what_the_user_wrote(text: str) -> None:
    """Messages quote the user's own text: marking then un-marking changes nothing."""
    from falnb._references import InterpolationError, Template, substitute_text

    template = Template(NAMESPACE)
    marked = template.mark(text)
    assert template.source(marked) == text
    try:
        expected: str | None = substitute_text(text, NAMESPACE)
    except InterpolationError:
        expected = None
    try:
        got: str | None = template.text(marked)
    except InterpolationError:
        got = None
    assert got == expected

"""The %%fal line/body parser: typed arguments, options, and one-line usage errors."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from falnb.magics import Invocation, Options, Subcommand, parse


def test_yaml_body_with_typed_interpolation(tmp_path: Path) -> None:
    path = tmp_path / "fox.png"
    path.write_bytes(b"\x89PNG")
    call = parse(
        "local/image-to-image --seed 5 -o r", "image_url: {img}\nsteps: {n}", {"img": path, "n": 4}
    )
    assert call == Invocation(
        "local/image-to-image", {"image_url": path, "steps": 4}, Options(out="r", seed=5)
    )


def test_plain_text_becomes_prompt_and_line_assignments_win() -> None:
    call = parse(
        "local/echo seed=3 --no-wait --seed auto", "a red fox: at {when}", {"when": "dawn"}
    )
    assert isinstance(call, Invocation)
    assert call.arguments == {"prompt": "a red fox: at dawn", "seed": 3}
    assert call.options.wait is False
    assert call.options.seed == "auto"


def test_dollar_and_json_body() -> None:
    call = parse("$ep --timeout 2.5 --no-logs", '{"prompt": "x", "n": 2}', {"ep": "local/echo"})
    assert isinstance(call, Invocation)
    assert call.endpoint == "local/echo"
    assert call.arguments == {"prompt": "x", "n": 2}
    assert call.options.timeout == 2.5
    assert call.options.logs is False


def test_subcommands() -> None:
    assert parse("--help", None, {}) == Subcommand("help")
    assert parse("config record=refresh", None, {}) == Subcommand(
        "config", "record=refresh", ("record=refresh",)
    )


@pytest.mark.parametrize(
    ("line", "cell", "message"),
    [
        ("local/echo --bogus", None, "unknown option --bogus"),
        ("local/echo --seed x", None, "--seed takes a whole number"),
        ("nope", None, "is not an endpoint id"),
        ("local/echo", "prompt: [1,\nseed: 2", "not valid YAML"),
        ("local/echo --target mars", None, "invalid choice"),
        ("local/echo -o 1x", None, "variable name"),
        ("", "prompt: a fox", "%%fal needs an endpoint"),
        ("endpoints local", None, "takes nothing after it"),
    ],
)
def test_usage_errors(line: str, cell: str | None, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(line, cell, {})
    assert message in str(info.value)


# -- {name} and $name ---------------------------------------------------------------------------


class _Photo:
    size = (4, 3)

    def __str__(self) -> str:
        return "<photo>"


NAMESPACE = {
    "s": 42,
    "rid": "req-123",
    "name": "fox",
    "season": "winter",
    "n": 3,
    "d": {"k": "v", "nested": {"deep": [10, 20]}},
    "photo": _Photo(),
    "args": {"prompt": "from a dict", "seed": 7},
    "data": b"\x89PNG...",
}


def _arguments(line: str, cell: str | None = None) -> dict[str, object]:
    call = parse(line, cell, NAMESPACE)
    assert isinstance(call, Invocation)
    return call.arguments


def test_references_in_options_and_subcommands_are_their_text() -> None:
    call = parse("local/echo --seed {s} --timeout $n -o out", None, NAMESPACE)
    assert isinstance(call, Invocation)
    assert call.options == Options(out="out", seed=42, timeout=3.0)
    assert parse("status {rid}", None, NAMESPACE) == Subcommand("status", "req-123", ("req-123",))
    assert parse("status $rid", None, NAMESPACE) == Subcommand("status", "req-123", ("req-123",))


def test_a_realtime_line_is_left_for_the_realtime_parser() -> None:
    line = (
        'realtime local/image-to-image strength=(0.0, 1.0, 0.05) prompt="a fox" image_url={photo}'
    )
    assert parse(line, None, NAMESPACE) == Subcommand("realtime", line[len("realtime ") :])


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('{"a": {name}}', {"a": "fox"}),
        ("nested: {k: {name}}", {"nested": {"k": "fox"}}),
        ('{"a": {"b": {"c": {n}}}}', {"a": {"b": {"c": 3}}}),
        ('{"a": {"b": 1}}', {"a": {"b": 1}}),  # JSON's own closing braces stay JSON
        ("prompt: a fox in {season}\nn: {n}", {"prompt": "a fox in winter", "n": 3}),
        ("q: \"{n}\"\nr: '{n}'", {"q": "3", "r": "3"}),  # quoted: text, not a number
        ('{"prompt": "in {season}", "n": {n}}', {"prompt": "in winter", "n": 3}),
        ('k: {d[\'k\']}\ndeep: {d["nested"]["deep"][-1]}', {"k": "v", "deep": 20}),
        ("size: {photo.size}", {"size": (4, 3)}),
        (
            "prompt: a {{style}} painting\nraw: {{style}}",
            {"prompt": "a {style} painting", "raw": "{style}"},
        ),
        ('prompt: "{a b} and { name } and {}"', {"prompt": "{a b} and { name } and {}"}),
        ("# {not_defined} in a comment costs nothing\nprompt: x", {"prompt": "x"}),
        ("{args}", {"prompt": "from a dict", "seed": 7}),  # a whole-body dict is the arguments
        ("a red fox at {season}: in snow", {"prompt": "a red fox at winter: in snow"}),
        ("date: 2024-01-01", {"date": "2024-01-01"}),  # stays text, as fal's APIs take it
    ],
)
def test_body_references(cell: str, expected: dict[str, object]) -> None:
    assert _arguments("local/echo", cell) == expected


def test_line_references_keep_types_as_whole_values_and_are_text_inside_strings() -> None:
    arguments = _arguments(
        "local/echo prompt=$season count={n} p2=\"a {name} b\" q='{n}' cost='$$5' img={data}"
    )
    assert arguments == {
        "prompt": "winter",
        "count": 3,
        "p2": "a fox b",
        "q": "3",
        "cost": "$5",
        "img": b"\x89PNG...",
    }
    # $name holding spaces is one value, not split into words
    call = parse("local/echo prompt=$v", None, {"v": "a red fox"})
    assert isinstance(call, Invocation)
    assert call.arguments == {"prompt": "a red fox"}


@pytest.mark.parametrize(
    ("line", "cell", "message"),
    [
        ("local/echo", "prompt: {undefined_var}", "no variable 'undefined_var'"),
        ("local/echo", "prompt: a {seasn} fox", "(did you mean season?)"),
        ("local/echo", "prompt: {seasn}", "write {{seasn}} for the literal text"),
        ("local/echo", "{undefined_var}", "no variable 'undefined_var'"),
        ("local/echo", '{"a": {nope}}', "no variable 'nope'"),
        ("local/echo prompt=$nope", None, "write $$nope for the literal text"),
        ("local/echo --seed {nope}", None, "no variable 'nope'"),
        ("status {nope}", None, "no variable 'nope'"),
        ("local/echo", "x: {photo.nope}", "_Photo has no attribute 'nope'"),
        ("local/echo", "x: {d['zz']}", "dict has no item 'zz'"),
        ("local/echo", "x: {n[0]}", "int has no item 0"),
    ],
)
def test_a_reference_to_nothing_is_one_line_never_a_null(
    line: str, cell: str | None, message: str
) -> None:
    with pytest.raises(UsageError) as info:
        parse(line, cell, NAMESPACE)
    assert message in str(info.value)
    assert "__falnb" not in str(info.value)
    assert str(info.value).count("\n") <= 1


# -- bodies within bounds -----------------------------------------------------------------------

BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{b}: &{b} [{', '.join(['*' + a] * 9)}]" for a, b in pairwise("abcdefghi")]
)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (BOMB, "more than 100,000 values once its aliases are expanded"),
        ("a: &a [*a]", "inside its own anchor"),
        ("x: " + "[" * 100 + "]" * 100, "nest deeper than 64"),
        ("x: " + "[" * 50_000 + "]" * 50_000, "nest deeper than 64"),
        ("x:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 80)), "nest deeper than 64"),
        ("x: " + "{a: " * 80 + "1" + "}" * 80, "nest deeper than 64"),
        ("prompt: a\nprompt: b", "the key 'prompt' is given twice"),
        ("x: .nan", "nan is not a number JSON can carry"),
        ('{"x": -.inf}', "-inf is not a number"),
        ("x: !!set {a, b}", "a set"),
        ("x: 1" + "0" * 5000, "Exceeds the limit"),
        ("x: !!python/object/apply:os.system [ls]", "could not determine a constructor"),
        ("prompt: " + "x" * 300_000, "more than the 256 KiB falnb reads"),
        ("{1: a}", "must be a mapping of argument names"),
        ("[1, 2]", "must be a mapping of argument names"),
    ],
)
def test_bodies_beyond_bounds_are_one_line(cell: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse("local/echo", cell, {})
    assert message in str(info.value)


def test_line_values_within_bounds() -> None:
    with pytest.raises(UsageError, match="nest deeper"):
        parse("local/echo x=" + "[" * 100 + "]" * 100, None, {})
    with pytest.raises(UsageError, match="is given twice"):
        parse("local/echo a=1 a=2", None, {})
    with pytest.raises(UsageError, match="not an argument name"):
        parse("local/echo 1a=2", None, {})
    # Not YAML at all: the text as written (as before).
    assert _arguments("local/echo x=[unclosed") == {"x": "[unclosed"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("local/../x", "not an endpoint id"),
        ("local/echo#frag", "not an endpoint id"),
        ("local/echo -o class", "variable name"),
        ("local/echo --timeout inf", "positive number of seconds"),
        ("local/echo x={d}", None),
    ],
)
def test_line_mistakes(line: str, message: str | None) -> None:
    if message is None:
        assert _arguments(line) == {"x": NAMESPACE["d"]}
        return
    with pytest.raises(UsageError) as info:
        parse(line, None, NAMESPACE)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "x is nan, which JSON cannot carry"),
        ({1: "a"}, "JSON keys are text"),
        ({"when": object()}, "x.when is a object, which cannot be sent"),
        ([1, {1, 2}], "x[1] is a set"),
        (Path("no-such-photo.png"), "x is a path to no file (no-such-photo.png)"),
        ({"p": ["a\ud800"]}, "x.p[0] holds a lone surrogate"),
    ],
)
def test_values_with_no_json_form_are_refused_before_sending(value: object, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse("local/echo x={v}", None, {"v": value})
    assert message in str(info.value)


def test_a_value_that_holds_itself_is_refused() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(UsageError, match="holds itself"):
        parse("local/echo", "x: {v}", {"v": loop})


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        # YAML 1.1 (PyYAML's own reading) would send 969, True, 8 and a date object.
        ("aspect_ratio: 16:9", {"aspect_ratio": "16:9"}),
        ("safety: yes\nmode: off", {"safety": "yes", "mode": "off"}),
        ("steps: 010\nn: 1_000", {"steps": 10, "n": "1_000"}),
        ("t: 12:30:00\nd: 2024-01-01", {"t": "12:30:00", "d": "2024-01-01"}),
        # ... and what JSON reads stays typed.
        (
            "a: true\nb: null\nc: ~\nd: 1e3\ne: 0x10\nf: -2.5",
            {"a": True, "b": None, "c": None, "d": 1000.0, "e": 16, "f": -2.5},
        ),
        ('{"n": 1E+2, "list": [true, false, null]}', {"n": 100.0, "list": [True, False, None]}),
        (
            "base: &b {steps: 4}\nrun:\n  <<: *b\n  seed: 1",
            {"base": {"steps": 4}, "run": {"steps": 4, "seed": 1}},
        ),
    ],
)
def test_bodies_read_plain_words_as_json_would(cell: str, expected: dict[str, object]) -> None:
    assert _arguments("local/echo", cell) == expected


def test_line_values_read_plain_words_as_json_would() -> None:
    assert _arguments("local/echo aspect_ratio=16:9 safety=no n=3 x=1.5 ok=true") == {
        "aspect_ratio": "16:9",
        "safety": "no",
        "n": 3,
        "x": 1.5,
        "ok": True,
    }

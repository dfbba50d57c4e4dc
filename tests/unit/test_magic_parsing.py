"""The %%fal line/body parser: typed arguments, options, and one-line usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError

from falnb.magics import Invocation, Options, Subcommand, parse


def test_yaml_body_with_typed_interpolation() -> None:
    path = Path("fox.png")
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
    ],
)
def test_usage_errors(line: str, cell: str | None, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(line, cell, {})
    assert message in str(info.value)

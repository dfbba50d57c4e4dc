"""Where the cursor asks for a completion in a %fal line or a %%fal cell (no kernel needed)."""

from __future__ import annotations

import pytest

from falnb._completion import Spot, spot


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("%fal ", Spot("endpoint")),
        ("%fal local/te", Spot("endpoint")),
        ("%%fal local/te", Spot("endpoint")),
        ("%fal local/llm ", Spot("argument", "local/llm")),
        ("%fal local/llm prompt=hi max", Spot("argument", "local/llm")),
        ("%fal local/llm max_tokens=", Spot("value", "local/llm", "max_tokens")),
        ("%%fal local/llm\n", Spot("argument", "local/llm", body=True)),
        ("%%fal local/llm -o r\nprompt: hi\nsys", Spot("argument", "local/llm", body=True)),
        ("%%fal local/llm\nmodel: lo", Spot("value", "local/llm", "model", body=True)),
        # Not falnb's to complete: options, subcommands, indented or flowing text, Python.
        ("%fal local/llm --tar", None),
        ("%fal config rec", None),
        ("%%fal local/llm\nprompt: a long text ", None),
        ("%%fal local/llm\n  nested", None),
        ("import fal", None),
    ],
)
def test_spot(text: str, expected: Spot | None) -> None:
    assert spot(text) == expected

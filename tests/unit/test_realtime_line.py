"""`%fal realtime` lines: references as whole values keep their type, inside quotes are text."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from PIL import Image

from falnb.widgets._realtime_spec import parse_realtime_line


class _Photos:
    def __init__(self) -> None:
        self.fox = Image.new("RGB", (8, 8), (200, 40, 90))


def test_whole_references_are_fixed_inputs_as_they_are() -> None:
    photos = _Photos()
    namespace = {"photos": photos, "cfg": {"seed": 3}, "styles": ["ink", "oil"], "name": "fox"}
    spec = parse_realtime_line(
        "local/image-to-image image_url={photos.fox} seed={cfg['seed']} style={styles[-1]} "
        "subject=$name",
        namespace,
    )
    assert spec.base == {"image_url": photos.fox, "seed": 3, "style": "oil", "subject": "fox"}
    assert spec.controls == {}


def test_references_inside_quoted_text_are_text_and_braces_can_be_literal() -> None:
    spec = parse_realtime_line(
        "local/x prompt='a {name} at $time' other=\"{{name}} costs $$5\" pick=['{name}', 'b']",
        {"name": "fox", "time": "dawn"},
    )
    assert spec.controls["prompt"].value == "a fox at dawn"
    assert spec.controls["other"].value == "{name} costs $5"
    assert list(spec.controls["pick"].options) == ["fox", "b"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "local/x image_url={phto}",
            "image_url={phto}: no variable 'phto' in the notebook (did you mean photo?)",
        ),
        ("local/x prompt='a {nope}'", "prompt={nope}: no variable 'nope'"),
        ("local/x image_url={photo.nope}", "has no attribute 'nope'"),
        ("local/x subject=$nope", "subject=$nope: no variable 'nope'"),
    ],
)
def test_a_reference_to_nothing_says_which(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"no variable|no attribute") as info:
        parse_realtime_line(line, {"photo": object()})
    assert message in str(info.value)


def test_the_magic_turns_a_bad_realtime_line_into_a_usage_error(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="no variable 'photo'"):
        shell.run_line_magic("fal", "realtime local/image-to-image image_url={photo}")
    with pytest.raises(UsageError, match="takes no cell body"):
        shell.run_cell_magic("fal", "realtime local/image-to-image", "strength: 1")

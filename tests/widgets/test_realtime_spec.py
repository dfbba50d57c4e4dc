"""``%fal realtime`` lines: interact-style abbreviations to controls and fixed inputs."""

from __future__ import annotations

from typing import Any

import pytest
from ipywidgets import Checkbox, Dropdown, FloatSlider, IntSlider, Text
from PIL import Image

from falnb.client import SyncClient
from falnb.local import LocalServer
from falnb.widgets._realtime_spec import parse_realtime_line
from falnb.widgets.realtime import Realtime, from_magic


def test_the_issue_example() -> None:
    img = object()
    spec = parse_realtime_line(
        'local/image-to-image strength=(0.0, 1.0, 0.05) prompt="a watercolor fox" '
        "image_url={img} seed=3",
        {"img": img},
    )
    assert spec.endpoint == "local/image-to-image"
    assert spec.base == {"image_url": img, "seed": 3}
    assert list(spec.controls) == ["strength", "prompt"]
    strength = spec.controls["strength"]
    assert isinstance(strength, FloatSlider)
    assert (strength.min, strength.max, strength.step) == (0.0, 1.0, 0.05)
    assert strength.value == pytest.approx(0.5)
    assert strength.description == "strength"
    prompt = spec.controls["prompt"]
    assert isinstance(prompt, Text)
    assert prompt.value == "a watercolor fox"


def test_each_abbreviation() -> None:
    spec = parse_realtime_line(
        "fal-ai/fast-lcm steps=(1, 9, 2) scale=(0, 10) style=['ink', 'oil'] "
        "safe=True seed=None guidance=7.5 neg='  spaced  out '",
        {},
    )
    steps, scale = spec.controls["steps"], spec.controls["scale"]
    assert isinstance(steps, IntSlider)
    assert (steps.min, steps.max, steps.step, steps.value) == (1, 9, 2, 5)
    assert isinstance(scale, IntSlider)
    assert scale.value == 5
    style = spec.controls["style"]
    assert isinstance(style, Dropdown)
    assert (list(style.options), style.value) == (["ink", "oil"], "ink")
    safe = spec.controls["safe"]
    assert isinstance(safe, Checkbox)
    assert safe.value is True
    assert spec.controls["neg"].value == "  spaced  out "
    assert spec.base == {"seed": None, "guidance": 7.5}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "no endpoint"),
        ("image-to-image strength=(0, 1)", "not an endpoint id"),
        ("local/x strength", "expected name=value"),
        ("local/x strength=", "has no value"),
        ("local/x strength=(0, 1", "missing ')'"),
        ("local/x strength=0, 1)", "part of strength's value"),
        ("local/x strength=0,1)", "unbalanced"),
        ('local/x prompt="unterminated', "unterminated string"),
        ("local/x prompt=a fox", "part of prompt's value"),
        ("local/x prompt=fox", "quote text"),
        ("local/x strength=(1, 0)", "min < max"),
        ("local/x strength=(0, 1, 0)", "step must be positive"),
        ("local/x strength=(0, 1, 2, 3)", "(min, max)"),
        ("local/x strength=('a', 'b')", "of numbers"),
        ("local/x style=[]", "at least one option"),
        ("local/x image_url={missing}", "no variable 'missing'"),
        ("local/x seed=1 seed=2", "given twice"),
    ],
)
def test_bad_lines_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_realtime_line(line, {})


def test_from_magic_builds_a_working_widget(
    server: LocalServer, until: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = SyncClient(server.target)
    created: list[Realtime] = []
    original = Realtime.__init__

    def with_client(self: Realtime, *args: Any, **kwargs: Any) -> None:
        kwargs["client"] = client  # the magic uses the default client; point it here
        original(self, *args, **kwargs)
        created.append(self)

    monkeypatch.setattr(Realtime, "__init__", with_client)
    picture = Image.new("RGB", (64, 64), (200, 40, 90))
    widget = from_magic(
        'local/image-to-image strength=(0.0, 1.0, 0.1) prompt="a fox" image={pic} seed=3',
        {"pic": picture},
    )
    try:
        assert created == [widget]
        assert widget.wait_for_frame(10)
        assert widget.last_frame is not None
        assert widget.last_frame.inputs == {"prompt": "a fox", "seed": 3, "strength": 0.5}
        widget.controls["strength"].value = 0.2
        until(
            lambda: widget.last_frame is not None and widget.last_frame.inputs["strength"] == 0.2,
            what="a frame for the dragged slider",
        )
    finally:
        widget.close()
        client.close()

"""Every form ``%fal --help`` shows runs, as typed, in a real kernel on the embedded default.

The forms are read from the help text itself (``docsource.help_forms``): a form added to the
help without an example here fails ``test_every_help_form_has_examples``, and so does an
option spelling or a literal choice (``--record off``) that no example types. All examples
run in one kernel, in the order of the help, each with an optional cell before it (state it
needs) and after it (kernel-side asserts on what it did).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from dockernel import Ran, make_fixtures, run_cells
from docsource import help_forms

from falnb.local.apps import builtin_endpoints
from falnb.magics import USAGE

pytestmark = pytest.mark.timeout(300)


@dataclass(frozen=True)
class Example:
    cell: str  # the form as a user types it
    check: Callable[[Ran], None]  # what its outputs must show
    before: str = ""  # a cell run first (its Ran is ran.before); must not fail
    after: str = ""  # kernel code asserting what the cell did; must not fail
    xfail: str = ""  # a bug another helper owns: strict, so it turns red once fixed


SETUP = """\
import pathlib
import falnb
from PIL import Image

photo = Image.open("photo.png")
photo_path = pathlib.Path("photo.png")
photo_bytes = photo_path.read_bytes()
photo_url = falnb.upload_file("photo.png")
season, n, s = "winter", 3, 5
"""


def arguments(expected: dict[str, object]) -> Callable[[Ran], None]:
    def check(ran: Ran) -> None:
        assert ran.ok().falnb["arguments"] == expected

    return check


def shows(*patterns: str) -> Callable[[Ran], None]:
    def check(ran: Ran) -> None:
        for pattern in patterns:
            assert re.search(pattern, ran.ok().text, re.MULTILINE), f"{pattern!r} not in {ran.text}"

    return check


def readable_error(*words: str) -> Callable[[Ran], None]:
    """One readable message naming ``words``: no falnb frames in what the user sees."""

    def check(ran: Ran) -> None:
        assert ran.error, f"{ran.source!r} should have failed: {ran.text}"
        for word in words:
            assert word in ran.error, f"{word!r} not in {ran.error}"
        assert "falnb/" not in ran.error, f"a falnb traceback:\n{ran.error}"

    return check


def miss_said_once(ran: Ran) -> None:
    """A record=none miss names the endpoint and says how to fix it, once."""
    readable_error("local/echo", "record=none")(ran)
    message = ran.error.split("\n")[0].lower()
    assert message.count("to record it") == 1, message


def replays_before(ran: Ran) -> None:
    assert ran.ok().falnb["request_id"] == ran.before.falnb["request_id"]


def refreshes_with_pinned_seed(ran: Ran) -> None:
    first, again = ran.before.falnb, ran.ok().falnb
    assert again["request_id"] != first["request_id"]  # called again ...
    assert isinstance(first["seed"], int)
    assert again["seed"] == first["seed"]  # ... with the pinned seed


def not_replayed(ran: Ran) -> None:
    assert ran.ok().falnb["request_id"] != ran.before.falnb["request_id"]


def status_lists_before(ran: Ran) -> None:
    request_id = ran.before.streams("stdout").strip()
    line = rf"^{request_id}  local/slow  (running|done)$"
    assert re.search(line, ran.ok().text, re.MULTILINE), ran.text


def live_then_job(ran: Ran) -> None:
    assert ran.ok().data("text/plain")[-1] == "<Job local/slow (--no-wait)>"
    # The live view stayed in the cell and kept updating after it returned: by the end of the
    # notebook it shows the result.
    assert ran.data("text/plain")[0].startswith("local/slow: JSON"), ran.text


def log_lines_shown(shown: bool) -> Callable[[Ran], None]:
    def check(ran: Ran) -> None:
        assert ran.ok().falnb["endpoint"] == "local/slow"
        logs = [u for u in ran.updates if re.search(r"^  step \d/3$", u, re.MULTILINE)]
        assert bool(logs) == shown, ran.updates
        # The bar is driven by the 'step i/N' log lines: no logs fetched, no bar.
        assert any("[####" in u and "step 3/3" in u for u in ran.updates) == shown, ran.updates

    return check


def quiet(ran: Ran) -> None:
    assert ran.ok().updates == []
    assert [o.output_type for o in ran.outputs] == ["display_data"]  # the result, only
    assert ran.falnb["endpoint"] == "local/slow"


def streamed(ran: Ran) -> None:
    shown = ran.ok().data("text/plain")[-1]
    assert shown.startswith("local/stream-text: text, 13 characters"), shown
    assert any("running" in u for u in ran.updates), ran.updates


def help_text(ran: Ran) -> None:
    assert ran.ok().streams("stdout").rstrip("\n") == USAGE


ENDPOINTS = sorted(e.endpoint_id for e in builtin_endpoints())


def realtime_frame(ran: Ran) -> None:
    """The widget's saved output: its text line and the first frame as a picture."""
    line = (
        r"^Realtime local/image-to-image \(strength=0\.5, prompt='a watercolor fox'.*\): last frame"
    )
    shows(line + r" \d+x\d+ image/jpeg$")(ran)
    assert ran.data("image/jpeg"), ran.outputs
    assert ran.data("application/vnd.jupyter.widget-view+json"), ran.outputs


RECORDED = "import json\nlock = json.loads(pathlib.Path('falnb.lock').read_text())\n"

EXAMPLES: dict[str, list[Example]] = {
    "%%fal ENDPOINT [options]": [
        Example(
            "%%fal local/text-to-image --seed 7\nprompt: a lighthouse at dusk\nimage_size: square",
            shows(r"^local/text-to-image: 1 image \(512x512\), seed 7$"),
        ),
        Example(
            "%%fal local/echo\na lighthouse, in fog", arguments({"prompt": "a lighthouse, in fog"})
        ),
        Example(
            '%%fal local/echo\n{"prompt": "json", "count": 2}',
            arguments({"prompt": "json", "count": 2}),
        ),
    ],
    "%fal ENDPOINT [key=value ...] [options]": [
        Example(
            "%fal local/echo prompt='a red fox' count=3 ratio=0.5 flag=true",
            arguments({"prompt": "a red fox", "count": 3, "ratio": 0.5, "flag": True}),
        ),
    ],
    "%fal endpoints": [Example("%fal endpoints", shows(*(rf"^  {e} " for e in ENDPOINTS)))],
    "%fal config [key=value ...]": [
        Example("%fal config", shows(r"^record = once", r"^lock file = falnb\.lock$", r"^media")),
        Example(
            "%fal config logs=false quiet=true",
            shows(r"^logs = False$", r"^quiet = True$"),
            after=(
                "config = falnb.default_session().config\n"
                "assert (config.logs, config.quiet) == (False, True), config\n"
                "config.logs, config.quiet = True, False"
            ),
        ),
    ],
    "%fal status [request_id]": [
        Example(
            "%fal status",
            status_lists_before,
            before=(
                "pending = get_ipython().run_line_magic("
                "'fal', 'local/slow duration=0.5 steps=1 --no-wait --quiet')\n"
                "print(pending.request_id)"
            ),
        ),
        Example(
            "%fal status $rid",
            status_lists_before,
            before="rid = pending.request_id\npending.result(timeout=30)\nprint(rid)",
        ),
    ],
    "%fal usage": [
        Example(
            "%fal usage",
            shows(r"^endpoint +requests +replayed \(free\) +units +cost$", r"^local/echo +\d+ "),
            before="%fal local/echo prompt='what it cost' --quiet",
        ),
    ],
    "%fal realtime ENDPOINT [name=value ...] [transport=auto|browser|kernel]": [
        Example(
            '%fal realtime local/image-to-image strength=(0.0, 1.0, 0.05) prompt="a watercolor fox"'
            ' image_url="$photo_url"',
            realtime_frame,
        ),
        Example(
            '%fal realtime local/image-to-image strength=(0.0, 1.0, 0.05) prompt="a watercolor fox"'
            ' image_url="$photo_url" transport=kernel',
            realtime_frame,
        ),
    ],
    "%fal seedcheck ENDPOINT [key=value ...] [--seed N]": [
        Example(
            "%fal seedcheck local/text-to-image prompt=fox num_inference_steps=2 --seed 3",
            shows(r"^local/text-to-image: the seed holds exactly"),
        ),
        Example("%fal seedcheck local/echo x=1", shows(r"^local/echo: ignores the seed")),
    ],
    "%fal form ENDPOINT [options]": [
        Example(
            "%fal form local/text-to-image --seed 7",
            shows(r"^falnb form: local/text-to-image$", r"^%%fal local/text-to-image --seed 7$"),
            after=(
                "form = _\n"
                "form.controls['prompt'].value = 'a fox from a form'\n"
                "form.controls['num_images'].value = 2\n"
                "done = form.run()\n"
                "assert (done.seed, len(done.images)) == (7, 2), form.message.value\n"
                "assert form.cell_text().splitlines()[1:] == "
                "['prompt: a fox from a form', 'num_images: 2'], form.cell_text()"
            ),
        ),
    ],
    "%fal --help": [Example("%fal --help", help_text)],
    "{name}": [
        Example(
            "%%fal local/echo\nprompt: a fox in {season}\ncount: {n}",
            arguments({"prompt": "a fox in winter", "count": 3}),
        ),
        Example(
            "%fal local/echo prompt={season} count={n}", arguments({"prompt": "winter", "count": 3})
        ),
        Example(
            "%fal local/echo image_url={photo_path} image={photo} data={photo_bytes}",
            # uploaded: each is now a URL on the embedded server's CDN
            shows(*(rf'"{k}": "[^"]+/_cdn/files/[^"]+"' for k in ("image_url", "image", "data"))),
        ),
        Example(
            "%fal local/echo prompt=seeded --seed {s}",
            arguments({"prompt": "seeded", "seed": 5}),
        ),
        Example("%fal status {rid}", status_lists_before, before="print(rid)"),
        Example(
            '%fal realtime local/image-to-image strength=(0.0, 1.0, 0.05) prompt="a watercolor fox"'
            " image_url={photo}",
            realtime_frame,
        ),
        Example(
            '%%fal local/echo\n{"a": {n}}',
            arguments({"a": 3}),
        ),
        Example(
            "%fal local/echo prompt={undefined_name}",
            readable_error("undefined_name"),
        ),
    ],
    "$name": [Example("%fal local/echo prompt=$season", arguments({"prompt": "winter"}))],
    "-o, --out NAME": [
        Example(
            "%%fal local/echo -o first\nprompt: one",
            arguments({"prompt": "one"}),
            after="assert first.json == {'prompt': 'one'}, first.json",
        ),
        Example(
            "%fal local/echo prompt=two --out second",
            arguments({"prompt": "two"}),
            after="assert second.json == {'prompt': 'two'}, second.json",
        ),
    ],
    "--seed N|auto": [
        Example(
            "%fal local/echo prompt=seeded --seed 11", arguments({"prompt": "seeded", "seed": 11})
        ),
        Example(
            "%fal local/echo prompt=auto-seeded --seed auto",
            lambda ran: arguments({"prompt": "auto-seeded", "seed": ran.falnb["seed"]})(ran),
        ),
    ],
    "--timeout S": [
        Example(
            "%fal local/slow duration=10 steps=20 --timeout 0.5",
            readable_error("0.5s", "cancelled"),
        ),
    ],
    "--no-wait": [
        Example(
            "%fal local/slow duration=0.6 steps=3 --no-wait -o job",
            live_then_job,
            after="assert job.result(timeout=30).json['steps'] == 3\nassert job.status() == 'done'",
        ),
    ],
    "--stream": [Example("%fal local/stream-text prompt='one two three' --stream", streamed)],
    "--logs / --no-logs": [
        Example("%fal local/slow duration=0.61 steps=3 --logs", log_lines_shown(shown=True)),
        Example("%fal local/slow duration=0.62 steps=3 --no-logs", log_lines_shown(shown=False)),
    ],
    "-q, --quiet": [
        Example("%fal local/slow duration=0.3 steps=2 -q", quiet),
        Example("%fal local/slow duration=0.31 steps=2 --quiet", quiet),
    ],
    "--target local|fal": [
        Example("%fal local/echo prompt=here --target local", arguments({"prompt": "here"})),
        Example("%fal local/echo prompt=there --target fal", readable_error("FAL_KEY")),
    ],
    "--no-validate": [
        Example(
            "%fal local/text-to-image prompt=fox num_images=9",
            readable_error("num_images", "from 1 to 4", "nothing was sent"),
        ),
        Example(
            "%fal local/text-to-image prompt=fox num_images=9 --no-validate",
            readable_error("422", "num_images"),
        ),
    ],
    "--sweep [KEYS]": [
        Example("%%fal local/echo --sweep\nprompt: [a, b]\nn: [1, 2]", shows(r"^sweep: 4 jobs")),
        Example(
            "%%fal local/echo --sweep prompt\nprompt: [c, d]\nn: [1, 2]",
            shows(r"^sweep: 2 jobs"),
        ),
    ],
    "--zip": [
        Example(
            "%%fal local/echo --sweep --zip\nprompt: [e, f]\nn: [1, 2]", shows(r"^sweep: 2 jobs")
        ),
    ],
    "--concurrency N": [
        Example("%%fal local/echo --sweep --concurrency 1\nn: [3, 4, 5]", shows(r"^sweep: 3 jobs")),
    ],
    "--record once|refresh|none|off": [
        Example(
            "%fal local/echo prompt=pinned --record once",
            replays_before,
            before="%fal local/echo prompt=pinned",
        ),
        Example(
            "%fal local/echo prompt=again --seed auto --record refresh",
            refreshes_with_pinned_seed,
            before="%fal local/echo prompt=again --seed auto",
        ),
        Example(
            "%fal local/echo prompt='never recorded' --record none",
            miss_said_once,
        ),
        Example(
            "%fal local/echo prompt=unrecorded --record off",
            not_replayed,
            before="%fal local/echo prompt=unrecorded --record off",
            after=RECORDED + "assert 'unrecorded' not in json.dumps(lock), lock",
        ),
    ],
}


FORMS = help_forms(USAGE)
CASES = [
    pytest.param(
        form,
        index,
        id=f"{form} #{index + 1}",
        marks=[pytest.mark.xfail(strict=True, reason=example.xfail)] if example.xfail else [],
    )
    for form, examples in EXAMPLES.items()
    for index, example in enumerate(examples)
]


def test_every_help_form_has_examples() -> None:
    shown = [form.text for form in FORMS]
    assert [f for f in shown if f not in EXAMPLES] == [], "%fal --help shows forms with no example"
    assert [f for f in EXAMPLES if f not in shown] == [], (
        "examples of forms the help no longer shows"
    )
    for form in FORMS:
        typed = [example.cell.split() for example in EXAMPLES[form.text]]
        for flag in form.flags:
            assert any(flag in tokens for tokens in typed), f"no example types {flag}"
        for choice in form.choices:
            flag = form.flags[-1]
            assert any(flag in t and t[t.index(flag) + 1] == choice for t in typed), (
                f"no example types {flag} {choice}"
            )


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Ran]:
    """Every example, run in one kernel in the help's order."""
    folder = tmp_path_factory.mktemp("help-forms")
    make_fixtures(folder)
    cells, where = [SETUP], {}
    for form, examples in EXAMPLES.items():
        for index, example in enumerate(examples):
            slots = {}
            for role in ("before", "cell", "after"):
                if source := getattr(example, role):
                    slots[role] = len(cells)
                    cells.append(source)
            where[form, index] = slots
    results = run_cells(cells, folder, tmp_path_factory.mktemp("help-forms-cache"))
    results[0].ok()
    out = {}
    for key, slots in where.items():
        main = results[slots["cell"]]
        if "before" in slots:
            main.before = results[slots["before"]].ok()
        if "after" in slots:
            main.after = results[slots["after"]]
        out[key] = main
    return out


@pytest.mark.parametrize(("form", "index"), CASES)
def test_help_form(ran: dict[tuple[str, int], Ran], form: str, index: int) -> None:
    example = EXAMPLES[form][index]
    result = ran[form, index]
    example.check(result)
    if example.after:
        result.after.ok()


def test_outputs_are_stable_text(ran: dict[tuple[str, int], Ran]) -> None:
    """Saved outputs carry no object ids (re-runs diff clean)."""
    text = json.dumps([r.outputs for r in ran.values()], default=str)
    assert not re.search(r"0x[0-9a-f]{6,}", text)

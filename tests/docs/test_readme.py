"""Every code block of README.md, and every command its prose shows, runs as the README says.

The blocks and code spans are read from README.md (``docsource``): one added without a check
here fails ``test_every_block_and_command_has_a_check``. Python and ``%%fal`` blocks run as
cells, in README order, in one real kernel on the embedded default (no FAL_KEY, a temp media
store) in a folder holding the files the README opens (photo.png, cat.png); then the runnable
``%fal`` spans of the prose, then its ``falnb`` commands in that folder. Each block is checked
for what the README says it does: patterns its output must show, and kernel-side asserts run
right after it (``then``), each its own test.

Not run as written, and why (keep this short):
- the Quickstart's ``make demo`` / ``make test``: dry-run (``make -n``) to show they are the
  commands the README says; ``make test`` is this suite, ``make demo`` is tests/test_demo.py.
- the fal-client block's ``PORT`` and ``KEY``: filled in from a ``falnb serve`` the test starts.
- ``falnb serve`` serves until Ctrl-C: started once with its synopsis filled in (the fal-client
  block talks to it); ``falnb serve --app ...`` is run with ``--list``, as the README suggests.
- ``falnb lock gc [--dry-run] ...`` runs with ``--dry-run`` (the plain ``falnb lock gc`` span
  runs as is); ``falnb lock show [LOCKFILE]`` names the folder's lock.
- not run at all, each for a reason given in SKIPPED: ``falnb lock verify``, ``falnb demo``
  and ``falnb serve --faults``; other tests run them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from dockernel import Ran, embedded_env, make_fixtures, run_cells
from docsource import ROOT, is_synopsis, readme_blocks, readme_prose, readme_spans

from tests.kit import free_port, run_captured

pytestmark = pytest.mark.timeout(300)


@dataclass(frozen=True)
class Then:
    """Kernel code run right after a block, asserting what the block did."""

    label: str
    code: str
    xfail: str = ""


@dataclass(frozen=True)
class Check:
    shows: tuple[str, ...] = ()  # regexes (multiline) its output must match
    then: tuple[Then, ...] = ()
    before: str = ""  # what the README takes as there already
    xfail: str = ""  # a bug another helper owns: strict, so it turns red once fixed


WAIT = """\
import time

def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
"""

PHOTO_BYTES = "pathlib.Path('photo.png').read_bytes()"

BLOCKS: dict[str, Check] = {
    "Quickstart #1": Check(
        shows=(
            r"falnb demo --notebook notebooks/01-quickstart\.ipynb notebooks/02-media\.ipynb",
            r"-m pytest",
        ),
    ),
    "The Python API #1": Check(
        shows=(
            r"^(Queued|InProgress)\(",
            r"'message': 'step 4/4'",
            r"^Completed\(",
            r"^\{'prompt': 'a red fox'\}$",
            r"^\{'text': 'one'\}$",
            r"^\{'text': 'one two three', 'done': True\}$",
            r"^\{'prompt': 'hi', 'counter': 1, ",
        ),
        before=WAIT,
        then=(
            Then("subscribe", "assert result['steps'] == 4, result"),
            Then(
                "cancel",
                "wait_for(lambda: type(handle.status()).__name__ == 'Completed')\n"
                "assert 'cancel' in (handle.status().error or '').lower(), handle.status()",
            ),
            Then("upload a path", f"import httpx\nassert httpx.get(url).content == {PHOTO_BYTES}"),
            Then(
                "upload bytes",
                f"assert httpx.get(falnb.upload_file({PHOTO_BYTES})).content == {PHOTO_BYTES}",
            ),
            Then(
                "upload a PIL image",
                "import io\nfrom PIL import Image\n"
                "uploaded = falnb.upload_file(Image.open('photo.png'))\n"
                "assert Image.open(io.BytesIO(httpx.get(uploaded).content)).size == (96, 64)",
            ),
            Then(
                "an async twin, awaited at the top of a cell",
                "echoed = await falnb.run_async('local/echo', {'prompt': 'awaited'})\n"
                "assert echoed == {'prompt': 'awaited'}, echoed",
            ),
            Then(
                "arguments are uploaded",
                "import io\nfrom PIL import Image\n"
                "out = falnb.run('local/echo', {'a': pathlib.Path('photo.png'),"
                " 'b': [Image.open('photo.png')], 'c': {'d': " + PHOTO_BYTES + "}})\n"
                f"assert httpx.get(out['a']).content == {PHOTO_BYTES}\n"
                "assert Image.open(io.BytesIO(httpx.get(out['b'][0]).content)).size == (96, 64)\n"
                f"assert httpx.get(out['c']['d']).content == {PHOTO_BYTES}",
            ),
        ),
    ),
    "The local server #1": Check(
        shows=(r"^\{'prompt': 'hi'\}$",),
        then=(
            Then(
                "queue and CDN",
                "import httpx\n"
                "done = client.subscribe('local/slow', {'duration': 0.2, 'steps': 2})\n"
                "assert done['steps'] == 2, done\n"
                "assert httpx.get(client.upload(b'hello', 'text/plain')).content == b'hello'",
            ),
        ),
    ),
    "Sweeps and comparison #1": Check(
        shows=(r"4 jobs",),
        then=(
            Then(
                "four jobs, each pinned in the lock with its own prompt and steps",
                "import json\n"
                "entries = json.loads(pathlib.Path('falnb.lock').read_text())['entries'].values()\n"
                "swept = {(e['arguments']['prompt'], e['arguments']['num_inference_steps'])\n"
                "         for e in entries if e['endpoint'] == 'local/text-to-image'\n"
                "         and e['status'] == 'completed' and e['arguments'].get('seed') == 7}\n"
                "wanted = {(p, n) for p in ('a red fox', 'a grey wolf') for n in (2, 6)}\n"
                "assert swept >= wanted, swept",
            ),
        ),
    ),
    "Sweeps and comparison #2": Check(
        shows=(r"^4 \[1, 2, 1, 2\]$",),
        then=(
            Then(
                "the table and the compare view",
                "rows = grid.table()\n"
                "assert len(rows) == 4, rows\n"
                "view = falnb.compare(grid[0], grid[1])\n"
                "assert type(view).__name__ == 'CompareWidget', view",
            ),
        ),
    ),
    "In a notebook #1": Check(
        before="import pathlib\n\nimport falnb",  # "`import falnb` registers the magics"
        shows=(
            r"falnb: .*using the embedded local server",  # the README's first call
            r"^local/text-to-image: 2 images \(1024x576, 1024x576\), seed 42$",
        ),
        then=(
            Then(
                "the Result",
                "assert type(fox).__name__ == 'Result' and fox.seed == 42, fox\n"
                "assert [i.size for i in fox.images] == [(1024, 576)] * 2\n"
                "assert fox.request_id and fox.json['images'][0]['width'] == 1024\n"
                "saved = fox.save('saved')\n"
                # "From Python, falnb.default_session().run(...) takes the same path": it
                # replays the cell's pinned call.
                "same = falnb.default_session().run('local/text-to-image', {'prompt': "
                "'a red fox in the snow, golden light', 'image_size': 'landscape_16_9', "
                "'num_images': 2}, seed=42)\n"
                "assert same.request_id == fox.request_id, (same, fox)\n"
                "assert len(saved) == 2 and all(pathlib.Path(p).stat().st_size for p in saved)",
            ),
        ),
    ),
    "Realtime widgets #1": Check(
        shows=(
            # (the saved line follows the slider: 0.5 as the block runs, 0.9 after "then")
            r"^Realtime local/image-to-image \(strength=0\.\d\): last frame \d+x\d+ image/jpeg$",
        ),
        before=WAIT,
        then=(
            Then(
                "the picture follows the slider",
                "widget = _\n"
                "frames = widget.stats['frames']\n"
                "widget.controls['strength'].value = 0.9\n"
                "wait_for(lambda: widget.last_frame.inputs.get('strength') == 0.9)\n"
                "assert widget.stats['frames'] > frames, widget.stats\n"
                "widget.close()",
            ),
        ),
    ),
    "Your own endpoints #1": Check(
        # The abridged block calls the example's own loader.
        before="from examples.my_models import load_image",
        then=(
            Then(
                "it posterizes",
                "import io, httpx, numpy as np\n"
                "cat = Image.open('cat.png')\n"
                "out = falnb.run('me/posterize', {'image_url': cat, 'levels': 2})\n"
                "[file] = out['images']\n"
                "assert (file['width'], file['height'], file['content_type']) == "
                "(96, 64, 'image/png'), file\n"
                "pixels = np.asarray(Image.open(io.BytesIO(httpx.get(file['url']).content)))\n"
                "assert set(np.unique(pixels).tolist()) <= {0, 255}, np.unique(pixels)",
            ),
        ),
    ),
    "Your own endpoints #2": Check(
        shows=(
            r"'message': 'posterizing 96x64 to 3 levels'",
            r"'content_type': 'image/png'",
            r"'width': 96",
            r"'height': 64",
        ),
    ),
}

FOX_CELL = next(b.source for b in readme_blocks() if b.id == "In a notebook #1")

# The prose's runnable %fal lines (synopses are checked against %fal --help in test_names).
LINES: dict[str, Check] = {
    "%fal endpoints": Check(shows=()),  # every local/ endpoint the README names: see below
    "%fal --help": Check(shows=(r"^%%fal ENDPOINT", r"^options:$")),
    "%fal config media_cap=10MB": Check(
        shows=(r"^media folder = falnb-media/ \(files up to 10MB; commit it with the lock\)$",),
        then=(
            Then(
                "the lock's media are beside it",
                "kept = sorted(p.name for p in pathlib.Path('falnb-media').iterdir())\n"
                "assert any(name.endswith(('.jpg', '.jpeg', '.png')) for name in kept), kept",
            ),
        ),
    ),
    "%fal usage": Check(
        shows=(r"^endpoint +requests +replayed \(free\) +units +cost$", r"^total +\d+ +\d+ "),
    ),
    "%fal form local/text-to-image": Check(
        shows=(r"^falnb form: local/text-to-image$", r"^%%fal local/text-to-image$"),
        then=(
            Then(
                "its cell text is what Run runs",
                "form = _\n"
                "form.controls['prompt'].value = 'a fox, filled in'\n"
                "assert form.cell_text().split('\\n') == "
                "['%%fal local/text-to-image', 'prompt: a fox, filled in']\n"
                "done = form.run()\n"
                "assert done is not None and done.arguments['prompt'] == 'a fox, filled in', "
                "form.message.value",
            ),
        ),
    ),
    "%fal config budget=5.00": Check(
        shows=(r"^budget = 5\.0$",),
        then=(
            Then(
                "a call whose cost cannot be known before it runs is refused, unsent",
                "try:\n"
                "    get_ipython().run_line_magic('fal', 'local/llm prompt=hi --record off')\n"
                "except Exception as exc:\n"
                "    message = str(exc)\n"
                "else:\n"
                "    raise AssertionError('the budget let an unknown cost through')\n"
                "assert 'nothing was submitted' in message and '$5.00 budget' in message, message\n"
                "falnb.default_session().config.budget = None",
            ),
        ),
    ),
    "%fal config record=none": Check(
        shows=(r"^record = 'none'$",),
        then=(
            Then(
                "a recorded call replays",
                # the README's own %%fal cell, run again (it stores the Result in fox again)
                f"recorded = fox\nagain = get_ipython().run_cell({FOX_CELL!r})\n"
                "assert again.success and fox is not recorded, again\n"
                "assert fox.request_id == recorded.request_id, (fox, recorded)",
            ),
            Then(
                "a miss is an error naming the endpoint",
                "try:\n"
                "    get_ipython().run_line_magic('fal', \"local/echo prompt='not recorded'\")\n"
                "except Exception as exc:\n"
                "    message = str(exc)\n"
                "else:\n"
                "    raise AssertionError('record=none sent a call that is not in the lock')\n"
                "assert 'local/echo' in message and 'record=none' in message, message",
            ),
        ),
    ),
    (
        '%fal realtime local/image-to-image strength=(0.0, 1.0, 0.05) prompt="a watercolor fox" '
        "image_url={photo}"
    ): Check(
        shows=(r"^Realtime local/image-to-image \(strength=0\.5.*\): last frame \d+x\d+ image/",),
    ),
}


@dataclass(frozen=True)
class Command:
    """A ``falnb`` command of the prose, as run (``argv`` None: the ``served`` fixture)."""

    argv: tuple[str, ...] | None
    shows: tuple[str, ...] = ()


COMMANDS: dict[str, Command] = {
    "falnb serve": Command(None, (r"^  key +\S+$", r"^  run +http://127\.0\.0\.1:\d+$")),
    "falnb serve [--host 127.0.0.1] [--port N] [--key K | --key-file PATH] [--concurrency N]": (
        Command(None)
    ),
    "falnb serve --list": Command(("serve", "--list"), (r"^local/echo +Returns",)),
    "falnb serve --app examples.my_models": Command(
        ("serve", "--app", "examples.my_models", "--list"), (r"^me/posterize +Posterizes",)
    ),
    "falnb lock show [LOCKFILE]": Command(
        ("lock", "show", "falnb.lock"),
        (r"falnb\.lock: \d+ entries", r"completed +local/text-to-image +seed=42 +request=\S+"),
    ),
    "falnb lock gc [--dry-run] [LOCKFILE ...]": Command(
        ("lock", "gc", "--dry-run"), (r"^would delete \d+ media file\(s\), \d+ bytes; kept \d+",)
    ),
    "falnb lock gc": Command(
        ("lock", "gc"), (r"^deleted \d+ media file\(s\), \d+ bytes; kept \d+ referenced by",)
    ),
}
SKIPPED = {
    "falnb serve --faults": "a test-only switch that serves until Ctrl-C; "
    "tests/server/test_cli_serve.py starts it and injects a fault",
    "falnb lock verify [--timeout S] NOTEBOOK": "re-executes a whole notebook in a second "
    "kernel; tests/notebook/test_repro.py runs it on recorded notebooks",
    "falnb lock verify": "tests/notebook/test_examples.py verifies every example notebook",
    "falnb demo [--notebook NOTEBOOK ...] [--out DIR]": "tests/test_demo.py runs it as `make demo` "
    "does, on the embedded default",
}

BLOCK_IDS = [b.id for b in readme_blocks()]
SHELL_BLOCKS = [b.id for b in readme_blocks() if b.lang != "python" and b.source[:1] != "%"]
KERNEL_LINES = [s for s in readme_spans("%fal ") if not is_synopsis(s)]
FALNB_COMMANDS = readme_spans("falnb ")
NAMED_ENDPOINTS = sorted(set(re.findall(r"`(local/[\w-]+)`", readme_prose())))


def test_every_block_and_command_has_a_check() -> None:
    assert [b for b in BLOCK_IDS if b not in BLOCKS] == [], "README blocks with no check"
    assert [b for b in BLOCKS if b not in BLOCK_IDS] == [], "checks of blocks no longer there"
    assert [s for s in KERNEL_LINES if s not in LINES] == [], "README %fal lines with no check"
    assert [s for s in LINES if s not in KERNEL_LINES] == [], "checks of lines no longer there"
    unchecked = [c for c in FALNB_COMMANDS if c not in COMMANDS and c not in SKIPPED]
    assert unchecked == [], "README falnb commands with no check"
    assert [c for c in [*COMMANDS, *SKIPPED] if c not in FALNB_COMMANDS] == []


# -- the local server the fal-client block and `falnb serve` talk about ------------------------


@dataclass(frozen=True)
class Served:
    port: int
    key: str
    banner: str


def falnb_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "falnb.cli", *args]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``falnb serve``'s synopsis, filled in, serving until the tests end."""
    port, key = free_port(), "readme-test-key"
    cache = tmp_path_factory.mktemp("served-cache")
    argv = falnb_argv(
        "serve", "--host", "127.0.0.1", "--port", str(port), "--key", key, "--concurrency", "2"
    )
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, text=True, env=embedded_env(cache), cwd=ROOT
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].startswith("  client = "):  # its last line
            line = process.stdout.readline()
            assert line, f"falnb serve exited: {''.join(lines)}"
            lines.append(line)
        deadline = time.monotonic() + 15
        while True:  # the banner is printed just before it starts listening
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "falnb serve is not listening"
                time.sleep(0.05)
        yield Served(port, key, "".join(lines))
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- the kernel run ----------------------------------------------------------------------------


@dataclass
class Run:
    cells: dict[str, Ran]  # by id: "<block id>", "<block id> / <then label>", "<block id> before"
    folder: Path
    cache: Path
    all: list[Ran]


def _adapted(block_id: str, source: str, served: Served) -> str:
    if block_id == "The local server #1":
        return source.replace("PORT", str(served.port)).replace('"KEY"', repr(served.key))
    return source


@pytest.fixture(scope="module")
def kernel_run(tmp_path_factory: pytest.TempPathFactory, served: Served) -> Run:
    folder, cache = tmp_path_factory.mktemp("readme"), tmp_path_factory.mktemp("readme-cache")
    make_fixtures(folder)
    order: list[tuple[str, str]] = []
    blocks = {b.id: b for b in readme_blocks()}
    for block_id in BLOCK_IDS:
        block = blocks[block_id]
        if block_id in SHELL_BLOCKS:
            continue  # test_quickstart_commands_are_the_readme_targets
        check = BLOCKS[block_id]
        if check.before:
            order.append((f"{block_id} before", check.before))
        order.append((block_id, _adapted(block_id, block.source, served)))
        order += [(f"{block_id} / {t.label}", t.code) for t in check.then]
    for line in KERNEL_LINES:
        order.append((line, line))
        order += [(f"{line} / {t.label}", t.code) for t in LINES[line].then]
    ran = run_cells([source for _, source in order], folder, cache)
    return Run({key: r for (key, _), r in zip(order, ran, strict=True)}, folder, cache, ran)


def _shows(text: str, patterns: tuple[str, ...]) -> None:
    for pattern in patterns:
        assert re.search(pattern, text, re.MULTILINE), f"{pattern!r} not in:\n{text}"


def _xfail(reason: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.xfail(strict=True, reason=reason)] if reason else []


KERNEL_CASES = [
    *(
        pytest.param(block_id, BLOCKS[block_id], id=block_id, marks=_xfail(BLOCKS[block_id].xfail))
        for block_id in BLOCK_IDS
        if block_id in BLOCKS and block_id not in SHELL_BLOCKS
    ),
    *(
        pytest.param(line, LINES[line], id=line, marks=_xfail(LINES[line].xfail))
        for line in KERNEL_LINES
        if line in LINES
    ),
]
THEN_CASES = [
    pytest.param(f"{key} / {then.label}", id=f"{key} / {then.label}", marks=_xfail(then.xfail))
    for key, check in [*BLOCKS.items(), *LINES.items()]
    for then in check.then
]


@pytest.mark.parametrize(("key", "check"), KERNEL_CASES)
def test_block_runs_and_shows(kernel_run: Run, key: str, check: Check) -> None:
    if f"{key} before" in kernel_run.cells:
        kernel_run.cells[f"{key} before"].ok()
    ran = kernel_run.cells[key].ok()
    _shows(ran.text, check.shows)


@pytest.mark.parametrize("key", THEN_CASES)
def test_block_did_what_the_readme_says(kernel_run: Run, key: str) -> None:
    kernel_run.cells[key].ok()


def test_fal_endpoints_lists_every_endpoint_the_readme_names(kernel_run: Run) -> None:
    listed = kernel_run.cells["%fal endpoints"].ok().text
    for endpoint in NAMED_ENDPOINTS:
        assert re.search(rf"^  {endpoint} ", listed, re.MULTILINE), f"{endpoint} not listed"


def test_a_cell_shows_text_progress_then_a_plain_bundle(kernel_run: Run) -> None:
    """'a text line where widgets cannot render, e.g. nbclient' ... 'the live view is replaced
    by the result' ... 'a plain MIME bundle (HTML plus an image/jpeg/png preview, stable
    text/plain, and metadata with endpoint, arguments, seed, request id and timings)'."""
    ran = kernel_run.cells["In a notebook #1"]
    assert any(u.startswith("local/text-to-image · ") for u in ran.updates), ran.updates
    [shown] = [o for o in ran.outputs if o.output_type in ("display_data", "execute_result")]
    assert "text/html" in shown.data, list(shown.data)
    assert {"image/jpeg", "image/png"} & set(shown.data), list(shown.data)
    meta = shown.metadata["falnb"]
    assert meta["endpoint"] == "local/text-to-image"
    assert meta["seed"] == meta["arguments"]["seed"] == 42
    assert meta["request_id"]
    assert meta["timings"]


def test_the_embedded_server_says_so_once(kernel_run: Run) -> None:
    """'falnb starts its local server on a free loopback port and says so once.'"""
    said = [r for r in kernel_run.all if "embedded local server" in r.streams("stderr")]
    assert len(said) == 1, [r.source[:40] for r in said]
    assert said[0] is kernel_run.cells["In a notebook #1"]


def test_the_realtime_widget_leaves_a_picture(kernel_run: Run) -> None:
    """'close() closes the connection, and the saved notebook keeps a picture and a text line.'"""
    ran = kernel_run.cells["Realtime widgets #1"]
    assert ran.data("image/jpeg"), ran.outputs
    assert ran.data("text/plain")[-1].startswith("Realtime local/image-to-image (strength=0.9)")
    assert not ran.data("application/vnd.jupyter.widget-view+json")  # closed: no live view


def test_outputs_are_stable_text(kernel_run: Run) -> None:
    text = json.dumps([r.outputs for r in kernel_run.all], default=str)
    assert not re.search(r"0x[0-9a-f]{6,}", text)


# -- the shell: the Quickstart block and the falnb commands ------------------------------------


def test_quickstart_commands_are_the_readme_targets() -> None:
    [block] = [b for b in readme_blocks() if b.id == "Quickstart #1"]
    targets = [line.split()[1] for line in block.source.splitlines() if line.startswith("make ")]
    assert targets == ["demo", "test"]
    shown = ""
    for target in targets:
        dry = subprocess.run(
            ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True
        )
        shown += dry.stdout
    _shows(shown, BLOCKS["Quickstart #1"].shows)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_falnb_command(command: str, kernel_run: Run, served: Served) -> None:
    spec = COMMANDS[command]
    if spec.argv is None:
        out = served.banner
        assert f"http://127.0.0.1:{served.port}" in out, out
        assert served.key in out, out
        base = f"http://127.0.0.1:{served.port}"
        # "accepts only its own key"
        ok = httpx.post(
            f"{base}/local/echo", json={"a": 1}, headers={"Authorization": f"Key {served.key}"}
        )
        bad = httpx.post(
            f"{base}/local/echo", json={"a": 1}, headers={"Authorization": "Key other"}
        )
        assert (ok.status_code, ok.json(), bad.status_code) == (200, {"a": 1}, 401)
    else:
        done = run_captured(
            falnb_argv(*spec.argv),
            cwd=kernel_run.folder,
            env=embedded_env(kernel_run.cache),
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        out = done.stdout
    _shows(out, spec.shows)


def test_falnb_serve_urls_point_falnb_at_it(served: Served, tmp_path: Path) -> None:
    """'FALNB_TARGET=fal plus the URLs that falnb serve prints points falnb at a local server.'"""
    env = embedded_env(tmp_path)
    for line in served.banner.splitlines():
        if line.strip().startswith("export "):
            for assignment in line.split()[1:]:
                name, value = assignment.split("=", 1)
                env[name] = value.strip("'")
    code = "import falnb; print(falnb.upload_file('photo.png'))"
    make_fixtures(tmp_path)
    done = run_captured(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
    )
    assert done.stdout.startswith(f"http://127.0.0.1:{served.port}/"), done.stdout
    assert "embedded" not in done.stderr, done.stderr

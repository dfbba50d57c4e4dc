"""Reproducible notebooks with a real kernel (nbclient) against a ``falnb serve`` subprocess.

The server's journal (``GET /_falnb/journal``) is the witness: what a re-run sends, or not.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
from nbclient import NotebookClient
from nbkit import running_kernel

from falnb.cli import main as falnb_main
from falnb.repro import LockFile, MediaFolder, MediaStore
from tests.conftest import wait_until
from tests.kit import free_port, serving, target_env

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

IMAGE_CELL = """%%fal local/text-to-image --seed auto
prompt: a red fox in the snow
image_size: square
num_inference_steps: 2"""
ECHO_CELL = """%%fal local/echo
prompt: hello"""
SLOW_CELL = """%%fal local/slow
duration: 3
steps: 6"""


@dataclass
class Serve:
    base_url: str
    key: str

    def journal(self) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.base_url}/_falnb/journal",
            headers={"Authorization": f"Key {self.key}"},
            timeout=10,
        )
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()
        return [e for e in entries if not e["path"].startswith("/_falnb/")]

    def clear(self) -> None:
        httpx.delete(
            f"{self.base_url}/_falnb/journal",
            headers={"Authorization": f"Key {self.key}"},
            timeout=10,
        ).raise_for_status()

    def submissions(self, endpoint: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.journal()
            if e["method"] == "POST"
            and e["role"] == "queue"
            and e["status"] == 200
            and "/requests/" not in e["path"]
            and e["path"].endswith("/" + endpoint)
        ]


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    key = "repro-" + secrets.token_hex(12)
    with serving(key, tmp_path_factory.mktemp("serve")) as (base_url, _process):
        yield Serve(base_url, key)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A notebook directory (its falnb.lock lands here); the media cache beside it."""
    (tmp_path / "nb").mkdir()
    return tmp_path / "nb"


@pytest.fixture
def kernel_env(serve: Serve, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "FALNB_"))}
    env.update(target_env(serve.base_url, serve.key), FALNB_CACHE_DIR=str(tmp_path / "cache"))
    return env


def write_notebook(directory: Path, name: str, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.cells = [nbformat.v4.new_code_cell("%load_ext falnb")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"  # stable ids: the saved files can be compared byte for byte
    path = directory / name
    nbformat.write(nb, path)
    return path


def execute(path: Path, env: dict[str, str], *, allow_errors: bool = False) -> str:
    """Run every cell of ``path`` in a fresh kernel in its directory; save; the file's text."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=60,
        kernel_name="python3",
        allow_errors=allow_errors,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env=env)
    nbformat.write(nb, path)
    return path.read_text()


def outputs_text(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return json.dumps([c.get("outputs", []) for c in nb.cells])


def test_a_rerun_is_byte_identical_and_makes_no_requests(
    serve: Serve, project: Path, kernel_env: dict[str, str], tmp_path: Path
) -> None:
    path = write_notebook(project, "fox.ipynb", [IMAGE_CELL, ECHO_CELL])
    serve.clear()
    first = execute(path, kernel_env)
    assert len(serve.submissions("local/text-to-image")) == 1
    assert "image/" in first
    lock_text = (project / "falnb.lock").read_text()
    assert serve.key not in lock_text
    assert serve.key not in first
    entries = LockFile(project / "falnb.lock").entries()
    assert {e.endpoint for e in entries.values()} == {"local/text-to-image", "local/echo"}
    assert all(e.status == "completed" for e in entries.values())
    image_entry = next(e for e in entries.values() if e.endpoint == "local/text-to-image")
    assert isinstance(image_entry.seed, int)
    assert image_entry.media
    assert "seed" not in image_entry.arguments  # --seed auto is not part of the key
    store = MediaStore(tmp_path / "cache" / "media")
    for file in store.root.rglob("*"):
        if file.is_file():
            assert serve.key.encode() not in file.read_bytes()

    serve.clear()
    second = execute(path, kernel_env)
    assert serve.journal() == []
    assert second == first
    assert (project / "falnb.lock").read_text() == lock_text


def test_lock_verify_replays_offline_and_spots_differences(
    serve: Serve,
    project: Path,
    kernel_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_notebook(project, "verify.ipynb", [IMAGE_CELL.replace("fox", "cat"), ECHO_CELL])
    execute(path, kernel_env)
    for name, value in kernel_env.items():
        monkeypatch.setenv(name, value)
    serve.clear()
    assert falnb_main(["lock", "verify", str(path)]) == 0, capsys.readouterr().out
    assert serve.journal() == []
    assert "reproduces from the lock" in capsys.readouterr().out

    # A saved output edited by hand, and a call the lock has never seen, both fail.
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].outputs[0]["data"]["text/plain"] = "something else"
    nb.cells.append(nbformat.v4.new_code_cell(ECHO_CELL.replace("hello", "new call")))
    nbformat.write(nb, path)
    assert falnb_main(["lock", "verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "cell 2" in out
    assert "outputs differ" in out
    assert "cell 3" in out
    assert "record=none" in out
    assert serve.journal() == []


def test_record_none_with_a_missing_entry_fails_clearly(
    serve: Serve, project: Path, kernel_env: dict[str, str]
) -> None:
    path = write_notebook(project, "ci.ipynb", [ECHO_CELL.replace("hello", "never recorded")])
    serve.clear()
    execute(path, {**kernel_env, "FALNB_RECORD": "none"}, allow_errors=True)
    assert serve.journal() == []
    text = outputs_text(path)
    assert "In [2]: record=none" in text  # the cell, as its prompt shows it
    assert "local/echo" in text
    assert "never recorded" in text
    assert "Traceback" not in text


def test_a_damaged_copy_is_replaced_from_the_other_and_refresh_remakes_both(
    serve: Serve, project: Path, kernel_env: dict[str, str], tmp_path: Path
) -> None:
    path = write_notebook(project, "tamper.ipynb", [IMAGE_CELL.replace("fox", "owl")])
    first = execute(path, kernel_env)
    [entry] = LockFile(project / "falnb.lock").entries().values()
    [ref] = entry.media
    cached = MediaStore(tmp_path / "cache" / "media").object_path(ref.sha256)
    kept = MediaFolder.beside(project / "falnb.lock").file_path(ref)
    original = kept.read_bytes()
    assert cached.read_bytes() == original

    # Cache -> falnb-media/ -> network: a damaged copy is healed from the other, offline.
    for damaged in (cached, kept):
        damaged.write_bytes(b"not the image")
        serve.clear()
        assert execute(path, kernel_env) == first
        assert serve.journal() == []
        assert damaged.read_bytes() == original

    # Both gone: the cell says what to do, and --record refresh makes the file again.
    cached.unlink()
    kept.write_bytes(b"truncated")
    serve.clear()
    text = execute(path, kernel_env, allow_errors=True)
    assert serve.journal() == []
    assert "--record refresh" in text
    assert "falnb-media/" in text
    assert "Traceback" not in text
    execute(path, {**kernel_env, "FALNB_RECORD": "refresh"})
    assert len(serve.submissions("local/text-to-image")) == 1
    assert kept.read_bytes() == original  # the pinned seed made the same image
    assert cached.read_bytes() == original


def test_a_recorded_notebook_folder_replays_and_verifies_elsewhere_with_no_server(
    serve: Serve,
    project: Path,
    kernel_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    audio = "%%fal local/text-to-audio --seed 1\na calm tune at dusk"
    path = write_notebook(project, "travel.ipynb", [IMAGE_CELL.replace("fox", "heron"), audio])
    saved = execute(path, kernel_env)
    lock_text = (project / "falnb.lock").read_text()
    for text in (saved, lock_text):
        assert "127.0.0.1" not in text
        assert str(tmp_path) not in text
    # What goes into git: the notebook, its lock and the media it needs; no .flock.
    media = {m.sha256 for e in LockFile(project / "falnb.lock").entries().values() for m in e.media}
    assert len(media) == 2
    assert sorted(p.name for p in project.iterdir()) == ["falnb-media", "falnb.lock", path.name]
    assert set(MediaFolder.beside(project / "falnb.lock").objects()) == media

    # A fresh clone on another machine: another directory, an empty cache, and no server at
    # all (the URLs point at a port nobody listens on; the recording server's port is gone).
    clone = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(project, clone)
    dead = f"http://127.0.0.1:{free_port()}"
    env = {
        **kernel_env,
        "FALNB_CACHE_DIR": str(tmp_path / "empty-cache"),
        "FALNB_RUN_URL": dead,
        "FALNB_QUEUE_URL": f"{dead}/_queue",
        "FALNB_REST_URL": f"{dead}/_rest",
        "FALNB_CDN_URL": f"{dead}/_cdn",
        "FALNB_REALTIME_URL": "ws" + dead[len("http") :],
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    serve.clear()
    copy = clone / path.name
    assert falnb_main(["lock", "verify", str(copy)]) == 0, capsys.readouterr().out
    assert "reproduces from the lock" in capsys.readouterr().out
    # gc on the new machine must not take what the clone's lock needs.
    monkeypatch.chdir(clone)
    assert falnb_main(["lock", "gc"]) == 0
    assert execute(copy, env) == saved  # byte for byte
    assert serve.journal() == []
    assert (clone / "falnb.lock").read_text() == lock_text
    assert sorted(p.name for p in clone.iterdir()) == ["falnb-media", "falnb.lock", path.name]


def test_a_notebook_run_twice_or_elsewhere_saves_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the embedded server (a new port per kernel): no port, path or time in any output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "FALNB_"))}
    env["FALNB_CACHE_DIR"] = str(tmp_path / "cache")
    small = IMAGE_CELL.replace("--seed auto", "--seed 5")
    project = tmp_path / "first"
    project.mkdir()
    path = write_notebook(
        project,
        "same.ipynb",
        [
            small,
            "%fal config media_cap=50kB",
            small.replace("--seed 5", "--seed 6"),  # ~90 kB: over the cap
            # --no-validate: the server's 422, not falnb's check before sending
            "%%fal local/text-to-image --no-validate\nprompt: a fox\nimage_size: 12",
            "%fal local/fail status=500",
            "%fal local/echo prompt=never --record none",
            "%fal config",
            "import pathlib\nnote = pathlib.Path('note.txt').absolute()\nnote.write_text('hi')",
            "%%fal local/echo\nfile_url: {note}",  # uploaded; shown relative to the notebook
        ],
    )
    first = execute(path, env, allow_errors=True)
    assert execute(path, env, allow_errors=True) == first

    clone = tmp_path / "second" / "checkout"
    shutil.copytree(project, clone)
    assert execute(clone / path.name, env, allow_errors=True) == first

    outputs = [json.dumps(c.get("outputs", [])) for c in nbformat.reads(first, as_version=4).cells]
    text = "".join(outputs)
    assert "127.0.0.1" not in text
    assert "localhost:" not in text
    assert str(tmp_path) not in text
    assert str(Path.home()) + "/" not in text
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text) is None
    assert "using the embedded local server on a loopback port" in outputs[1]
    assert "over media_cap=50kB" in outputs[3]
    assert "FALNB_MEDIA_CAP" in outputs[3]
    assert "rejected the arguments (422)" in outputs[4]
    assert "local/fail failed (500): local/fail failed on purpose" in outputs[5]
    assert "record=none and falnb.lock has no recorded result" in outputs[6]
    assert '"file_url": "note.txt"' in outputs[9]  # the output's metadata
    assert "falnb-local:/_cdn/files/" in outputs[9]
    config = outputs[7]
    assert "lock file = falnb.lock" in config
    assert "media folder = falnb-media/" in config
    assert "media cache = $FALNB_CACHE_DIR/media" in config
    assert "media_cap = '50kB'" in config
    # Seed 5's image was recorded under the default cap (2MB), seed 6's over 50kB.
    by_seed = {e.seed: e.media for e in LockFile(project / "falnb.lock").entries().values()}
    [kept], [over] = by_seed[5], by_seed[6]
    assert over.size > 50_000
    assert set(MediaFolder.beside(project / "falnb.lock").objects()) == {kept.sha256}

    # With no cache, what was over the cap is gone; the cell says so and what to do.
    shutil.copytree(project, tmp_path / "third")
    elsewhere = execute(
        tmp_path / "third" / path.name,
        {**env, "FALNB_CACHE_DIR": str(tmp_path / "cache2")},
        allow_errors=True,
    )
    cells = nbformat.reads(elsewhere, as_version=4).cells
    changed = [i for i, c in enumerate(cells) if json.dumps(c.get("outputs")) != outputs[i]]
    assert changed == [3]
    missing = json.dumps(cells[3].outputs)
    assert "over media_cap=50kB when it was recorded" in missing
    assert "--record refresh" in missing

    # verify does not count what %fal config says about the machine (its cache, the record
    # mode verify forces) as a difference.
    configured = write_notebook(project, "config.ipynb", [small, "%fal config"])
    execute(configured, env)
    for name in [n for n in os.environ if n.startswith(("FAL_", "FALNB_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert falnb_main(["lock", "verify", str(configured)]) == 0, capsys.readouterr().out


def test_an_output_fed_in_by_its_saved_url_is_sent_as_its_bytes(
    serve: Serve, project: Path, kernel_env: dict[str, str]
) -> None:
    """The saved URL has no server behind it; refreshing the second call still works."""
    path = write_notebook(
        project,
        "chain.ipynb",
        [
            IMAGE_CELL.replace("fox", "crane").replace("--seed auto", "--seed 3 -o crane"),
            "url = crane.json['images'][0]['url']\nurl.split(':')[0]",
            "%%fal local/image-to-image --seed 4\nimage_url: {url}\nprompt: ink\nstrength: 0.5",
        ],
    )
    first = execute(path, kernel_env)
    assert "'falnb-local'" in first
    assert "local/image-to-image: 1 image" in first
    serve.clear()
    assert execute(path, kernel_env) == first  # a replay, in a new kernel
    assert serve.journal() == []
    execute(path, {**kernel_env, "FALNB_RECORD": "refresh"})
    assert len(serve.submissions("local/image-to-image")) == 1
    uploads = [e for e in serve.journal() if e["method"] in ("POST", "PUT") and "_cdn" in e["path"]]
    assert uploads  # the bytes went up again (the saved URL names no server)
    # The same content under a new URL: one entry per call, as before the refresh.
    assert len(LockFile(project / "falnb.lock").entries()) == 2


def _run_cell(kc: Any, code: str, timeout: float) -> list[dict[str, Any]]:
    msg_id = kc.execute(code)
    outputs: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return outputs
        if msg["msg_type"] in ("stream", "display_data", "execute_result", "error"):
            outputs.append(msg["content"])
    raise AssertionError("cell did not finish")


def test_a_killed_kernel_reattaches_instead_of_paying_twice(
    serve: Serve, project: Path, kernel_env: dict[str, str]
) -> None:
    lock = LockFile(project / "falnb.lock")
    serve.clear()
    with running_kernel(project, kernel_env) as kc:
        _run_cell(kc, "%load_ext falnb", 30)
        kc.execute(SLOW_CELL)
        entry = wait_until(
            lambda: next(iter(lock.entries().values()), None), timeout=30, what="pending entry"
        )
        assert entry is not None
        assert entry.status == "pending"
        assert entry.request_id
    # The kernel died mid-job.

    with running_kernel(project, kernel_env) as kc:
        _run_cell(kc, "%load_ext falnb", 30)
        outputs = _run_cell(kc, SLOW_CELL, 60)
    assert len(serve.submissions("local/slow")) == 1
    [done] = lock.entries().values()
    assert done.status == "completed"
    assert done.request_id == entry.request_id
    assert done.result["duration"] == 3
    assert not any(o.get("ename") for o in outputs)

"""The example notebooks in notebooks/: each runs top to bottom on the embedded server with no
key and makes what its cells say, and the saved copies replay from the committed lock.

A fresh run goes in a temporary folder (its own lock, so every call really runs); the saved
notebooks are checked for what GitHub shows (outputs present, small, no port, path or key) and
re-executed by ``falnb lock verify`` with an empty cache and ``record=none``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest

from falnb import _notebooks
from falnb.repro.verify import verify_notebook

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))

#: What each notebook's cells (by cell id) must show in their text outputs after a fresh run.
EXPECTED: dict[str, dict[str, list[str]]] = {
    "01-quickstart.ipynb": {
        "01-03": ["local/text-to-image: 1 image (512x384), seed 42", "1 image \u00d7 $0.025"],
        "01-04": ["(42, (512, 384))"],
        "01-07": ["local/llm: text", "calm lake dawn"],
        "01-08": ["Let's think about hello falnb for a moment."],
        "01-10": ["{'prompt': 'a red fox'}"],
        "01-11": ["['step 1/3', 'step 2/3', 'step 3/3']"],
        "01-12": ["one\none two\none two three"],
        "01-14": ["'local/text-to-image: 1 image (256x192), seed 5'"],
    },
    "02-media.ipynb": {
        "02-03": ["local/text-to-image: 2 images (384x288, 384x288), seed 3"],
        "02-04": ["([(384, 288), (384, 288)], ['image/jpeg', 'image/jpeg'])"],
        "02-07": ["local/image-to-image: 1 image (384x288), seed 4"],
        "02-09": ["local/text-to-video: video video/mp4", "seed 5"],
        "02-10": ["('video/mp4', True)"],
        "02-12": ["local/text-to-audio: audio audio/wav", "seed 6"],
        "02-14": ["local/llm: text", "seed 7", "foxes"],
        "02-16": ["('fal', 'fal models in notebooks')"],
    },
    "03-sweeps-and-comparison.ipynb": {
        "03-03": ["local/echo", "a red fox"],
        "03-05": ["local/text-to-image: the seed holds exactly (same seed twice: distance 0.000"],
        "03-07": ["sweep: 4 jobs: 4 done", "prompt=a grey wolf · num_inference_steps=6: ok"],
        "03-09": ["(4, [7, 7, 7, 7])"],
        "03-11": ["sweep: 3 jobs: 3 done", "seed=3: ok"],
        "03-12": ["[(1, 'done'), (2, 'done'), (3, 'done')]"],
        "03-14": ["falnb compare: 2 items (swipe)"],
    },
    "04-realtime.ipynb": {
        "04-03": ["local/text-to-image: 1 image (256x192), seed 9"],
        "04-06": [
            "Realtime local/image-to-image: live view",
            "(strength=0.5, prompt='a watercolor fox'): last frame 256x192 image/jpeg",
        ],
        "04-08": ["1 one\n2 two\n3 three"],
    },
    "05-reproducible-research.ipynb": {
        "05-03": ["local/text-to-image: 1 image (256x192), seed "],
        "05-04": ["True"],
        "05-07": ["local/text-to-image: 1 image (256x192), seed 11"],
        "05-08": ["(True, True)"],
        "05-10": ["local/text-to-image: the seed holds exactly"],
        "05-12": ["{'duration': 0.5, 'steps': 2, 'seed': None}"],
        "05-14": ["['falnb.lock', 'falnb-media']"],
    },
    "06-cost-and-schemas.ipynb": {
        "06-03": ["2 images (256x192, 256x192), seed 1", "2 images \u00d7 $0.025 = $0.05"],
        "06-04": ["(2.0,", "unit_price=0.025, unit='image'"],
        "06-06": ["[('local/text-to-image', 1), ('total', 1)]"],
        "06-08": ["budget = 0.1"],
        "06-10": ["1 image (256x192), seed 2"],
        "06-11": ["budget = none"],
        "06-15": ["falnb form: local/text-to-image", "%%fal local/text-to-image --seed 3"],
        "06-13": ["(['num_images=', 'num_inference_steps='], ['landscape_4_3', 'landscape_16_9'])"],
    },
    "07-your-own-model.ipynb": {
        "07-06": ["me/posterize: 1 image (256x192)"],
        "07-09": ["me/shout: text", "HELLO HELLO HELLO"],
        "07-12": ["[1, 2, 3, 4]"],
    },
}


def _texts(cell: Any) -> str:
    parts: list[str] = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
        else:
            parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Kernels see no key and no falnb settings: the embedded default, as on a fresh clone."""
    for name in list(os.environ):
        if name.startswith(("FAL_", "FALNB_")) or name in ("JPY_SESSION_NAME", "VSCODE_PID"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FALNB_CACHE_DIR", str(tmp_path / "cache"))


def test_every_notebook_has_its_expectations() -> None:
    assert sorted(EXPECTED) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_a_notebook_runs_fresh_on_the_embedded_server(
    name: str, no_key: None, tmp_path: Path
) -> None:
    notebook = _notebooks.read(NOTEBOOKS / name)
    for cell in notebook.cells:
        cell.outputs = [] if cell.cell_type == "code" else cell.get("outputs")
    _notebooks.execute(notebook, directory=tmp_path, timeout=120)
    cells = {cell.id: cell for cell in notebook.cells}
    errors = [
        (cell.id, _texts(cell))
        for cell in notebook.cells
        if cell.cell_type == "code"
        and any(o.output_type == "error" for o in cell.outputs)
        and "raises-exception" not in cell.metadata.get("tags", [])
    ]
    assert errors == []
    for cell_id, wanted in EXPECTED[name].items():
        text = _texts(cells[cell_id])
        for part in wanted:
            assert part in text, f"{name} {cell_id}: {part!r} not in {text!r}"
    assert (tmp_path / "falnb.lock").exists()


@pytest.mark.parametrize("name", NAMES)
def test_the_saved_notebook_reads_well_and_replays_from_the_lock(
    name: str, no_key: None, tmp_path: Path
) -> None:
    text = (NOTEBOOKS / name).read_text(encoding="utf-8")
    # What GitHub shows: every code cell ran and kept its output; nothing names this machine.
    saved = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in saved.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code)
    assert sum(bool(cell.outputs) for cell in code) >= len(code) // 2
    assert not re.search(r"127\.0\.0\.1|localhost:\d|/tmp/|/home/|/root/", text)
    # Nor the checkout it was saved from (wherever that is on this machine).
    assert f"{NOTEBOOKS.parents[1]}{os.sep}" not in text
    assert not re.search(r"0x[0-9a-f]{6,}", text)  # no object addresses
    assert "iopub.execute_input" not in text  # no per-cell times
    assert len(text) < 400_000, f"{name} is {len(text)} bytes"
    assert "widgets" not in saved.metadata  # no widget models' state (their JS bundles)

    # A fresh clone: the notebook, the lock and falnb-media/, no cache, no server calls.
    folder = tmp_path / "clone"
    folder.mkdir()
    shutil.copy(NOTEBOOKS / name, folder / name)
    shutil.copy(NOTEBOOKS / "falnb.lock", folder / "falnb.lock")
    shutil.copytree(NOTEBOOKS / "falnb-media", folder / "falnb-media")
    assert verify_notebook(folder / name, timeout=120) == []

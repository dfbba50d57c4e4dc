"""`make demo` is the README's first command: it must work on the embedded default."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nbformat
from PIL import Image

from tests.kit import run_captured

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# Two of the examples (tests/notebook/test_examples.py runs them all): `make demo` passes every one.
CHOSEN = [NOTEBOOKS / "01-quickstart.ipynb", NOTEBOOKS / "07-your-own-model.ipynb"]


def test_demo_runs_on_the_embedded_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "FALNB_"))}
    env["FALNB_CACHE_DIR"] = str(tmp_path / "cache")
    done = run_captured(
        [sys.executable, "-m", "falnb.cli", "demo", "--notebook", *map(str, CHOSEN)],
        cwd=tmp_path,
        env=env,
        timeout=180,
    )
    assert "using the embedded local server" in done.stderr
    assert done.stderr.count("falnb: no FAL_KEY") == 1
    assert "{'prompt': 'a red fox', 'seed': 42}" in done.stdout
    assert "log: step 4/4" in done.stdout
    assert "final: {'text': 'fal models in notebooks'" in done.stdout
    with Image.open(tmp_path / "demo-output" / "text-to-image.jpg") as image:
        assert image.size == (1024, 768)
    # The notebooks' %%fal cells ran in their own kernels, against their own embedded servers.
    assert "local/text-to-image: 1 image (512x384), seed 42" in done.stdout
    assert "(42, (512, 384))" in done.stdout
    assert "HELLO HELLO HELLO" in done.stdout
    output = tmp_path / "demo-output"
    for notebook in CHOSEN:
        assert f"saved the executed notebook to demo-output/{notebook.name}" in done.stdout
        executed = nbformat.read(output / notebook.name, as_version=4)
        cells = [c for c in executed.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in cells)
        assert [o for c in cells for o in c.get("outputs", []) if o.output_type == "error"] == []
        page = (output / notebook.name).with_suffix(".html").read_text()
        assert page.startswith("<!DOCTYPE html>")
        assert "data:image/jpeg;base64," in page  # the outputs, not only the code
    assert "falnb lock verify demo-output/07-your-own-model.ipynb" in done.stdout
    assert done.stdout.rstrip().endswith("done.")

    # The executed notebooks reproduce from what is beside them: no cache, no server, no port.
    assert sorted(p.name for p in output.iterdir()) == [
        "01-quickstart.html", "01-quickstart.ipynb", "07-your-own-model.html",
        "07-your-own-model.ipynb", "falnb-media", "falnb.lock", "text-to-image.jpg",
    ]  # fmt: skip
    assert len(list((output / "falnb-media").iterdir())) == 4  # 01's two images, 07's two
    for name in ("01-quickstart.ipynb", "07-your-own-model.ipynb", "falnb.lock"):
        assert "127.0.0.1" not in (output / name).read_text()
    assert "iopub.execute_input" not in (output / "01-quickstart.ipynb").read_text()  # no times
    shutil.rmtree(tmp_path / "cache")
    verify = run_captured(
        [
            sys.executable,
            "-m",
            "falnb.cli",
            "lock",
            "verify",
            "demo-output/07-your-own-model.ipynb",
        ],
        cwd=tmp_path,
        env=env,
        timeout=180,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "demo-output/07-your-own-model.ipynb: reproduces from the lock" in verify.stdout

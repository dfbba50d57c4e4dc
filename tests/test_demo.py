"""`make demo` is the README's first command: it must work on the embedded default."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from PIL import Image

QUICKSTART = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def test_demo_runs_on_the_embedded_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "FALNB_"))}
    env["FALNB_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-m", "falnb.cli", "demo", "--notebook", str(QUICKSTART)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    assert "using the embedded local server" in done.stderr
    assert done.stderr.count("falnb: no FAL_KEY") == 1
    assert "{'prompt': 'a red fox', 'seed': 42}" in done.stdout
    assert "log: step 4/4" in done.stdout
    assert "final: {'text': 'fal models in notebooks'" in done.stdout
    with Image.open(tmp_path / "demo-output" / "text-to-image.jpg") as image:
        assert image.size == (1024, 768)
    # The notebook's %%fal cells ran in their own kernel, against its own embedded server.
    assert "local/text-to-image: 1 image (1024x576), seed 42" in done.stdout
    assert "(42, (1024, 576))" in done.stdout
    executed = nbformat.read(tmp_path / "demo-output" / "quickstart.ipynb", as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    assert (tmp_path / "demo-output" / "falnb.lock").exists()
    assert done.stdout.rstrip().endswith("done.")

    # The executed notebook reproduces from what is beside it: no cache, no server, no port.
    output = tmp_path / "demo-output"
    assert sorted(p.name for p in output.iterdir()) == [
        "falnb-media", "falnb.lock", "quickstart.ipynb", "text-to-image.jpg",
    ]  # fmt: skip
    assert len(list((output / "falnb-media").iterdir())) == 2  # the image and the audio
    for name in ("quickstart.ipynb", "falnb.lock"):
        assert "127.0.0.1" not in (output / name).read_text()
    assert "iopub.execute_input" not in (output / "quickstart.ipynb").read_text()  # no times
    shutil.rmtree(tmp_path / "cache")
    verify = subprocess.run(
        [sys.executable, "-m", "falnb.cli", "lock", "verify", "demo-output/quickstart.ipynb"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "demo-output/quickstart.ipynb: reproduces from the lock" in verify.stdout

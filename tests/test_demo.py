"""`make demo` is the README's first command: it must work on the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image


def test_demo_runs_on_the_embedded_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "FALNB_"))}
    done = subprocess.run(
        [sys.executable, "-m", "falnb.cli", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "using the embedded local server" in done.stderr
    assert done.stderr.count("falnb:") == 1
    assert "{'prompt': 'a red fox', 'seed': 42}" in done.stdout
    assert "log: step 4/4" in done.stdout
    assert "final: {'text': 'fal models in notebooks'" in done.stdout
    with Image.open(tmp_path / "falnb-demo.jpg") as image:
        assert image.size == (1024, 768)
    assert done.stdout.rstrip().endswith("done.")

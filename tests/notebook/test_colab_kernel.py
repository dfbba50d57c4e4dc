"""In a real kernel "in Colab" (a fake ``google.colab`` on its path), the FAL_KEY secret is
what the magics use, and its value reaches no output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbkit import build_notebook

SECRET = "colab-kernel-id:colab-kernel-secret"


def test_the_colab_secret_is_the_kernels_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "fakecolab" / "google" / "colab"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "userdata.py").write_text(f"def get(name):\n    return {SECRET!r}\n")
    for name in list(os.environ):
        if name.startswith(("FAL_", "FALNB_")):
            monkeypatch.delenv(name)
    paths = [
        str(tmp_path / "fakecolab"),
        *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)),
    ]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    monkeypatch.setenv("FAL_HOME_DIR", str(tmp_path / "no-fal-home"))
    monkeypatch.setenv("FALNB_LOCK", str(tmp_path / "falnb.lock"))
    notebook = build_notebook(
        [
            "import google.colab  # what Colab's kernel has imported at start",
            "import falnb",
            "%fal config",
            "print(falnb.default_client().target.queue_url)",
        ]
    )
    NotebookClient(
        notebook, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "\n".join(
        output.get("text", "") or json.dumps(output.get("data", {}))
        for cell in notebook.cells
        for output in cell.outputs
    )
    assert "target = fal (a fal key is set): fal's cloud" in text
    assert "key = from the FAL_KEY Colab secret" in text
    assert "https://queue.fal.run" in text
    assert "embedded local server" not in text
    assert SECRET not in nbformat.writes(notebook)

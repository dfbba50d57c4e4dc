"""notebooks/quickstart.ipynb runs top to bottom in a real kernel, leaving stable outputs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
from nbkit import RecordingClient

from falnb.local import LocalServer

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"


def test_quickstart_runs(falnb_kernel_env: None, server: LocalServer, tmp_path: Any) -> None:
    notebook = nbformat.read(str(NOTEBOOK), as_version=4)
    RecordingClient(notebook, timeout=60, resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not [o for o in c.outputs if o.output_type == "error"] for c in code)
    text = str(notebook)
    assert "local/text-to-image: 1 image (1024x576), seed 42" in text
    assert "(42, (1024, 576))" in text
    assert "local/text-to-audio: audio audio/wav" in text
    assert not re.search(r"0x[0-9a-f]{6,}", text)
    assert server.key not in text

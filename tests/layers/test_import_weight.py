"""`import falnb` and `%load_ext falnb` in a fresh interpreter load none of the heavy modules
(ruff's TID253 list in pyproject.toml bans them at module level; this proves the whole import
graph honours it). PyYAML is the one exception left: the magics' parser imports it eagerly.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "PIL", "numpy", "av", "ipywidgets", "anywidget", "nbformat", "nbclient", "nbconvert",
    "pandas", "cryptography", "uvicorn", "starlette", "websockets", "msgpack", "pydantic",
    "filelock", "httpcore",
]  # fmt: skip

PROBE = """\
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
import falnb
shell.run_line_magic("load_ext", "falnb")
print(json.dumps(sorted(m for m in HEAVY if m in sys.modules)))
"""


def test_import_and_load_ext_load_no_heavy_module() -> None:
    code = f"HEAVY = {HEAVY!r}\n{PROBE}"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []

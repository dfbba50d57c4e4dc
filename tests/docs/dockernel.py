"""Run cells in a real kernel (nbclient) on the embedded default, as a new user's would.

No FAL_KEY and no FALNB_* settings reach the kernel (so falnb starts its own embedded local
server), its media store is the given temp dir, and its working directory is the folder
holding the files the docs assume. All cells run in one kernel, in order, errors or not, so
the tests can say which block failed and how.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from docsource import ROOT
from nbclient import NotebookClient
from PIL import Image


def embedded_env(cache: Path) -> dict[str, str]:
    """The environment of a user with no key who has not configured falnb."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FAL_", "FALNB_"))
        and name not in ("JPY_SESSION_NAME", "VSCODE_PID")
    }
    env["FALNB_CACHE_DIR"] = str(cache)
    # The README imports examples.my_models from a checkout; the temp folder is elsewhere.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def make_fixtures(folder: Path) -> None:
    """The files the README's examples open: a photo.png and a cat.png (small RGB images)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, tint in (("photo.png", (40, 110, 200)), ("cat.png", (230, 140, 30))):
        image = Image.new("RGB", (96, 64), tint)
        for x in range(96):  # a gradient, so a posterized copy differs from its input
            for y in range(0, 64, 8):
                image.putpixel((x, y), (x * 2, y * 3, 255 - x * 2))
        image.save(folder / name)


@dataclass
class Ran:
    """One executed cell: its outputs and the live-view updates it sent."""

    source: str
    outputs: list[Any]
    updates: list[str] = field(default_factory=list)
    before: Ran | None = None  # the cell run just before, where a test set one up
    after: Ran | None = None  # the cell run just after, asserting this one's effects

    def streams(self, name: str) -> str:
        return "".join(o.text for o in self.outputs if o.output_type == "stream" and o.name == name)

    @property
    def text(self) -> str:
        """Everything a reader sees as text: streams, and the text/plain of displays."""
        parts = []
        for o in self.outputs:
            if o.output_type == "stream":
                parts.append(o.text)
            elif o.output_type in ("display_data", "execute_result"):
                parts.append(o.data.get("text/plain", ""))
            elif o.output_type == "error":
                parts.append(f"{o.ename}: {o.evalue}")
        return "\n".join(parts)

    @property
    def error(self) -> str:
        """The cell's error (an exception, or IPython's UsageError line), else ""."""
        for o in self.outputs:
            if o.output_type == "error":
                return f"{o.ename}: {o.evalue}\n" + "\n".join(o.traceback)
        stderr = self.streams("stderr")
        return stderr if "UsageError" in stderr else ""

    def data(self, mime: str) -> list[Any]:
        return [
            o.data[mime]
            for o in self.outputs
            if o.output_type in ("display_data", "execute_result") and mime in o.data
        ]

    @property
    def falnb(self) -> dict[str, Any]:
        """The falnb metadata (endpoint, arguments, seed, request id) of its last result."""
        found = [o.metadata["falnb"] for o in self.outputs if "falnb" in o.get("metadata", {})]
        assert found, f"no falnb result in {self.source!r}: {self.text}"
        return dict(found[-1])

    def ok(self) -> Ran:
        """Itself, after asserting it raised nothing."""
        assert not self.error, f"{self.source!r} failed:\n{self.error}"
        return self


class _Client(NotebookClient):
    """nbclient folds display updates into outputs; keep them, per cell, as the live view."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.updates: dict[int, list[str]] = {}

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        if msg["msg_type"] == "update_display_data":
            text = msg["content"]["data"].get("text/plain", "")
            self.updates.setdefault(cell_index, []).append(text)
        return super().process_message(msg, cell, cell_index)


def run_cells(cells: list[str], folder: Path, cache: Path, timeout: int = 60) -> list[Ran]:
    """Execute ``cells`` in one fresh kernel working in ``folder``; one Ran per cell."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    client = _Client(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute(env=embedded_env(cache))
    return [
        Ran(cell.source, list(cell.outputs), client.updates.get(index, []))
        for index, cell in enumerate(notebook.cells)
    ]

"""Executing a notebook in a fresh kernel (nbclient), for ``falnb demo`` and ``falnb lock verify``.

Jupyter's packages are imported only when a notebook is run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["execute", "read", "write"]


def read(path: Path) -> Any:
    import nbformat

    return nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]


def write(notebook: Any, path: Path) -> None:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)  # type: ignore[no-untyped-call]


def execute(
    notebook: Any,
    *,
    directory: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    kernel_name: str | None = None,
) -> Any:
    """Run every code cell of ``notebook`` (in place) in a kernel whose cwd is ``directory``.

    ``env`` is added to this process's environment for the kernel; cell errors are kept in
    the outputs rather than raised.
    """
    from nbclient import NotebookClient

    kernel = kernel_name or notebook.metadata.get("kernelspec", {}).get("name", "python3")
    client = NotebookClient(
        notebook,
        timeout=int(timeout),
        allow_errors=True,
        kernel_name=kernel,
        record_timing=False,  # per-cell timestamps: a saved re-run would never diff clean
        # Widget models' state (each anywidget's whole JS bundle, a realtime frame) would be
        # saved in the notebook's metadata; falnb's outputs carry their own static fallback.
        store_widget_state=False,
        resources={"metadata": {"path": str(directory)}},
    )
    client.execute(env={**os.environ, **(env or {})})
    return notebook

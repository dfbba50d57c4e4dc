"""Helpers for the notebook tests (a module with a unique name, so tests can import it)."""

from __future__ import annotations

from typing import Any

import nbformat
from nbclient import NotebookClient

from falnb.local import LocalServer


class Raises(str):
    """A cell source that is expected to fail (tagged ``raises-exception``)."""

    __slots__ = ()


Cells = list[str]


def kernel_env(server: LocalServer) -> dict[str, str]:
    base = server.base_url
    return {
        "FALNB_TARGET": "fal",
        "FAL_KEY": server.key,
        "FALNB_RUN_URL": base,
        "FALNB_QUEUE_URL": f"{base}/_queue",
        "FALNB_REST_URL": f"{base}/_rest",
        "FALNB_CDN_URL": f"{base}/_cdn",
        "FALNB_REALTIME_URL": "ws" + base[len("http") :],
    }


class RecordingClient(NotebookClient):
    """A NotebookClient that also keeps the display updates (nbclient folds them away)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.updates: list[str] = []

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        if msg["msg_type"] == "update_display_data":
            self.updates.append(msg["content"]["data"].get("text/plain", ""))
        return super().process_message(msg, cell, cell_index)


def build_notebook(cells: Cells) -> Any:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    for source in cells:
        cell = nbformat.v4.new_code_cell(source)
        if isinstance(source, Raises):
            cell.metadata["tags"] = ["raises-exception"]
        notebook.cells.append(cell)
    return notebook

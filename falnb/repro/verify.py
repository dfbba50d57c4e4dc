"""``falnb lock verify``: re-execute a notebook offline and compare its outputs with the saved.

The notebook runs in a fresh kernel (nbclient) in its own directory with ``FALNB_RECORD=none``,
so every fal call must replay from the lock and no call reaches the network. It fails when a
call misses the lock (the cell's output says which) or any cell's outputs differ from those
saved in the file. The notebook on disk is not modified. ``%fal config`` lines that describe
the environment (the forced record mode, the machine's cache) are not compared.

Example::

    problems = verify_notebook(Path("analysis.ipynb"))
    for problem in problems:
        print(problem)
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from falnb._notebooks import execute, read
from falnb.repro.modes import ENV_VAR

__all__ = ["comparable_outputs", "verify_notebook"]

#: Data that legitimately changes per run (a live widget's model id).
_VOLATILE_MIME = ("application/vnd.jupyter.widget-view+json",)

#: ``%fal config`` lines that tell the environment, not the notebook: the record mode that
#: verify itself forces, and this machine's cache directory.
_ENVIRONMENT_LINES = (
    (
        re.compile(rf"^record = once \(default; {ENV_VAR}=\w+ applies\)$", re.MULTILINE),
        "record = once",
    ),
    (re.compile(r"^media cache = .*$", re.MULTILINE), "media cache = (this machine's)"),
)


def _without_environment(text: str) -> str:
    for pattern, replacement in _ENVIRONMENT_LINES:
        text = pattern.sub(replacement, text)
    return text


def comparable_outputs(cell: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A code cell's outputs with what changes per run removed (execution counts, widget ids)."""
    outputs: list[dict[str, Any]] = []
    for output in cell.get("outputs", []):
        item = {k: v for k, v in dict(output).items() if k not in ("execution_count", "transient")}
        if "data" in item:
            item["data"] = {k: v for k, v in item["data"].items() if k not in _VOLATILE_MIME}
            if not item["data"]:
                continue
        if isinstance(item.get("text"), list):
            item["text"] = "".join(item["text"])
        if isinstance(item.get("text"), str):
            item["text"] = _without_environment(item["text"])
        outputs.append(json.loads(json.dumps(item, sort_keys=True)))
    return outputs


def _describe(index: int, cell: Mapping[str, Any]) -> str:
    cell_id = cell.get("id")
    first = "".join(cell.get("source", "")).strip().splitlines()[:1]
    label = f"cell {index}" + (f" (id {cell_id})" if cell_id else "")
    return f"{label} {first[0][:60]!r}" if first else label


def _error_text(outputs: list[dict[str, Any]]) -> str | None:
    for output in outputs:
        if output.get("output_type") == "error":
            return f"{output.get('ename')}: {output.get('evalue')}"
        if output.get("name") == "stderr" and "record=none" in str(output.get("text", "")):
            return str(output["text"]).strip().splitlines()[-1]
    return None


def verify_notebook(
    notebook: Path, *, timeout: float = 600, kernel_name: str | None = None
) -> list[str]:
    """Problems found re-executing ``notebook`` with ``record=none`` ([] when it reproduces)."""
    saved = read(notebook)
    fresh = copy.deepcopy(saved)
    for cell in fresh.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    execute(
        fresh,
        directory=notebook.resolve().parent,
        env={ENV_VAR: "none", "JPY_SESSION_NAME": str(notebook.resolve())},
        timeout=timeout,
        kernel_name=kernel_name,
    )

    problems: list[str] = []
    for index, (old, new) in enumerate(zip(saved.cells, fresh.cells, strict=True)):
        if old.cell_type != "code":
            continue
        old_outputs, new_outputs = comparable_outputs(old), comparable_outputs(new)
        error = _error_text(new_outputs)
        if error is not None and error != _error_text(old_outputs):
            problems.append(f"{_describe(index, old)}: {error}")
        elif old_outputs != new_outputs:
            problems.append(
                f"{_describe(index, old)}: outputs differ from the saved ones "
                f"({len(old_outputs)} saved, {len(new_outputs)} now)"
                + _first_difference(old_outputs, new_outputs)
            )
    return problems


def _first_difference(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> str:
    for i, (a, b) in enumerate(zip(old, new, strict=False)):
        if a != b:
            keys = sorted(
                k for k in {*a.get("data", {}), *b.get("data", {})}
                if a.get("data", {}).get(k) != b.get("data", {}).get(k)
            )  # fmt: skip
            what = ", ".join(keys) if keys else "text/metadata"
            return f"; first at output {i}: {what}"
    return ""

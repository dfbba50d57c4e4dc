"""``falnb demo``: real jobs through the default target, printed as they run.

With no key configured this is the embedded local server, so the demo works offline. With
``--notebook`` (the example notebooks, for ``make demo``), each then runs in a fresh kernel (its
``%%fal`` cells are the main job) and its executed copy is saved, with an HTML copy, for a look
in JupyterLab, a browser or on GitHub, beside their shared ``falnb.lock`` and ``falnb-media/``:
``falnb lock verify`` replays each there with no server.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import httpx

import falnb
from falnb.client import Completed, InProgress, Queued

__all__ = ["main"]


def _say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()


def _on_update(out: TextIO) -> Any:
    def show(event: object) -> None:
        if isinstance(event, Queued):
            _say(out, f"  queued at position {event.position}")
        elif isinstance(event, (InProgress, Completed)):
            for line in event.logs or []:
                _say(out, f"  log: {line['message']}")

    return show


def _html(notebook: Any, saved: Path) -> Path | None:
    """``saved`` as HTML beside it (nbconvert's lab template), or None without nbconvert."""
    try:
        from nbconvert import HTMLExporter
    except ImportError:
        return None
    body, _ = HTMLExporter().from_notebook_node(notebook)  # type: ignore[no-untyped-call]
    page = saved.with_suffix(".html")
    page.write_text(body, encoding="utf-8")
    return page


def run_notebook(notebook: Path, out_dir: Path, out: TextIO) -> Path:
    """Execute ``notebook`` in a fresh kernel in ``out_dir``; print its text outputs."""
    from falnb import _notebooks  # Jupyter's packages only when asked for

    saved = out_dir / notebook.name
    _say(out, f"running {notebook} in a fresh kernel")
    started = time.monotonic()
    executed = _notebooks.execute(_notebooks.read(notebook), directory=out_dir.resolve())
    _notebooks.write(executed, saved)
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        _say(out, f"In: {cell.source.splitlines()[0] if cell.source else ''}")
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain") or output.get("text") or ""
            if output.get("output_type") == "error":
                text = f"{output.get('ename')}: {output.get('evalue')}"
            for line in str(text).strip().splitlines()[:6]:
                _say(out, f"    {line}")
    page = _html(executed, saved)
    also = f" (and {page.name})" if page else " (install nbconvert for an HTML copy)"
    _say(out, f"saved the executed notebook to {saved}{also} in {time.monotonic() - started:.0f} s")
    return saved


def _say_what_travels(out_dir: Path, saved: list[Path], out: TextIO) -> None:
    # What travels: the notebooks, their lock and the media the lock needs (commit all three).
    lock, media = out_dir / "falnb.lock", out_dir / "falnb-media"
    _say(out, f"their calls are pinned in {lock} (media in {media}/); replay one offline with:")
    # The last one: an earlier notebook's results can gain the seedcheck badge a later one
    # pinned in the shared lock, so its replay would differ from what was saved.
    _say(out, f"  falnb lock verify {saved[-1]}")


def main(
    out: TextIO = sys.stdout,
    notebooks: Sequence[Path] = (),
    out_dir: Path = Path("demo-output"),
) -> int:
    _say(out, "1. run local/echo")
    _say(out, f"  -> {falnb.run('local/echo', {'prompt': 'a red fox', 'seed': 42})}")

    _say(out, "2. subscribe to local/slow with logs")
    result = falnb.subscribe(
        "local/slow",
        {"duration": 1.0, "steps": 4},
        with_logs=True,
        on_enqueue=lambda request_id: _say(out, f"  submitted {request_id}"),
        on_queue_update=_on_update(out),
    )
    _say(out, f"  -> {result}")

    _say(out, "3. stream local/stream-text")
    final: dict[str, Any] = {}
    for partial in falnb.stream("local/stream-text", {"prompt": "fal models in notebooks"}):
        if isinstance(partial, dict):  # an event stream (a binary one would yield bytes)
            final = partial
            _say(out, f"  .. {partial.get('text', partial)}")
    _say(out, f"  -> final: {final}")

    if falnb.default_client().target.name == "local":
        _say(out, "4. subscribe to local/text-to-image")
        steps: list[str] = []
        image = falnb.subscribe(
            "local/text-to-image",
            {"prompt": "a golden sun over calm ocean waves", "seed": 7},
            with_logs=True,
            on_queue_update=lambda event: steps.extend(
                line["message"] for line in getattr(event, "logs", None) or []
            ),
        )
        _say(out, f"  {len(steps)} log lines, the last: {steps[-1] if steps else '-'}")
        first = image["images"][0]
        _say(
            out,
            f"  -> {first['width']}x{first['height']} {first['content_type']} seed={image['seed']}",
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        saved = out_dir / "text-to-image.jpg"
        saved.write_bytes(httpx.get(first["url"]).content)
        _say(out, f"     saved to {saved.resolve()}")
    if notebooks:
        out_dir.mkdir(parents=True, exist_ok=True)
        executed = [run_notebook(notebook, out_dir, out) for notebook in notebooks]
        _say_what_travels(out_dir, executed, out)
    _say(out, "done.")
    return 0

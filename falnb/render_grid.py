"""A sweep's results as a labelled grid: a plain MIME bundle that persists in the .ipynb.

Pure functions, no IPython. The last swept key runs along the columns, the one before it
down the rows (A1111's X/Y plot); further keys make one table per combination, headed by
their values. Under each image: the job's swept values and its seed; a click enlarges it.
A failed job keeps its place, with its error.

As :mod:`falnb.render` does, the bundle stays visible where HTML is sanitized or skipped:
a ``<table>`` with sizes as attributes (GitHub strips ``style``), alt text on every image,
and one ``image/jpeg`` of the whole grid, captions drawn in, at most ``SHEET_WIDTH`` wide,
for renderers that drop ``data:`` images or HTML. ``text/plain`` is stable across runs (no
request ids, no times).
"""

from __future__ import annotations

import html
import io
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from falnb._values import data_uri
from falnb.render import NO_MATH, _fit_jpeg

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from falnb.result import Result
    from falnb.sweeps import Failed, SweepJob, SweepResults

__all__ = ["GRID_SIDE", "MAX_CELLS", "SHEET_WIDTH", "Layout", "grid_bundle", "grid_layout"]

#: Thumbnails in the grid fit this box (click one to see it larger).
GRID_SIDE = 192
#: The static picture of the grid is at most this wide (GitHub shows it at page width).
SHEET_WIDTH = 1536
#: Cells shown at most; a larger sweep says how many more there are.
MAX_CELLS = 400
#: Sweeps up to this size embed their images at twice the grid size, for click to enlarge.
ENLARGED_CELLS = 64
_SHEET_BUDGET = 600_000
_CAPTION_HEIGHT = 28


# A click shows the image at its own size over the page (a table cell cannot grow past the
# page: the front ends cap images at 100% of it), with its caption; a click anywhere closes it.
# Only single quotes: it sits in a double-quoted attribute. Sanitizers drop it, the grid stays.
_ZOOM = (
    "const o = document.createElement('div'); o.className = 'falnb-zoom';"
    " o.style.cssText = 'position:fixed;inset:0;z-index:10000;display:flex;"
    "flex-direction:column;align-items:center;justify-content:center;gap:6px;"
    "background:rgba(0,0,0,0.8);color:#eee;font-size:13px;cursor:zoom-out';"
    " const i = new Image(); i.src = this.src; i.alt = this.alt;"
    " i.style.cssText = 'max-width:95vw;max-height:90vh';"
    " const c = document.createElement('div'); c.textContent = this.alt;"
    " o.append(i, c); o.onclick = () => o.remove(); document.body.append(o)"
)


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "…"


@dataclass
class Layout:
    """Where each job sits: ``tables`` pairs the outer keys' values with a matrix of job
    indexes (rows x columns, -1 for none); ``rows`` / ``columns`` are the header values."""

    keys: list[str]
    row_key: str | None
    column_key: str | None
    rows: list[str]
    columns: list[str]
    tables: list[tuple[dict[str, Any], list[list[int]]]]


def grid_layout(jobs: Sequence[SweepJob]) -> Layout:
    """The grid of ``jobs``: jobs without labels (``falnb.map``) fill rows of up to eight."""
    keys: list[str] = list(dict.fromkeys(k for job in jobs for k in job.labels))
    if not keys:
        width = 8
        indexes = list(range(len(jobs)))
        flat = [indexes[i : i + width] for i in range(0, len(jobs), width)]
        return Layout([], None, None, [], [], [({}, flat)])
    column_key = keys[-1]
    row_key = keys[-2] if len(keys) > 1 else None
    outer = keys[:-2]

    def values(key: str) -> list[str]:
        return list(dict.fromkeys(_value(job.labels.get(key)) for job in jobs))

    columns = values(column_key)
    rows = values(row_key) if row_key is not None else [""]
    where: dict[tuple[str, ...], int] = {}
    for index, job in enumerate(jobs):
        where.setdefault(tuple(_value(job.labels.get(k)) for k in keys), index)
    tables: list[tuple[dict[str, Any], list[list[int]]]] = []
    for combo in itertools.product(*(values(k) for k in outer)):
        matrix: list[list[int]] = []
        for row in rows:
            line = []
            for column in columns:
                key = (*combo, *((row,) if row_key is not None else ()), column)
                line.append(where.get(key, -1))
            matrix.append(line)
        if any(i >= 0 for line in matrix for i in line):
            tables.append((dict(zip(outer, combo, strict=True)), matrix))
    return Layout(keys, row_key, column_key, rows, columns, tables)


def _first_image(outcome: Result | Failed) -> tuple[bytes, str] | None:
    for file in getattr(outcome, "files", None) or []:
        if file.kind == "image":
            return file.data, file.content_type
    return None


def _thumbnail(data: bytes, side: int) -> PILImage:
    from PIL import Image  # rendering images needs Pillow anyway

    with Image.open(io.BytesIO(data)) as image:
        thumb: PILImage = image.convert("RGB")
    thumb.thumbnail((side, side))
    return thumb


def _caption(job: SweepJob, outcome: Result | Failed, shown: set[str]) -> str:
    """The job's swept values not already in the headers, and its seed."""
    parts = [f"{k}={_value(v)}" for k, v in job.labels.items() if k not in shown and k != "seed"]
    seed = job.labels.get("seed", getattr(outcome, "seed", None))
    if seed is not None:
        parts.append(f"seed {_value(seed)}")
    return " · ".join(parts)


def _cell_html(
    index: int, results: SweepResults, thumbs: dict[int, PILImage], shown: set[str]
) -> str:
    from falnb.sweeps import Failed  # sweeps imports render_grid lazily

    if index < 0:
        return "<td></td>"
    job, outcome = results.jobs[index], results[index]
    caption = html.escape(_caption(job, outcome, shown))
    style = "padding:4px;vertical-align:top;text-align:center"
    if isinstance(outcome, Failed):
        word = "cancelled" if outcome.cancelled else "failed"
        message = html.escape(_value(outcome.message))
        return (
            f'<td style="{style}"><div style="width:{GRID_SIDE}px;font-size:12px;color:#b00">'
            f"<b>{word}</b><br>{message}</div>"
            f'<div style="font-size:11px;opacity:0.75">{caption}</div></td>'
        )
    thumb = thumbs.get(index)
    if thumb is None:
        text = outcome.text if outcome.text is not None else json.dumps(outcome.json, default=str)
        body = (
            f'<pre style="width:{GRID_SIDE}px;white-space:pre-wrap;font-size:11px;'
            f'text-align:left;margin:0">{html.escape(_value(text))}</pre>'
        )
    else:
        buffer = io.BytesIO()
        thumb.save(buffer, format="JPEG", quality=80)
        alt = f"{job.endpoint} {caption}"
        scale = min(1.0, GRID_SIDE / max(thumb.width, thumb.height))
        width, height = max(1, round(thumb.width * scale)), max(1, round(thumb.height * scale))
        # Embedded larger than shown (for small sweeps): a click shows it at its own size.
        body = (
            f'<img src="{data_uri(buffer.getvalue(), "image/jpeg")}" alt="{alt}" '
            f'title="click to enlarge" width="{width}" height="{height}" '
            f'onclick="{_ZOOM}" style="cursor:zoom-in;border-radius:3px;height:auto">'
        )
    return (
        f'<td style="{style}">{body}<div style="font-size:11px;opacity:0.75">{caption}</div></td>'
    )


def _sheet(
    results: SweepResults,
    tables: list[tuple[dict[str, Any], list[list[int]]]],
    thumbs: dict[int, PILImage],
) -> bytes | None:
    """One JPEG of every table's images with their captions, at most SHEET_WIDTH wide."""
    if not thumbs:
        return None
    from PIL import Image, ImageDraw

    columns = max(len(line) for _, matrix in tables for line in matrix)
    largest = max(max(t.width, t.height) for t in thumbs.values())
    side = min(GRID_SIDE, largest, max(48, (SHEET_WIDTH - 8 * columns) // columns))
    cell_w, cell_h = side + 8, side + _CAPTION_HEIGHT
    rows = sum(len(matrix) for _, matrix in tables)
    sheet = Image.new("RGB", (cell_w * columns, cell_h * rows), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    top = 0
    for _, matrix in tables:
        for line in matrix:
            for column, index in enumerate(line):
                if index < 0:
                    continue
                left = column * cell_w + 4
                thumb = thumbs.get(index)
                if thumb is not None:
                    copy = thumb.copy()
                    copy.thumbnail((side, side))
                    sheet.paste(copy, (left, top))
                else:
                    draw.rectangle((left, top, left + side, top + side), outline=(200, 200, 200))
                    draw.text(
                        (left + 4, top + 4),
                        "no image" if results[index] else "failed",
                        fill=(170, 0, 0),
                    )
                caption = _caption(results.jobs[index], results[index], set())
                while len(caption) > 1 and draw.textlength(caption) > side:
                    caption = caption[:-2] + "…"
                draw.text((left, top + side + 2), caption, fill=(60, 60, 60))
            top += cell_h
    return _fit_jpeg(sheet, _SHEET_BUDGET)


def _plain(results: SweepResults) -> str:
    lines = [f"sweep: {results.summary()}"]
    for job, outcome in zip(results.jobs, results[:MAX_CELLS], strict=False):
        state = (
            "ok" if outcome else ("cancelled" if getattr(outcome, "cancelled", False) else "failed")
        )
        lines.append(f"  {job.endpoint} {job.label()}: {state}".rstrip())
    if len(results) > MAX_CELLS:
        lines.append(f"  … and {len(results) - MAX_CELLS} more")
    return "\n".join(lines)


def grid_bundle(results: SweepResults) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(data, metadata)`` for IPython: the labelled grid of ``results``."""
    jobs = results.jobs[:MAX_CELLS]
    layout = grid_layout(jobs)
    row_key, column_key, tables = layout.row_key, layout.column_key, layout.tables
    shown = {k for k in (row_key, column_key) if k is not None}
    thumbs: dict[int, PILImage] = {}
    side = GRID_SIDE * 2 if len(jobs) <= ENLARGED_CELLS else GRID_SIDE
    for index in range(len(jobs)):
        image = _first_image(results[index])
        if image is not None:
            thumbs[index] = _thumbnail(image[0], side)
    parts: list[str] = []
    head_style = "font-size:12px;padding:4px"
    for outer, matrix in tables:
        if outer:
            heading = " · ".join(f"{k}={_value(v)}" for k, v in outer.items())
            parts.append(
                f'<p style="font-size:13px;margin:8px 0 2px"><b>{html.escape(heading)}</b></p>'
            )
        rows: list[str] = []
        if column_key is not None:
            header = "".join(
                f'<th style="{head_style};text-align:center">'
                f"{html.escape(f'{column_key}={value}')}</th>"
                for value in layout.columns
            )
            corner = f'<th style="{head_style}"></th>' if row_key is not None else ""
            rows.append(f"<tr>{corner}{header}</tr>")
        for number, line in enumerate(matrix):
            label = ""
            if row_key is not None:
                text = html.escape(f"{row_key}={layout.rows[number]}")
                label = f'<th style="{head_style};text-align:right">{text}</th>'
            cells = "".join(_cell_html(i, results, thumbs, shown) for i in line)
            rows.append(f"<tr>{label}{cells}</tr>")
        parts.append(
            f'<table class="falnb-grid" style="border-collapse:collapse">{"".join(rows)}</table>'
        )
    if len(results) > MAX_CELLS:
        parts.append(f"<p>… and {len(results) - MAX_CELLS} more jobs (results[{MAX_CELLS}:])</p>")
    summary = html.escape(results.summary())
    badges = "".join(
        f' <span style="font-size:12px">{html.escape(endpoint)}</span> {badge}'
        for endpoint, badge in results.badges.items()
    )
    data: dict[str, Any] = {
        "text/plain": _plain(results),
        "text/html": (
            f'<div class="falnb-sweep-grid {NO_MATH}"><div style="font-size:12px;opacity:0.75">'
            f"sweep: {summary}</div>{''.join(parts)}<div>{badges}</div></div>"
        ),
    }
    sheet = _sheet(results, tables, thumbs)
    if sheet is not None:
        import base64

        data["image/jpeg"] = base64.b64encode(sheet).decode("ascii")
    metadata = {"falnb": {"sweep": {"jobs": len(results), "keys": layout.keys}}}
    return data, metadata

"""A sweep's saved output is a labelled grid that stays visible where HTML is sanitized (as
GitHub does): a table with the swept values as headers, sized images with their values and
seed, and one picture of the whole grid for renderers that drop ``data:`` images."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image
from test_static_renderers import Page, sanitize

CELL = (
    "%%fal local/text-to-image --sweep -q -o grid\nprompt: [a fox, a wolf]\nseed: [1, 2, 3]\n"
    "image_size: {width: 64, height: 64}\nnum_inference_steps: 2"
)
TABLE = (
    "t = grid.table()\n"
    "print(len(t), sorted(set(t.columns) & {'seed', 'request_id', 'urls', 'status'}))"
)


def test_the_sweep_grid_survives_sanitizing_and_the_table_lists_every_job(
    run_notebook: Any,
) -> None:
    notebook, _ = run_notebook(["import falnb", CELL, "grid", TABLE])
    cells = notebook.cells
    [shown] = [o for o in cells[2].outputs if "text/html" in o.get("data", {})]
    bundle = shown["data"]
    kept = Page(sanitize(bundle["text/html"], data_images=True))
    assert "style" not in sanitize(bundle["text/html"], data_images=True)
    assert "table" in kept.tags
    assert len(kept.pictures()) == 6
    for image in kept.pictures():  # sized by attributes, which survive where style does not
        assert (image["width"], image["height"]) == ("64", "64")
    # Columns are the last swept key, rows the one before it; each image says its seed.
    for header in ("seed=1", "seed=2", "seed=3", "prompt=a fox", "prompt=a wolf"):
        assert header in kept.text
    assert kept.text.count("seed 2") == 2
    assert "6 jobs: 6 done" in kept.text
    # Without data: images (or HTML), the grid is one picture: 3 columns by 2 rows.
    sheet = Image.open(io.BytesIO(base64.b64decode(bundle["image/jpeg"])))
    assert sheet.width <= 1536
    assert sheet.width > sheet.height
    assert "  local/text-to-image prompt=a wolf · seed=3: ok" in bundle["text/plain"]
    assert bundle["text/plain"].startswith("sweep: 6 jobs: 6 done")
    printed = "".join(o.get("text", "") for o in cells[3].outputs)
    assert printed == "6 ['request_id', 'seed', 'status', 'urls']\n"

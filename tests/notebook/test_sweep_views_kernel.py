"""What a sweep and a single result leave in a saved notebook, in a real kernel (nbclient):
the same outputs when the notebook is run again and replays from the lock (diff-clean)."""

from __future__ import annotations

import json
from typing import Any

SWEEP = (
    "%%fal local/text-to-image --sweep -o grid\nprompt: [a fox, a wolf]\nseed: [1, 2]\n"
    "image_size: {width: 64, height: 64}\nnum_inference_steps: 2"
)


def outputs(notebook: Any) -> list[str]:
    return [json.dumps(cell.get("outputs", []), sort_keys=True) for cell in notebook.cells]


def test_a_sweep_leaves_a_stable_line_and_grid_that_a_replaying_rerun_repeats(
    run_notebook: Any,
) -> None:
    first, updates = run_notebook(["import falnb", SWEEP])
    # While it ran, the line had the rate and times; what stays has neither.
    assert any("jobs/s" in line for line in updates), updates
    line, grid = first.cells[1].outputs
    assert line["data"]["text/plain"] == "sweep local/text-to-image · 4 jobs: 4 done"
    assert "falnb-sweep-grid" in grid["data"]["text/html"]
    again, _ = run_notebook(["import falnb", SWEEP])  # the same lock: every job replays
    assert outputs(again) == outputs(first)

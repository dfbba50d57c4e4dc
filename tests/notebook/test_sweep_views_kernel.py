"""What a sweep and a single result leave in a saved notebook, in a real kernel (nbclient):
the same outputs when the notebook is run again and replays from the lock (diff-clean), and
an endpoint's ``%fal seedcheck`` verdict as a badge under its single results."""

from __future__ import annotations

import json
from typing import Any

from test_static_renderers import Page, sanitize

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


SMALL = "image_size: {width: 64, height: 64}\nnum_inference_steps: 2"
SEEDCHECK = f"%%fal seedcheck local/text-to-image\nprompt: a fox\n{SMALL}"
SINGLE = f"%%fal local/text-to-image --seed 7\nprompt: a wolf\n{SMALL}"


def shown(cell: Any) -> dict[str, Any]:
    """The cell's result bundle (the output with HTML)."""
    [bundle] = [o["data"] for o in cell.outputs if "text/html" in o.get("data", {})]
    return dict(bundle)


def test_a_checked_endpoints_single_results_carry_its_seedcheck_badge_in_the_saved_output(
    run_notebook: Any,
) -> None:
    cells = ["import falnb", SEEDCHECK, SINGLE, "%fal local/echo x=1"]
    first, _ = run_notebook(cells)
    assert "the seed holds exactly" in shown(first.cells[1])["text/plain"]
    result = shown(first.cells[2])
    assert 'class="falnb-seedcheck"' in result["text/html"]
    assert "seed 7\nseed: exact (%fal seedcheck)\n" in result["text/plain"]
    # GitHub's sanitizer drops the badge's colours; its words stay.
    assert "seed: exact" in Page(sanitize(result["text/html"], data_images=True)).text
    assert "falnb-seedcheck" not in json.dumps(first.cells[3].outputs)  # never checked
    # Run again: the result replays from the lock with the same badge, byte for byte.
    again, _ = run_notebook(cells)
    assert outputs(again) == outputs(first)


def test_a_replay_shows_the_badge_its_result_was_recorded_with(run_notebook: Any) -> None:
    # The single result runs before the endpoint is checked: recorded without a badge. Its
    # replay, with a verdict in the lock by then, must save the same output (diff-clean).
    cells = ["import falnb", SINGLE, SEEDCHECK]
    first, _ = run_notebook(cells)
    assert "falnb-seedcheck" not in json.dumps(first.cells[1].outputs)
    again, _ = run_notebook(cells)
    assert outputs(again) == outputs(first)

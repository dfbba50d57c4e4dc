"""A ``%%fal --sweep`` cell whose estimate passes ``%fal config confirm_above=...`` asks once
(one line, nothing sent) and runs when run again, in a real kernel."""

from __future__ import annotations

from typing import Any

from nbkit import Raises

from falnb.local import LocalServer

IMAGE = "prompt: a fox\nimage_size: {width: 32, height: 24}\nnum_inference_steps: 1"


def _outputs(cell: Any, kind: str) -> list[Any]:
    return [o for o in cell.outputs if o.output_type == kind]


def test_a_sweep_cell_above_the_threshold_asks_once_then_runs(
    run_notebook: Any, server: LocalServer
) -> None:
    sweep = f"%%fal local/text-to-image --sweep -o grid\n{IMAGE}\nseed: [1, 2, 3]"
    notebook, _ = run_notebook(
        [
            "import falnb",
            "%fal config confirm_above=0.05",
            Raises(sweep),  # 3 images at $0.025: $0.075, above $0.05
            sweep,  # the same sweep again: confirmed
            "print(len(grid), [round(r.cost, 3) for r in grid])",
        ]
    )
    cells = notebook.cells
    [asked] = _outputs(cells[2], "error")
    assert "Confirm the cost:" in asked.traceback[0]
    assert asked.traceback[-1] == (
        "these 3 jobs would cost about $0.075, above the $0.05 that needs confirming; nothing "
        "was submitted. Run it again to send them (or set %fal config confirm_above=... / "
        "confirm_above=off)"
    )
    assert "falnb/" not in str(cells[2].outputs)
    assert len(server.journal.accepted_submissions("local/text-to-image")) == 3
    printed = "".join(o.text for o in _outputs(cells[4], "stream"))
    assert printed.strip() == "3 [0.025, 0.025, 0.025]"

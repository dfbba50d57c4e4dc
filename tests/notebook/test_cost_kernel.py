"""Cost in a real kernel: the cost under a cell's output, a replay shown as free, ``%fal
usage`` and ``falnb.usage()``, and ``%fal config budget=...`` refusing a call in one line with
nothing submitted."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from nbkit import Raises

from falnb.local import LocalServer

IMAGE = "prompt: a fox\nimage_size: {width: 32, height: 24}\nnum_inference_steps: 1"


def _outputs(cell: Any, kind: str) -> list[Any]:
    return [o for o in cell.outputs if o.output_type == kind]


def test_usage_and_a_budget_through_the_magics(run_notebook: Any, server: LocalServer) -> None:
    notebook, _ = run_notebook(
        [
            "import falnb",
            "%fal config budget=0.04",
            f"%%fal local/text-to-image --seed 3\n{IMAGE}",  # $0.025
            "%fal local/echo a=1",  # $0.01
            Raises(f"%%fal local/text-to-image --seed 4\n{IMAGE}"),  # $0.025 more: refused
            f"%%fal local/text-to-image --seed 3\n{IMAGE}",  # the first again: replayed, free
            "%fal usage",
            (
                "rows = falnb.usage()\n"
                "total = rows.iloc[-1].to_dict() if hasattr(rows, 'iloc') else rows[-1]\n"
                "print(type(rows).__name__, total['requests'], total['replayed'], total['cost'])"
            ),
            Raises("%fal config budget=lots"),
        ]
    )
    cells = notebook.cells
    [image] = _outputs(cells[2], "display_data")
    assert image.data["text/plain"].endswith("\n1 image \u00d7 $0.025 = $0.025")
    assert "1 image \u00d7 $0.025 = $0.025" in image.data["text/html"]
    [refused] = _outputs(cells[4], "error")
    assert refused.traceback[-1] == (
        "local/text-to-image would cost $0.025 (1 image \u00d7 $0.025); this session has spent "
        "$0.035 of its $0.04 budget; nothing was submitted "
        "(raise it with %fal config budget=... (or budget=off))"
    )
    assert "Over the notebook's budget:" in refused.traceback[0]
    assert "falnb/" not in str(cells[4].outputs)
    # The refused call never reached the server: two submissions, the image and the echo.
    assert [e.path for e in server.journal.accepted_submissions()] == [
        "/_queue/local/text-to-image",
        "/_queue/local/echo",
    ]
    [replayed] = _outputs(cells[5], "display_data")
    # A replay's saved output is the recorded run's (the cost it was), so re-runs diff clean.
    assert replayed.data == image.data
    table = "".join(o.text for o in _outputs(cells[6], "stream")).splitlines()
    assert table[0].split() == ["endpoint", "requests", "replayed", "(free)", "units", "cost"]
    assert table[1].split() == ["local/text-to-image", "1", "1", "1", "image", "$0.025"]
    assert table[2].split() == ["local/echo", "1", "0", "1", "request", "$0.01"]
    assert table[3].split() == ["total", "2", "1", "$0.035"]
    kind, requests, replays, cost = "".join(o.text for o in _outputs(cells[7], "stream")).split()
    # A DataFrame where pandas is installed (the kernel shares this venv), else the rows.
    assert kind == ("DataFrame" if importlib.util.find_spec("pandas") else "list")
    assert (int(requests), int(replays)) == (2, 1)
    assert float(cost) == pytest.approx(0.035)
    budget_typo = str(cells[8].outputs)
    assert "budget must be an amount in USD (budget=5.00) or off, not 'lots'" in budget_typo

"""``%%fal --sweep`` in a real kernel (nbclient): the forms, the text live view, one-line
mistakes that send nothing, and a re-run that replays the recorded jobs instead of paying."""

from __future__ import annotations

import json
from typing import Any

from nbkit import Raises

from falnb.local import LocalServer

GRID = "%%fal local/echo --sweep -o grid\nseed: [1, 2, 3]\nprompt: [a fox, a wolf]"


def outputs(cell: Any, kind: str) -> list[Any]:
    return [o for o in cell.outputs if o.output_type == kind]


def printed(cell: Any) -> str:
    return "".join(o.get("text", "") for o in outputs(cell, "stream") if o.name == "stdout")


def error_of(cell: Any) -> str:
    """The one error a cell showed: an error output, or a UsageError's line on stderr (which
    the kernel may send in more than one piece)."""
    errors = [f"{e.ename}: {e.evalue}" for e in outputs(cell, "error")]
    stderr = "".join(o.text for o in outputs(cell, "stream") if o.name == "stderr").strip()
    shown = errors + ([stderr] if stderr else [])
    assert len(shown) == 1, cell.outputs
    return shown[0]


def test_sweep_forms_in_a_kernel(run_notebook: Any, server: LocalServer) -> None:
    notebook, updates = run_notebook(
        [
            "import falnb",
            GRID,
            "print([(r.json['seed'], r.json['prompt']) for r in grid])",
            "%%fal local/echo local/slow --seed 7 -q -o two\nduration: 0\nsteps: 1",
            "print([(r.endpoint, r.json['seed']) for r in two])",
            "%%fal local/echo --zip -q -o z\nseed: [1, 2]\nn: [10, 20]",
            "print([(r.json['seed'], r.json['n']) for r in z])",
            "%%fal local/echo --sweep seed -q -o named\nseed: [4, 5]\nimage_urls: [a, b]",
            "print([(r.json['seed'], r.json['image_urls']) for r in named])",
            Raises("%%fal local/echo --sweep\nprompt: a fox"),
            Raises("%%fal local/echo --zip\nseed: [1, 2]\nn: [1]"),
            Raises("%%fal local/echo --sweep --no-wait\nseed: [1, 2]"),
            Raises("%fal local/echo n=1 --concurrency 2"),
            Raises("%%fal local/echo --sweep nope\nseed: [1, 2]"),
            "before = 1",
            GRID,
        ]
    )
    cells = notebook.cells
    for cell in cells[:9]:
        assert not outputs(cell, "error"), (cell.source, cell.outputs)
    pairs = [(s, p) for s in (1, 2, 3) for p in ("a fox", "a wolf")]
    assert printed(cells[2]) == f"{pairs}\n"
    assert printed(cells[4]) == "[('local/echo', 7), ('local/slow', 7)]\n"
    assert printed(cells[6]) == "[(1, 10), (2, 20)]\n"
    assert printed(cells[8]) == "[(4, ['a', 'b']), (5, ['a', 'b'])]\n"
    # The live view's last word, saved in place of the view: no stuck progress line.
    shown = [o.data["text/plain"] for o in outputs(cells[1], "display_data")]
    # (Not an update's "6/6 done": a loaded kernel may coalesce the view's last updates.)
    assert shown, updates
    assert shown[-1].endswith("· 6 jobs: 6 done"), (shown, updates)

    assert "nothing to sweep" in error_of(cells[9])
    assert "the lists must be as long (seed: 2, n: 1)" in error_of(cells[10])
    assert "--stream, --no-wait and --seed auto do not apply" in error_of(cells[11])
    assert "--concurrency applies to a sweep" in error_of(cells[12])
    assert "--sweep names nope, which the arguments lack" in error_of(cells[13])
    for cell in cells[9:14]:
        assert "falnb/" not in json.dumps(cell.outputs), cell.source

    # 6 + 2 + 2 + 2 jobs; the mistakes sent nothing and the re-run of the grid replayed.
    assert len(server.journal.accepted_submissions()) == 12
    assert not outputs(cells[15], "error")


def test_seedcheck_in_a_kernel(run_notebook: Any, server: LocalServer) -> None:
    notebook, _ = run_notebook(
        [
            "import falnb\nsize = {'width': 48, 'height': 48}",
            "%fal seedcheck local/text-to-image prompt=fox num_inference_steps=2 image_size={size}",
            "%fal seedcheck local/echo x=1 --seed 3",
            Raises("%fal seedcheck"),
            Raises("%fal seedcheck local/echo --no-wait"),
        ]
    )
    cells = notebook.cells
    [exact] = [o for o in cells[1].outputs if o.output_type == "execute_result"]
    assert exact.data["text/plain"].startswith("local/text-to-image: the seed holds exactly")
    assert "seed: exact" in exact.data["text/html"]
    assert exact.metadata["falnb"]["seedcheck"]["verdict"] == "exact"
    [echo] = [o for o in cells[2].outputs if o.output_type == "execute_result"]
    assert echo.data["text/plain"].startswith("local/echo: ignores the seed")
    assert "needs an endpoint" in error_of(cells[3])
    assert "runs the endpoint three times itself" in error_of(cells[4])
    assert len(server.journal.accepted_submissions()) == 6

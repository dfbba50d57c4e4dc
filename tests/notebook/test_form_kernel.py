"""``%fal form`` in a real kernel (nbclient): filled in code as a person fills it, run through
``%%fal``'s own path, checked before sending, and its cell text runs as the same call.

The server's journal is the witness: each Run is exactly one submission with exactly the
form's values, a refused one is none, and the copied cell replays the form's recorded run.
"""

from __future__ import annotations

from typing import Any

from nbkit import Raises

from falnb.local import LocalServer

T2I = "local/text-to-image"


def text(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_a_form_runs_as_its_cell_and_refuses_mistakes(
    run_notebook: Any, server: LocalServer
) -> None:
    notebook, _ = run_notebook(
        [
            "import falnb",
            f"%fal form {T2I} --seed 7",
            (
                "form = _\n"
                "form.controls['prompt'].value = 'a red fox: {season}'\n"
                "form.controls['num_images'].value = 2\n"
                "form.controls['output_format'].value = 'png'\n"
                "print(form.cell_text())"
            ),
            (
                "result = form.run()\n"
                "shown = form.output.outputs[-1]['data']\n"
                "print(result.seed, len(result.images), sorted(shown))\n"
                "print(shown['text/plain'])"
            ),
            (
                "form.controls['prompt'].value = ''\n"
                "form.controls['num_images'].value = 3\n"
                "print(form.run(), form.message.value)"
            ),
            (
                "form.controls['prompt'].value = 'a red fox: {season}'\n"
                "form.controls['num_images'].value = 2\n"
                "form.copy_button.click()\n"
                "cell = form.cell_view.value\n"
                "assert cell == form.cell_text(), cell\n"
                "line, body = cell.removeprefix('%%fal ').split('\\n', 1)\n"
                "again = get_ipython().run_cell_magic('fal', line, body)\n"
                "print(again.request_id == result.request_id)"
            ),
            (
                "form.controls['num_images'].value = 1\n"
                "form.run_button.click()\n"
                "form.wait(60)\n"
                "print(len(form.result.images), form.run_button.disabled)"
            ),
            Raises("%fal form local/text-to-imag"),
            Raises("%fal local/text-to-imag prompt=fox"),
        ]
    )
    form, filled, ran, refused, copied, clicked, unknown, unknown_cell = notebook.cells[1:]

    [shown] = form.outputs
    assert "application/vnd.jupyter.widget-view+json" in shown.data
    # Where widgets do not render, the saved output still lists the fields and the cell.
    assert "<code>num_images</code>" in shown.data["text/html"]
    assert f"%%fal {T2I} --seed 7" in shown.data["text/html"]

    assert text(filled).splitlines() == [
        f"%%fal {T2I} --seed 7",
        'prompt: "a red fox: {{season}}"',
        "num_images: 2",
        "output_format: png",
    ]
    assert text(ran).splitlines()[0] == "7 2 ['image/jpeg', 'text/html', 'text/plain']"
    assert "2 images \u00d7 $0.025 = $0.05" in text(ran)  # the cost line, as a cell shows it
    assert "nothing was sent" in text(refused).lower()
    assert text(refused).startswith("None ")
    assert "prompt: required" in text(refused)
    assert text(copied).strip() == "True"  # the copied cell replayed the form's recorded run
    assert text(clicked).strip() == "1 False"

    sent = [e.body for e in server.journal.accepted_submissions(T2I)]
    assert sent == [
        {"prompt": "a red fox: {season}", "num_images": 2, "output_format": "png", "seed": 7},
        # num_images back at its default is left out, as a person writing the cell would.
        {"prompt": "a red fox: {season}", "output_format": "png", "seed": 7},
    ]
    # The kernel's target is not "local": its catalogue cannot refuse an id (fal's leaves out
    # private apps), but its search still suggests one, for a form and after a 404 alike.
    for cell in (unknown, unknown_cell):
        message = "\n".join(
            o.get("text", "") + "\n".join(o.get("traceback", [])) for o in cell.outputs
        )
        assert "did you mean local/text-to-image" in message.lower(), message
        assert "falnb/" not in message

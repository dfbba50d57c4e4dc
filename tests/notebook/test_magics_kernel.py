"""%%fal / %fal in a real kernel (nbclient) against the local server."""

from __future__ import annotations

import re
import time
from typing import Any

from jupyter_client.manager import start_new_kernel
from nbkit import Raises

from falnb.local import LocalServer

OBJECT_ID = re.compile(r"0x[0-9a-f]{6,}")


def outputs(cell: Any, kind: str | None = None) -> list[Any]:
    return [o for o in cell.outputs if kind is None or o.output_type == kind]


def error_text(cell: Any) -> str:
    found = outputs(cell, "error")
    assert found, f"expected an error in {cell.source!r}, got {cell.outputs}"
    return "\n".join(found[0].traceback)


def test_cells_render_results_with_metadata_and_progress(
    run_notebook: Any, server: LocalServer
) -> None:
    notebook, updates = run_notebook(
        [
            "%load_ext falnb",
            "season = 'winter'\nsize = 'square'\nn = 3",
            (
                "%%fal local/text-to-image --seed 42 -o fox\nprompt: a red fox in {season}\n"
                "image_size: {size}"
            ),
            "print(type(fox).__name__, fox.seed, fox.images[0].size, _ is fox)",
            "%%fal local/slow\nduration: 0.6\nsteps: 3",
            "%fal local/echo prompt=$season count={n} --seed auto",
            "%%fal local/text-to-audio --seed 1\na calm tune",
            "%%fal local/text-to-video --seed 1 --quiet\nprompt: waves",
        ]
    )
    image, printed, slow, echo, audio, video = (notebook.cells[i] for i in (2, 3, 4, 5, 6, 7))

    # The image cell: the live view was replaced by the result (one output, no stuck bar).
    [shown] = outputs(image)
    assert shown.output_type == "display_data"
    assert shown.data["text/plain"] == (
        "local/text-to-image: 1 image (512x512), seed 42\n1 image \u00d7 $0.025 = $0.025"
    )
    assert "image/jpeg" in shown.data
    assert len(shown.data["image/jpeg"]) * 3 / 4 <= 200_000
    assert "512x512 · seed 42" in shown.data["text/html"]
    meta = shown.metadata["falnb"]
    assert meta["endpoint"] == "local/text-to-image"
    assert meta["arguments"] == {
        "prompt": "a red fox in winter",
        "image_size": "square",
        "seed": 42,
    }
    assert meta["seed"] == 42
    assert meta["request_id"]
    assert meta["timings"]["inference"] > 0
    assert outputs(printed)[0].text == "Result 42 (512, 512) True\n"

    # Progress: the text view went through the states, with the step bar, then was replaced.
    slow_lines = [u for u in updates if u.startswith("local/slow")]
    assert any("in queue" in u or "running" in u for u in slow_lines)
    assert any("step 3/3" in u and "[####" in u for u in slow_lines)
    assert outputs(slow)[-1].data["text/plain"].startswith("local/slow: JSON")

    # $name and {name}: typed values (count stays an int), seed picked before sending.
    echo_meta = outputs(echo)[-1].metadata["falnb"]
    assert echo_meta["arguments"]["prompt"] == "winter"
    assert echo_meta["arguments"]["count"] == 3
    assert isinstance(echo_meta["seed"], int)
    assert echo_meta["arguments"]["seed"] == echo_meta["seed"]

    assert "<audio" in outputs(audio)[-1].data["text/html"]
    # --quiet: no live view; the returned result is the one output.
    [video_out] = outputs(video)
    assert "<video" in video_out.data["text/html"]

    saved = str(notebook)
    assert not OBJECT_ID.search(saved)
    assert server.key not in saved


def test_errors_are_one_readable_message(run_notebook: Any, server: LocalServer) -> None:
    server.faults.add("status=429", role="queue", method="POST", path_contains="local/busy")
    notebook, _ = run_notebook(
        [
            "import falnb",
            Raises("%%fal local/fail\nstatus: 422"),
            Raises("%%fal local/no-such-endpoint\nprompt: hi"),
            Raises("%fal local/echo --bogus"),
            Raises("%%fal local/echo\nprompt: [unclosed\nseed: 1"),
            Raises("%%fal local/slow --timeout 0.5\nduration: 5"),
            Raises("%fal local/busy a=1"),
            Raises("import os\ndel os.environ['FAL_KEY']\n%fal local/echo --target fal a=1"),
            "%fal --help",
        ]
    )
    cells = notebook.cells
    validation = error_text(cells[1])
    assert "rejected the arguments (422)" in validation
    assert "prompt: Field required" in validation
    assert "Unknown endpoint local/no-such-endpoint" in error_text(cells[2])
    assert "UsageError: unknown option --bogus" in str(cells[3].outputs)
    assert "not valid YAML" in str(cells[4].outputs)
    assert "Timed out" in error_text(cells[5])
    assert "Rate limited (429)" in error_text(cells[6])
    assert "No fal key" in error_text(cells[7])
    for cell in cells[1:8]:
        text = str(cell.outputs)
        assert "falnb/" not in text, f"falnb traceback in {cell.source!r}: {text}"
        assert server.key not in text
    assert "--seed N|auto" in outputs(cells[8])[0].text


def test_interrupt_cancels_the_request(falnb_kernel_env: None, server: LocalServer) -> None:

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        kc.execute_interactive("import falnb", timeout=30)
        msg_id = kc.execute("%%fal local/slow\nduration: 30\nsteps: 30")
        deadline = time.monotonic() + 20
        while not server.journal.accepted_submissions("local/slow"):
            assert time.monotonic() < deadline, "the request was never submitted"
            time.sleep(0.05)
        km.interrupt_kernel()
        error = None
        while error is None:
            msg = kc.get_iopub_msg(timeout=20)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "error":
                error = msg["content"]
        assert "Interrupted" in "\n".join(error["traceback"])
        assert "cancelled" in "\n".join(error["traceback"])
        cancels = server.journal.entries(method="PUT", path_contains="/cancel")
        assert cancels, "no cancel reached the server"
        assert cancels[0].status == 202
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)

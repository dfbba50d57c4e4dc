"""What a notebook pays: replaying locked calls, saved bytes per image, import time.

Run: ``.venv/bin/python benchmarks/bench_notebook.py [--replays 100] [--imports 7]``
(``make bench`` runs it as part of ``benchmarks/suite.py``).

* replay: ``--replays`` calls of ``local/echo`` recorded to a lock, then run again by a fresh
  Session on that lock; the wall and CPU time of the second pass alone and the requests the
  server saw during it (its journal: it must be zero, the replay never touching the network).
* notebook bytes: a real kernel (nbclient) runs ``%%fal local/text-to-image`` for two
  1024x1024 images; the saved .ipynb's growth over the unexecuted one, per image.
* import: ``import falnb`` then ``%load_ext falnb`` in fresh IPython kernels, and
  ``import falnb`` alone in a bare interpreter; the median of ``--imports`` of each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import Server, median, serve  # noqa: E402

IMAGES = 2
CELL = f"""%%fal local/text-to-image --seed 7
prompt: a red fox in the snow, golden light
image_size: square_hd
num_images: {IMAGES}"""


def replay(server: Server, calls: int) -> dict[str, Any]:
    """Record ``calls`` echo calls, then time a fresh Session replaying them from the lock."""
    from falnb import SyncClient
    from falnb.repro import LockFile, MediaStore, Recorder
    from falnb.session import Session

    with tempfile.TemporaryDirectory(prefix="falnb-bench-") as tmp:
        folder = Path(tmp)

        def session() -> Session:
            recorder = Recorder(LockFile(folder / "falnb.lock"), MediaStore(folder / "media"))
            return Session(SyncClient(server.target()), recorder=recorder)

        inputs = [{"prompt": f"a fox, take {i}", "seed": i} for i in range(calls)]
        first = session()
        recording = time.perf_counter()
        for arguments in inputs:
            first.run("local/echo", arguments)
        recording = time.perf_counter() - recording
        server.clear_journal()
        again = session()
        start, cpu = time.perf_counter(), time.process_time()
        results = [again.run("local/echo", arguments) for arguments in inputs]
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        requests = len(server.journal())
    assert all(result.replayed for result in results), "a call was not replayed"
    assert requests == 0, f"the replay sent {requests} requests"
    return {
        "calls": calls,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "requests": requests,
        "record_seconds": recording,  # the first pass, which the figure leaves out
    }


@contextmanager
def kernel_env(server: Server, lock: Path) -> Iterator[None]:
    """Kernels started meanwhile target ``server`` and write ``lock`` (as the tests' do)."""
    from tests.kit import target_env

    saved = dict(os.environ)
    os.environ.update(target_env(server.base_url, server.key), FALNB_LOCK=str(lock))
    for name in ("JPY_SESSION_NAME", "FALNB_PROGRESS", "VSCODE_PID"):
        os.environ.pop(name, None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def notebook_bytes(server: Server) -> dict[str, Any]:
    """Bytes a saved notebook grows by per 1024x1024 image a ``%%fal`` cell shows."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [nbformat.v4.new_code_cell("import falnb"), nbformat.v4.new_code_cell(CELL)]
    with tempfile.TemporaryDirectory(prefix="falnb-bench-") as tmp:
        folder = Path(tmp)
        before = len(nbformat.writes(notebook).encode())
        with kernel_env(server, folder / "falnb.lock"):
            client = NotebookClient(
                notebook,
                timeout=300,
                kernel_name="python3",
                resources={"metadata": {"path": tmp}},
            )
            client.execute()
        path = folder / "saved.ipynb"
        nbformat.write(notebook, path)
        after = path.stat().st_size
    outputs = notebook.cells[1].outputs
    assert outputs, "the %%fal cell showed nothing"
    assert outputs[-1].output_type in ("display_data", "execute_result"), outputs
    return {
        "images": IMAGES,
        "side": 1024,
        "bytes_per_image": (after - before) / IMAGES,
        "notebook_bytes": after,
    }


KERNEL_IMPORT = """\
import time
start, cpu = time.perf_counter(), time.process_time()
import falnb
imported = time.perf_counter()
get_ipython().run_line_magic("load_ext", "falnb")
print(imported - start, time.perf_counter() - start, time.process_time() - cpu)
"""

BARE_IMPORT = """\
import time
start = time.perf_counter()
import falnb
print(time.perf_counter() - start)
"""


def writing_bytecode() -> dict[str, str]:
    """This environment, but with Python writing its bytecode caches (``.pyc``), as it does
    by default on a user's machine: with ``PYTHONDONTWRITEBYTECODE`` set (some sandboxes and
    CI images set it) every process compiles falnb's sources again, which is not what a user's
    import costs."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def in_fresh_kernel(code: str, env: dict[str, str] | None = None) -> str:
    """What ``code`` prints in a new IPython kernel (started, used once, shut down)."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", env=env or dict(os.environ))
    printed: list[str] = []

    def keep(message: dict[str, Any]) -> None:
        if message["msg_type"] == "stream":
            printed.append(message["content"]["text"])

    try:
        reply = client.execute_interactive(code, timeout=120, output_hook=keep)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return "".join(printed)


def import_time(processes: int) -> dict[str, Any]:
    """Seconds to ``import falnb`` + ``%load_ext falnb`` in fresh kernels (what a notebook
    pays: the kernel has IPython, asyncio and the rest already), and to ``import falnb`` in
    a bare interpreter; the median of ``processes`` of each, alternating."""

    env = writing_bytecode()

    def bare() -> float:
        command = [sys.executable, "-c", BARE_IMPORT]
        run = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
        return float(run.stdout)

    def in_kernel() -> list[float]:
        return [float(value) for value in in_fresh_kernel(KERNEL_IMPORT, env).split()]

    bare()  # warm the OS page cache and the bytecode caches (the magics' too)
    in_kernel()
    kernel, plain = [], []
    for _ in range(processes):
        kernel.append(in_kernel())
        plain.append(bare())
    return {
        "processes": processes,
        "import_s": median([k[0] for k in kernel]),
        "import_and_load_ext_s": median([k[1] for k in kernel]),
        # CPU seconds of the same (the kernel process's): what load on the machine cannot inflate
        "import_and_load_ext_cpu_s": median([k[2] for k in kernel]),
        "bare_import_s": median(plain),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replays", type=int, default=100)
    parser.add_argument("--imports", type=int, default=7)
    args = parser.parse_args()
    with serve() as server:
        figures = {
            "replay": replay(server, args.replays),
            "notebook_bytes": notebook_bytes(server),
        }
    figures["import"] = import_time(args.imports)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

"""Terminal IPython: the text progress view prints each log line once, the status as it changes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from nbkit import kernel_env

from falnb.local import LocalServer


def run_ipython(script: str, server: LocalServer, folder: Path) -> str:
    source = folder / "cell.ipy"
    source.write_text(script)
    env = {**os.environ, **kernel_env(server), "FALNB_LOCK": str(folder / "falnb.lock")}
    for name in ("JPY_SESSION_NAME", "FALNB_PROGRESS", "VSCODE_PID"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor", str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_each_log_line_once_and_the_status_as_it_changes(
    server: LocalServer, tmp_path: Path
) -> None:
    out = run_ipython(
        "import falnb\n"
        "result = %fal local/slow duration=0.8 steps=4 --record off\n"
        "print('seed:', result.seed)\n",
        server,
        tmp_path,
    )
    lines = out.splitlines()
    logs = [line.strip() for line in lines if line.startswith("  ")]
    assert logs == ["step 1/4", "step 2/4", "step 3/4", "step 4/4"]

    statuses = [line for line in lines if line.startswith("local/slow · ")]
    shown = [re.sub(r" · [\d.]+ s$", "", line) for line in statuses]
    assert len(shown) == len(set(shown)), out  # a status line is printed only when it changed
    assert shown[0] == "local/slow · submitting"
    assert shown[-1] == "local/slow · done · [####################] step 4/4"
    assert [s for s in shown if "step" in s and "running" in s] == [
        f"local/slow · running · [{'#' * 5 * i}{'.' * (20 - 5 * i)}] step {i}/4"
        for i in range(1, 5)
    ]
    assert lines[-1] == "seed: None"

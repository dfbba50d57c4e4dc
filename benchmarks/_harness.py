"""What every side-by-side benchmark shares: a server in its own process, pairing, statistics.

The server runs as ``falnb serve`` in a separate process so the clients measured here do not
share a GIL with it (an in-process server would bill its own work to whichever client runs).
Contenders are paired: each round runs every contender once, in an order that rotates from
round to round, so a machine that speeds up or slows down mid-run moves them all alike; a
ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.kit import free_port, healthy, serve_command, stop_process

T = TypeVar("T")


@dataclass
class Server:
    """A running ``falnb serve``: its base URL and key, and its journal."""

    base_url: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Key {self.key}"}

    def target(self) -> Any:
        from falnb import Target

        return Target.local(self.base_url, self.key)

    def journal(self) -> list[dict[str, Any]]:
        """What clients sent since the last clear (the benchmark's own journal calls left out)."""
        response = httpx.get(f"{self.base_url}/_falnb/journal", headers=self.auth, timeout=30)
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()
        return [e for e in entries if not e["path"].startswith("/_falnb/")]

    def clear_journal(self) -> None:
        httpx.delete(f"{self.base_url}/_falnb/journal", headers=self.auth, timeout=30)

    def point_fal_client(self) -> None:
        """Aim the official fal-client's module URLs at this server (as tests/compat does)."""
        import fal_client.client as fal_module

        base = self.base_url
        fal_module.RUN_URL_FORMAT = f"{base}/"
        fal_module.QUEUE_URL_FORMAT = f"{base}/_queue/"
        fal_module.REALTIME_URL_FORMAT = base.replace("http", "ws", 1) + "/"
        fal_module.REST_URL = f"{base}/_rest"
        fal_module.CDN_URL = f"{base}/_cdn"


@contextmanager
def serve(concurrency: int = 8) -> Iterator[Server]:
    """``falnb serve`` on a free loopback port, with a fresh key, stopped on exit."""
    key, port = secrets.token_hex(16), free_port()
    server = Server(f"http://127.0.0.1:{port}", key)
    with tempfile.NamedTemporaryFile("w", suffix=".key") as key_file:
        key_file.write(key)
        key_file.flush()
        command = serve_command("--port", str(port), "--key-file", key_file.name)
        command += ["--concurrency", str(concurrency)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not healthy(server.base_url, timeout=1):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the local server did not start")
                time.sleep(0.05)
            yield server
        finally:
            stop_process(process)


def paired(
    contenders: dict[str, Callable[[int], T]], rounds: int, *, start: int = 0
) -> dict[str, list[T]]:
    """Call each contender once per round (``fn(round)``), rotating the order each round."""
    names = list(contenders)
    out: dict[str, list[T]] = {name: [] for name in names}
    for index in range(start, start + rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            out[name].append(contenders[name](index))
    return out


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))])


def paired_ratio(ours: Sequence[float], theirs: Sequence[float]) -> float:
    """The median of the per-round ratios ``ours / theirs``."""
    return median([a / b for a, b in zip(ours, theirs, strict=True)])


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def machine() -> dict[str, Any]:
    """What the figures ran on: CPU model, cores, Python, OS, and the load average now."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_average": load_average(),
    }

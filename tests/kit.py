"""Helpers the test folders share: free ports, ``falnb serve`` subprocesses, kernel targets.

Import as ``from tests.kit import ...``; folder kits (``nbkit``, ``labkit``) build on it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

from falnb.client import Completed, InProgress, Status

if TYPE_CHECKING:
    from falnb.local import LocalServer
    from falnb.local.faults import FaultRule

__all__ = [
    "accepted",
    "free_port",
    "healthy",
    "keyed_http",
    "log_messages",
    "run_captured",
    "serve_command",
    "serving",
    "start_serve",
    "status_blip",
    "stop_process",
    "subscribed",
    "target_env",
    "wait_healed",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(base_url: str, *, timeout: float = 2.0) -> bool:
    """Whether a falnb server answers ``/_falnb/health`` at ``base_url`` now."""
    try:
        return httpx.get(f"{base_url}/_falnb/health", timeout=timeout).status_code == 200
    except httpx.TransportError:
        return False


def run_captured(
    argv: list[str],
    *,
    cwd: Path | str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to its end, its output captured as text (``check``: a failure raises)."""
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=check
    )


def serve_command(*args: str) -> list[str]:
    """``falnb serve ARGS`` with this interpreter (and so this checkout's falnb)."""
    return [sys.executable, "-m", "falnb.cli", "serve", *args]


def start_serve(port: int, key: str, log: IO[bytes] | Path) -> subprocess.Popen[bytes]:
    """``falnb serve`` on ``port`` with ``key``, its output in ``log``."""
    out = log.open("wb") if isinstance(log, Path) else log
    return subprocess.Popen(
        serve_command("--port", str(port), "--key", key), stdout=out, stderr=subprocess.STDOUT
    )


@contextlib.contextmanager
def serving(key: str, log_dir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``falnb serve`` with ``key`` on a free port, healthy, until the block ends: its base URL
    and process (its output goes to ``log_dir/serve.log``)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with (log_dir / "serve.log").open("wb") as log:
        process = start_serve(port, key, log)
        try:
            deadline = time.monotonic() + 30
            while not healthy(base_url, timeout=1):
                assert process.poll() is None, f"falnb serve exited: see {log_dir / 'serve.log'}"
                assert time.monotonic() < deadline, "falnb serve did not become healthy"
                time.sleep(0.05)
            yield base_url, process
        finally:
            stop_process(process)


@contextlib.contextmanager
def plain_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A stdlib HTTP server answering with ``handler`` on loopback, in a thread, until the block
    ends: its ``http://127.0.0.1:PORT`` (for what the local fal server is not: another host, a
    webhook receiver, a gateway that refuses, a server that sets cookies)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def stop_process(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Terminate ``process``, killing it if it does not end in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def keyed_http(server: LocalServer) -> httpx.Client:
    """An httpx client for ``server``, with the key's ``Authorization`` header."""
    headers = {"Authorization": f"Key {server.key}"}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=15.0)


def target_env(base_url: str, key: str) -> dict[str, str]:
    """Environment variables that make a kernel's falnb target the server at ``base_url``."""
    return {
        "FALNB_TARGET": "fal",
        "FAL_KEY": key,
        "FALNB_RUN_URL": base_url,
        "FALNB_QUEUE_URL": f"{base_url}/_queue",
        "FALNB_REST_URL": f"{base_url}/_rest",
        "FALNB_CDN_URL": f"{base_url}/_cdn",
        "FALNB_REALTIME_URL": "ws" + base_url[len("http") :],
    }


def accepted(server: LocalServer, endpoint: str) -> int:
    """How many submissions to ``endpoint`` the server accepted (each one would be paid for)."""
    return len(server.journal.accepted_submissions(endpoint))


def status_blip(server: LocalServer, seconds: float, *, streams: bool = False) -> list[FaultRule]:
    """Status requests refused (reset, or a gateway 503) for ``seconds``; with ``streams``,
    status streams are also cut part-way."""
    rules: list[FaultRule] = []
    if streams:
        rules.append(
            server.faults.add("cut", path_contains="/status/stream", rate=0.3, duration=seconds)
        )
        rules.append(server.faults.add("reset", path_contains="/status/stream", duration=seconds))
    rules.append(
        server.faults.add("status=503;ingress", path_contains="/status", rate=0.3, duration=seconds)
    )
    rules.append(server.faults.add("reset", path_contains="/status", duration=seconds))
    return rules


def wait_healed(rules: list[FaultRule]) -> None:
    """Wait until every fault rule's time is up (the blip is over)."""
    while not all(rule.healed() for rule in rules):
        time.sleep(0.05)


def subscribed(
    client: Any, endpoint: str, arguments: dict[str, Any]
) -> tuple[Any, list[str], list[Any]]:
    """``client.subscribe`` with logs (falnb's client or fal_client's, the same API): its
    result, the request ids it enqueued and every status update, in order."""
    enqueued: list[str] = []
    updates: list[Any] = []
    result = client.subscribe(
        endpoint,
        arguments,
        with_logs=True,
        on_enqueue=enqueued.append,
        on_queue_update=updates.append,
    )
    return result, enqueued, updates


def log_messages(statuses: list[Status]) -> list[str]:
    """The log lines a request's status updates carried, in order."""
    return [
        line["message"]
        for status in statuses
        if isinstance(status, (InProgress, Completed))
        for line in status.logs or []
    ]

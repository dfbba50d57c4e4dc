"""``falnb serve`` as users start it: a subprocess on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx

from tests.conftest import wait_until


@contextlib.contextmanager
def serving(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``falnb serve --port 0 ARGS``; yields its base URL once it answers /health."""
    process = subprocess.Popen(
        [sys.executable, "-m", "falnb.cli", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert process.stdout is not None
        base_url = ""
        for line in process.stdout:
            if line.split()[:1] == ["run"]:
                base_url = line.split()[1]
                break
        assert base_url, f"falnb serve printed no URL (exit {process.poll()})"
        wait_until(lambda: _healthy(base_url), timeout=30, what="falnb serve")
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/_falnb/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _echo(base_url: str, key: str, fault: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/local/echo",
        json={"a": 1},
        headers={"Authorization": f"Key {key}", "x-falnb-fault": fault},
        timeout=10,
    )


def test_serve_ignores_fault_headers_unless_started_with_faults() -> None:
    with serving("--key", "k-plain") as base_url:
        assert _echo(base_url, "k-plain", "status=503").status_code == 200
    with serving("--key", "k-faults", "--faults") as base_url:
        assert _echo(base_url, "k-faults", "status=503").status_code == 503
        assert _echo(base_url, "wrong", "status=503").status_code == 401


def test_serve_help_says_faults_are_for_tests() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "falnb.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--faults" in done.stdout
    assert "for tests" in done.stdout

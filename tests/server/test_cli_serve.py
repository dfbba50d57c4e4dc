"""``falnb serve`` and ``falnb lock show`` as users start them: subprocesses, real sockets."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from falnb.cli import KEY_ENV
from falnb.local.bodies import DEFAULT_MAX_BODY_BYTES
from tests.conftest import wait_until
from tests.kit import healthy, stop_process


@dataclass
class Served:
    base_url: str
    banner: str
    process: subprocess.Popen[str]


def _falnb(*args: str) -> list[str]:
    return [sys.executable, "-m", "falnb.cli", *args]


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    return {**env, **(extra or {})}


@contextlib.contextmanager
def serving(*args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """Run ``falnb serve --port 0 ARGS``; yields once it answers /health."""
    process = subprocess.Popen(
        _falnb("serve", "--port", "0", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(env),
    )
    try:
        assert process.stdout is not None
        banner: list[str] = []
        for line in process.stdout:
            banner.append(line)
            if line.strip().startswith("client ="):  # the banner's last line
                break
        (run,) = [line.split()[1] for line in banner if line.split()[:1] == ["run"]]
        base_url = run.replace("0.0.0.0", "127.0.0.1")
        wait_until(lambda: healthy(base_url), timeout=30, what="falnb serve")
        yield Served(base_url, "".join(banner), process)
    finally:
        stop_process(process)


def _echo(base_url: str, key: str, fault: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Key {key}"}
    if fault:
        headers["x-falnb-fault"] = fault
    return httpx.post(f"{base_url}/local/echo", json={"a": 1}, headers=headers, timeout=10)


def _fails(*args: str, env: dict[str, str] | None = None) -> str:
    """Run ``falnb ARGS``, expect a failure; its stderr, checked to be one traceback-free line."""
    done = subprocess.run(
        _falnb(*args), capture_output=True, text=True, timeout=60, env=_env(env), check=False
    )
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stdout == ""
    return done.stderr.strip()


# -- faults ---------------------------------------------------------------------------------


def test_serve_ignores_fault_headers_unless_started_with_faults() -> None:
    with serving("--key", "k-plain") as served:
        assert _echo(served.base_url, "k-plain", "status=503").status_code == 200
    with serving("--key", "k-faults", "--faults") as served:
        assert _echo(served.base_url, "k-faults", "status=503").status_code == 503
        assert _echo(served.base_url, "wrong", "status=503").status_code == 401


def test_serve_help_names_its_options_and_defaults() -> None:
    done = subprocess.run(
        _falnb("serve", "--help"), capture_output=True, text=True, timeout=60, check=True
    )
    text = " ".join(done.stdout.split())
    assert "--faults for tests" in text
    assert f"(default {DEFAULT_MAX_BODY_BYTES // 2**20})" in text
    assert "--key-file" in text
    assert KEY_ENV in text


# -- where the key comes from ---------------------------------------------------------------


def test_key_from_the_environment_is_used_and_not_printed() -> None:
    secret = "env-key-0123456789"
    with serving(env={KEY_ENV: secret}) as served:
        assert _echo(served.base_url, secret).status_code == 200
        assert _echo(served.base_url, "other").status_code == 401
        assert secret not in served.banner
        assert f"read from ${KEY_ENV}" in served.banner
        assert "  import os\n" in served.banner  # the Python lines read it from there
        assert secret not in " ".join(served.process.args)  # type: ignore[arg-type]


def test_key_from_a_file_is_used_and_not_printed(tmp_path: Path) -> None:
    secret = "file-key-0123456789"
    path = tmp_path / "key"
    path.write_text(secret + "\n")
    with serving("--key-file", str(path), env={KEY_ENV: "ignored-env-key"}) as served:
        assert _echo(served.base_url, secret).status_code == 200
        assert secret not in served.banner
        assert f'"$(cat {path})"' in served.banner


def test_key_on_the_command_line_still_works() -> None:
    with serving("--key", "cli-key-0123") as served:
        assert _echo(served.base_url, "cli-key-0123").status_code == 200
        assert "cli-key-0123" in served.banner


def test_a_non_loopback_host_warns_that_the_key_is_all_that_protects_it() -> None:
    with serving("--host", "0.0.0.0", "--key", "k-any") as served:
        assert _echo(served.base_url, "k-any").status_code == 200
        served.process.terminate()
        _, stderr = served.process.communicate(timeout=10)
    (warning,) = [line for line in stderr.splitlines() if "warning" in line]
    assert "0.0.0.0" in warning
    assert "the key is all that protects it" in warning


# -- mistakes: one line on stderr, non-zero exit, no traceback ------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_port_in_use(busy_port: int) -> None:
    message = _fails("serve", "--port", str(busy_port), "--key", "k")
    assert f"port {busy_port} on 127.0.0.1 is in use" in message


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--port", "70000"], None, "--port must be 0..65535"),
        (["--port", "-1"], None, "--port must be 0..65535"),
        (["--key", ""], None, "the key is blank"),
        (["--key", "   "], None, "the key is blank"),
        ([], {KEY_ENV: ""}, "the key is blank"),
        (["--key", " padded "], None, "whitespace"),
        (["--concurrency", "0"], None, "--concurrency must be at least 1"),
        (["--max-body-mb", "0"], None, "--max-body-mb must be positive"),
        (["--key-file", "/nonexistent/key"], None, "cannot read the key file"),
        (["--host", "no-such-host.invalid"], None, "cannot listen on no-such-host.invalid"),
    ],
)
def test_serve_mistakes(args: list[str], env: dict[str, str] | None, expected: str) -> None:
    message = _fails("serve", *args, env=env)
    assert message.startswith("falnb serve: ")
    assert expected in message


def test_blank_key_file(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("\n")
    assert "the key is blank" in _fails("serve", "--key-file", str(tmp_path / "key"))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "is not a valid falnb lock file"),
        (b'{"entries": []}', "is not a valid falnb lock file"),
        (b"\xff\xfe\x00garbage", "cannot read the lock file"),
        (b'{"entries": {"x": {"endpoint": "a", "seed": 1e999}}}', "cannot read the lock file"),
        (None, "is a directory"),
    ],
)
def test_lock_show_on_a_bad_lock_file(tmp_path: Path, content: bytes | None, expected: str) -> None:
    path = tmp_path / "falnb.lock"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    message = _fails("lock", "show", str(path))
    assert expected in message
    assert str(path) in message

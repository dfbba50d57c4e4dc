"""The default target, in fresh interpreters: embedded server without a key, cloud with one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# No port in the notice: in a notebook it is saved in the first cell's output.
EMBEDDED_LINE = (
    "falnb: no FAL_KEY set; using the embedded local server on a loopback port "
    "(set FAL_KEY for fal's cloud)"
)


def python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "FALNB_"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_no_key_uses_the_embedded_server_and_says_so_once() -> None:
    done = python(
        "import falnb\n"
        "print(falnb.run('local/echo', {'a': 1}))\n"
        "print(falnb.subscribe('local/echo', {'b': 2}))\n"
        "print(falnb.default_client().target.run_url.rsplit(':', 1)[1])\n"
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[:2] == ["{'a': 1}", "{'b': 2}"]
    assert out[2].isdigit()  # the URL is there for who asks
    lines = [line for line in done.stderr.splitlines() if line.startswith("falnb:")]
    assert lines == [EMBEDDED_LINE]


def test_forced_cloud_without_key_names_the_variables() -> None:
    done = python(
        "import falnb\n"
        "try:\n"
        "    falnb.run('fal-ai/flux/dev', {})\n"
        "except falnb.MissingCredentialsError as e:\n"
        "    print('missing:', e)\n",
        FALNB_TARGET="fal",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("missing:")
    assert "FAL_KEY" in done.stdout
    assert "FAL_KEY_ID" in done.stdout
    assert "FAL_KEY_SECRET" in done.stdout
    assert "embedded" not in done.stderr


def test_forced_local_with_a_key() -> None:
    done = python(
        "import falnb\nprint(falnb.run('local/echo', {'c': 3}))\n",
        FAL_KEY="someone:secret",
        FALNB_TARGET="local",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'c': 3}"
    assert "FALNB_TARGET=local; using the embedded local server" in done.stderr
    assert "someone:secret" not in done.stderr + done.stdout


def test_a_key_targets_the_cloud_without_starting_a_server() -> None:
    done = python(
        "import sys, falnb\n"
        "t = falnb.default_client().target\n"
        "print(t.name, t.queue_url, 'falnb.local.server' in sys.modules)\n",
        FAL_KEY="id:secret",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["fal", "https://queue.fal.run", "False"]


@pytest.mark.parametrize("extra", ["", "falnb.verify_webhook\n"])
def test_import_is_light(extra: str) -> None:
    done = python(
        "import sys, threading, falnb\n"
        + extra
        + "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('uvicorn', 'starlette', 'IPython', 'ipywidgets') or m.startswith('falnb.local')]\n"
        "print(heavy, [t.name for t in threading.enumerate()])\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] ['MainThread']"
    assert done.stderr == ""

"""Credentials as fal-client finds them: env, a Colab secret, host overrides, and the notice
that says so when falnb runs locally although fal's cloud was plausibly meant.

Colab is played by a fake ``google.colab.userdata`` package on ``sys.path``; a process is "in
Colab" once ``google.colab`` is imported, as Colab's kernel does at start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SECRET = "colab-id:colab-secret-value"

# userdata.get as Colab's: the value, SecretNotFoundError, or NotebookAccessError (refused).
USERDATA = """
import os, pathlib

class SecretNotFoundError(KeyError):
    pass

class NotebookAccessError(RuntimeError):
    pass

def get(name):
    calls = pathlib.Path(os.environ["FAKE_COLAB_CALLS"])
    calls.write_text(calls.read_text() + name + "\\n" if calls.exists() else name + "\\n")
    behaviour = os.environ.get("FAKE_COLAB", "secret")
    if behaviour == "missing":
        raise SecretNotFoundError(name)
    if behaviour == "refused":
        raise NotebookAccessError("access to the secret was not granted")
    return os.environ["FAKE_COLAB_SECRET"]
"""


@pytest.fixture
def fake_colab(tmp_path: Path) -> Path:
    """A directory holding the fake ``google.colab`` package (google as a namespace package)."""
    package = tmp_path / "fakecolab" / "google" / "colab"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "userdata.py").write_text(USERDATA)
    return tmp_path / "fakecolab"


def python(
    code: str, tmp_path: Path, fake_colab: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "FALNB_"))}
    paths = [str(fake_colab)] if fake_colab else []
    paths += [p for p in clean.get("PYTHONPATH", "").split(os.pathsep) if p]
    environ = {
        **clean,
        "PYTHONPATH": os.pathsep.join(paths),
        # No ~/.fal of the machine's: a login token there would change the notice.
        "FAL_HOME_DIR": str(tmp_path / "no-fal-home"),
        "FAKE_COLAB_CALLS": str(tmp_path / "calls.txt"),
        "FAKE_COLAB_SECRET": SECRET,
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls.txt"
    return path.read_text().split() if path.exists() else []


def notices(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("falnb:")]


def test_a_colab_secret_targets_the_cloud(tmp_path: Path, fake_colab: Path) -> None:
    done = python(
        """
        import google.colab, os, sys, falnb
        from falnb._settings import Key
        target = falnb.default_client().target
        print(target.name, target.queue_url, target.key == Key(os.environ["FAKE_COLAB_SECRET"]))
        print('falnb.local.server' in sys.modules)
        """,
        tmp_path,
        fake_colab,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["fal", "https://queue.fal.run", "True", "False"]
    assert calls(tmp_path) == ["FAL_KEY"]
    assert SECRET not in done.stdout + done.stderr
    assert notices(done) == []


def test_env_key_wins_over_the_colab_secret_which_is_not_asked(
    tmp_path: Path, fake_colab: Path
) -> None:
    done = python(
        """
        import google.colab, falnb
        from falnb._settings import Key
        print(falnb.default_client().target.key == Key("env:key"))
        """,
        tmp_path,
        fake_colab,
        FAL_KEY="env:key",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True"]
    assert calls(tmp_path) == []  # no access prompt when the environment has a key


@pytest.mark.parametrize("behaviour", ["missing", "refused"])
def test_no_colab_secret_runs_locally_and_says_why_once(
    tmp_path: Path, fake_colab: Path, behaviour: str
) -> None:
    done = python(
        """
        import google.colab, falnb
        print(falnb.run('local/echo', {'a': 1}))
        print(falnb.run('local/echo', {'b': 2}))
        """,
        tmp_path,
        fake_colab,
        FAKE_COLAB=behaviour,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["{'a': 1}", "{'b': 2}"]
    assert calls(tmp_path) == ["FAL_KEY"]  # asked once per process, not per request
    [notice] = notices(done)
    assert notice.startswith("falnb: no FAL_KEY set; using the embedded local server")
    assert "in Colab, add a FAL_KEY secret and grant this notebook access to it" in notice
    assert "fal auth login" not in notice


def test_outside_colab_the_secret_is_never_asked(tmp_path: Path, fake_colab: Path) -> None:
    done = python(
        """
        import falnb
        print(falnb.default_client().target.name)
        """,
        tmp_path,
        fake_colab,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["local"]
    assert calls(tmp_path) == []
    assert [n for n in notices(done) if "Colab" in n] == []


def test_forced_cloud_in_colab_without_a_secret_names_it(tmp_path: Path, fake_colab: Path) -> None:
    done = python(
        """
        import google.colab, falnb
        try:
            falnb.run('fal-ai/flux/dev', {})
        except falnb.MissingCredentialsError as e:
            print('missing:', e)
        """,
        tmp_path,
        fake_colab,
        FAKE_COLAB="missing",
        FALNB_TARGET="fal",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("missing:")
    assert "FAL_KEY Colab secret" in done.stdout


def test_a_fal_login_token_is_named_in_the_notice_without_its_path(tmp_path: Path) -> None:
    home = tmp_path / "fal-home"
    home.mkdir()
    (home / "auth0_token").write_text("refresh-token-value\naccess-token-value\n")
    done = python(
        """
        import falnb
        print(falnb.run('local/echo', {'a': 1}))
        """,
        tmp_path,
        FAL_HOME_DIR=str(home),
    )
    assert done.returncode == 0, done.stderr
    [notice] = notices(done)
    assert "a `fal auth login` token was found, but falnb does not use it" in notice
    assert "set FAL_KEY" in notice
    assert str(tmp_path) not in notice
    assert "token-value" not in done.stdout + done.stderr


def test_fal_run_host_overrides_as_fal_client_reads_them(tmp_path: Path) -> None:
    code = """
        import falnb
        t = falnb.default_client().target
        print(t.run_url, t.queue_url, t.realtime_url, t.rest_url)
        """
    done = python(code, tmp_path, FAL_KEY="k:s", FAL_RUN_HOST="fal.example")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "https://fal.example",
        "https://queue.fal.example",
        "wss://fal.example",
        "https://rest.fal.ai",
    ]
    done = python(
        code,
        tmp_path,
        FAL_KEY="k:s",
        FAL_RUN_HOST="fal.example",
        FAL_QUEUE_RUN_HOST="q.example",
        FALNB_RUN_URL="http://127.0.0.1:9",  # falnb's own URL variables win
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == ["http://127.0.0.1:9", "https://q.example"]

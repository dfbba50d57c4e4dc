"""The magics in an in-process IPython shell, with a session pointed at the test server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from IPython.core.interactiveshell import InteractiveShell

import falnb.session
from falnb import SyncClient
from falnb.local import LocalServer
from falnb.magics import FalMagics
from falnb.repro import LockFile, MediaStore, Recorder
from falnb.session import Session

# Fixed, modest budgets: the fuzz tests are part of every run, so they must stay quick and
# reproducible (FALNB_FUZZ=deep explores further, with fresh randomness, when asked).
settings.register_profile(
    "falnb",
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "deep",
    max_examples=2000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("deep" if os.environ.get("FALNB_FUZZ") == "deep" else "falnb")


@pytest.fixture
def shell(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InteractiveShell]:
    """An InteractiveShell with ``%%fal`` registered; its session talks to ``server``."""
    client = SyncClient(server.target)
    session = Session(
        client,
        recorder=Recorder(
            LockFile(tmp_path / "falnb.lock", secrets=[server.key]), MediaStore(tmp_path / "media")
        ),
    )
    session.config.record = "off"  # each example is a fresh call, not a replay
    monkeypatch.setattr(falnb.session, "_default", session)
    monkeypatch.setenv("FALNB_PROGRESS", "none")
    ip = InteractiveShell.instance()
    ip.register_magics(FalMagics)
    ip.reset(new_session=False)
    yield ip
    client.close()

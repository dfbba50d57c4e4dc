"""Fixtures for the repro tests: a store and a recorder in a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from falnb import SyncClient
from falnb.local import LocalServer
from falnb.repro import LockFile, MediaStore, Recorder


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "cache" / "media")


@pytest.fixture
def recorder(tmp_path: Path, store: MediaStore, server: LocalServer) -> Recorder:
    return Recorder(LockFile(tmp_path / "falnb.lock", secrets=[server.key]), store)


@pytest.fixture
def client(server: LocalServer) -> Iterator[SyncClient]:
    with SyncClient(server.target) as sync:
        yield sync

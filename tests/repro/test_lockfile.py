"""The lock file: round trip, stable text, corrupt files, secrets, two writing processes,
group-committed updates from many threads."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from falnb.repro import (
    Entry,
    LockFile,
    LockFileError,
    LockWriteError,
    MediaRef,
    default_lock_path,
)


def _entry(n: int, **kw: object) -> Entry:
    fields: dict[str, object] = {
        "endpoint": "local/echo",
        "arguments": {"n": n},
        "status": "completed",
        "request_id": f"req-{n}",
        "seed": n,
        "result": {"n": n},
        "media": (MediaRef("http://x/f.png", "ab" * 32, "image/png", 3),),
        "falnb_version": "0.1.0",
        "time": "2026-01-01T00:00:00Z",
    }
    fields.update(kw)
    return Entry(**fields)  # type: ignore[arg-type]


def test_round_trip_and_stable_sorted_text(tmp_path: Path) -> None:
    lock = LockFile(tmp_path / "falnb.lock")
    assert lock.entries() == {}
    lock.put("ff", _entry(2))
    lock.put("00", _entry(1))
    assert lock.get("00") == _entry(1)
    text = (tmp_path / "falnb.lock").read_text()
    assert text.index('"00"') < text.index('"ff"')
    assert text.endswith("}\n")
    data = json.loads(text)
    assert data["version"] == 1
    assert data["entries"]["ff"]["media"][0]["sha256"] == "ab" * 32
    # Writing the same entries again changes nothing: clean diffs.
    lock.put("00", _entry(1))
    assert (tmp_path / "falnb.lock").read_text() == text
    lock.update("ff", lambda _current: None)
    assert set(lock.entries()) == {"00"}


def test_unknown_fields_survive_a_rewrite(tmp_path: Path) -> None:
    lock = LockFile(tmp_path / "falnb.lock")
    lock.put("aa", _entry(1, extra={"note": "kept"}))
    lock.put("bb", _entry(2))
    assert lock.entries()["aa"].extra == {"note": "kept"}


def test_a_corrupt_lock_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "falnb.lock"
    path.write_text("<<<<<<< HEAD\n{}\n")
    with pytest.raises(LockFileError, match="not a valid falnb lock file"):
        LockFile(path).entries()


def test_secrets_are_redacted(tmp_path: Path) -> None:
    secret = "key-id:0123456789abcdef"
    lock = LockFile(tmp_path / "falnb.lock", secrets=[secret])
    lock.put("aa", _entry(1, result={"echo": f"Authorization: Key {secret}"}))
    text = (tmp_path / "falnb.lock").read_text()
    assert secret not in text
    assert "Key ***" in text


def test_default_lock_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nb").mkdir()
    assert default_lock_path(environ={}) == tmp_path / "falnb.lock"
    nb = tmp_path / "nb" / "a.ipynb"
    assert default_lock_path(nb, environ={}) == tmp_path / "nb" / "falnb.lock"
    assert default_lock_path(environ={"JPY_SESSION_NAME": str(nb)}) == nb.parent / "falnb.lock"
    relative = {"JPY_SESSION_NAME": "nb/a.ipynb"}  # Jupyter's URL path: not ours to resolve
    assert default_lock_path(environ=relative) == tmp_path / "falnb.lock"
    assert default_lock_path(nb, environ={"FALNB_LOCK": "/x/y.lock"}) == Path("/x/y.lock")


WRITER = """
import sys
from falnb.repro import Entry, LockFile
lock = LockFile(sys.argv[1])
name = sys.argv[2]
for i in range(40):
    lock.put(f"{name}-{i:03d}", Entry(endpoint="local/echo", arguments={"i": i},
             status="completed", request_id=f"{name}-{i}", result={"i": i}))
"""


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "falnb.lock"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), name]) for name in ("a", "b")
    ]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    entries = LockFile(path).entries()
    assert len(entries) == 80
    assert entries["a-039"].request_id == "a-39"
    assert entries["b-000"].result == {"i": 0}
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


class _CountingLock(LockFile):
    """A lock file that counts its whole-file writes (and makes each take a while, as a
    big lock on a slow disk does, so updates from other threads pile up meanwhile)."""

    writes = 0

    def _write(self, entries: Mapping[str, Entry]) -> None:
        type(self).writes += 1
        time.sleep(0.02)
        super()._write(entries)


def test_updates_from_many_threads_are_group_committed(tmp_path: Path) -> None:
    """32 threads updating at once: every change is on the disk when its update returns,
    and they share far fewer writes than 32 (one rewrite and fsync per batch)."""
    lock = _CountingLock(tmp_path / "falnb.lock")
    start = threading.Barrier(32)
    seen: dict[int, bool] = {}

    def one(n: int) -> None:
        start.wait()
        lock.update(f"fp-{n:02d}", lambda _current: _entry(n))
        seen[n] = f"fp-{n:02d}" in LockFile(lock.path).entries()  # durable on return

    threads = [threading.Thread(target=one, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert seen == dict.fromkeys(range(32), True)
    assert len(LockFile(lock.path).entries()) == 32
    assert 2 <= _CountingLock.writes <= 16


def test_a_refused_group_write_fails_every_update_in_it(tmp_path: Path) -> None:
    """A lock that cannot be written: each thread's update raises its own LockWriteError."""
    (tmp_path / "falnb.lock").mkdir()
    lock = LockFile(tmp_path / "falnb.lock")
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def one(n: int) -> None:
        start.wait()
        try:
            lock.update(f"fp-{n}", lambda _current: _entry(n))
        except LockWriteError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(errors) == 8
    assert len({id(e) for e in errors}) == 8  # not one object raised in eight threads
    assert all("it is a directory" in str(e) for e in errors)

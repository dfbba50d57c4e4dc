"""``falnb lock show`` and ``falnb lock gc`` (verify runs a kernel: tests/notebook)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from falnb.cli import main
from falnb.repro import Entry, LockFile, MediaFolder, MediaRef, MediaStore


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out), out.getvalue()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MediaStore:
    monkeypatch.setenv("FALNB_CACHE_DIR", str(tmp_path / "cache"))
    return MediaStore()


def _lock_with(tmp_path: Path, name: str, sha: str) -> LockFile:
    lock = LockFile(tmp_path / name / "falnb.lock")
    lock.put(
        "f" * 64,
        Entry(
            endpoint="local/text-to-image",
            arguments={"prompt": "fox"},
            status="completed",
            request_id="req-1",
            seed=42,
            media=(MediaRef("http://h/x.png", sha, "image/png", 4),),
            time="2026-01-01T00:00:00Z",
        ),
    )
    return lock


def test_show_lists_entries(tmp_path: Path) -> None:
    lock = _lock_with(tmp_path, "a", "ab" * 32)
    code, text = _run("lock", "show", str(lock.path))
    assert code == 0
    assert "1 entries" in text
    assert "ffffffffffff  completed  local/text-to-image  seed=42  request=req-1  media=1" in text
    assert _run("lock", "show", str(tmp_path / "missing.lock"))[0] == 1


def test_gc_keeps_media_of_registered_and_named_locks(tmp_path: Path, cache: MediaStore) -> None:
    kept_a, kept_b, orphan = (cache.put(data) for data in (b"a", b"b", b"orphan"))
    registered = _lock_with(tmp_path, "a", kept_a)
    cache.register_lock(registered.path)
    named = _lock_with(tmp_path, "b", kept_b)
    code, text = _run("lock", "gc", "--dry-run", str(named.path))
    assert code == 0
    assert "would delete 1 media file(s), 6 bytes" in text
    assert len(cache.objects()) == 3
    code, text = _run("lock", "gc", str(named.path))
    assert code == 0
    assert sorted(cache.objects()) == sorted([kept_a, kept_b])
    assert orphan not in cache.objects()


def test_gc_refuses_when_a_lock_is_unreadable(tmp_path: Path, cache: MediaStore) -> None:
    sha = cache.put(b"precious")
    broken = tmp_path / "falnb.lock"
    broken.write_text("not json")
    cache.register_lock(broken)
    assert _run("lock", "gc")[0] == 1
    assert cache.objects() == [sha]


def test_gc_keeps_the_working_directorys_lock_and_prunes_its_media_folder(
    tmp_path: Path, cache: MediaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fresh clone: the lock was never registered with this cache, only replayed from.
    needed, orphan = cache.put(b"needed"), cache.put(b"orphan")
    lock = _lock_with(tmp_path, "clone", needed)
    folder = MediaFolder.beside(lock.path)
    folder.keep(MediaRef("falnb-local:/x.png", needed, "image/png", 6), b"needed")
    stale = MediaRef("falnb-local:/old.png", orphan, "image/png", 6)
    folder.keep(stale, b"orphan")  # e.g. what a refresh replaced
    monkeypatch.chdir(lock.path.parent)

    code, text = _run("lock", "gc", "--dry-run")
    assert code == 0
    assert f"would delete 1 file(s) no lock beside it refers to from {folder.root}" in text
    assert folder.holds(stale)
    code, text = _run("lock", "gc")
    assert code == 0, text
    assert cache.objects() == [needed]
    assert sorted(folder.objects()) == [needed]


def test_gc_leaves_a_folder_alone_when_a_lock_beside_it_is_damaged(
    tmp_path: Path, cache: MediaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = cache.put(b"kept")
    lock = _lock_with(tmp_path, "p", sha)
    folder = MediaFolder.beside(lock.path)
    precious = MediaRef("falnb-local:/p.png", cache.put(b"precious"), "image/png", 8)
    folder.keep(precious, b"precious")
    text = LockFile(lock.path).render({})
    (lock.path.parent / "ci.lock").write_text("<<<<<<< HEAD\n" + text)  # a merge conflict
    (lock.path.parent / "poetry.lock").write_text("[[package]]\n")  # not ours: ignored
    monkeypatch.chdir(lock.path.parent)
    assert _run("lock", "gc")[0] == 1
    assert folder.holds(precious)

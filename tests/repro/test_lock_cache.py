"""The parsed-lock cache: a lock is parsed once per version of the file, and that never
shows a caller a stale or shared entry.

What each test pins, over real files (and real kernels for the last):
- the text is still exactly what ``json.dumps(document, indent=2)`` writes (the format);
- a write by another process (new inode), and a same-size rewrite in place (new mtime), are
  seen by the next lookup;
- changing what a lookup returned (an entry, a replayed Result) changes nothing for the next;
- a write keeps the other process's entries (the read-modify-write reads the file itself);
- what the cache holds after a write is what the file holds (secrets redacted);
- two kernels recording into one lock each replay what the other recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from falnb import SyncClient
from falnb.local import LocalServer
from falnb.repro import Entry, LockFile, MediaRef, MediaStore, Recorder
from falnb.session import Session
from tests.kit import accepted
from tests.notebook.nbkit import kernel_env, running_kernel, shell_reply


def _entry(n: int, **changes: Any) -> Entry:
    fields: dict[str, Any] = {
        "endpoint": "local/echo",
        "arguments": {"prompt": f"take {n}", "b": {"z": 1, "a": [3, {"y": 2, "x": 1}]}},
        "status": "completed",
        "request_id": f"req-{n}",
        "seed": n,
        "result": {"zeta": n, "alpha": {"k": "v"}, "empty": {}, "none": []},
        "media": (MediaRef(f"http://x/{n}.png", f"{n:064x}", "image/png", 3),),
        "falnb_version": "0.1.0",
        "time": "2026-01-01T00:00:00Z",
    }
    fields.update(changes)
    return Entry(**fields)


def _write_elsewhere(path: Path, fingerprint: str, request_id: str) -> None:
    """Put one entry into the lock from another process (as a second kernel would)."""
    code = (
        "import sys\n"
        "from falnb.repro import Entry, LockFile\n"
        "LockFile(sys.argv[1]).put(sys.argv[2], Entry(endpoint='local/echo',"
        " arguments={'from': 'elsewhere'}, status='completed', request_id=sys.argv[3]))\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path), fingerprint, request_id], check=True)


def test_the_text_is_what_json_dumps_writes(tmp_path: Path) -> None:
    """The lock's format is unchanged: sorted keys (the result keeps its own order), indented
    by two, non-ASCII kept; built from cached parts after several writes, and afresh."""
    lock = LockFile(tmp_path / "falnb.lock")
    lock.put("ff", _entry(1, result={"text": "café ☕", "b": 1, "a": 2}))
    lock.put("00", _entry(2, extra={"timings": {"inference": 0.5}, "seed_sent": True}))
    lock.update("aa", lambda _current: _entry(3, status="failed", error="boom"))
    lock.update("ff", lambda current: current.with_(seed=9) if current else None)

    def ordered(entry: Entry) -> dict[str, Any]:
        data = entry.as_dict()
        return {
            k: data[k] if k == "result" else json.loads(json.dumps(data[k], sort_keys=True))
            for k in sorted(data)
        }

    entries = LockFile(lock.path).entries()  # a fresh reader: parsed from the file
    document = {
        "about": json.loads(lock.path.read_text())["about"],
        "entries": {fp: ordered(entries[fp]) for fp in sorted(entries)},
        "version": 1,
    }
    expected = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    assert lock.path.read_text(encoding="utf-8") == expected
    assert LockFile(lock.path).render(entries) == expected
    assert list(entries["ff"].result) == ["text", "b", "a"]  # the endpoint's own order
    assert entries["ff"].seed == 9
    assert LockFile(lock.path).render({}).count("{}") == 1  # no entries: "entries": {}


def test_a_write_from_another_process_is_seen_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "falnb.lock"
    lock = LockFile(path)
    lock.put("mine", _entry(1))
    assert lock.get("theirs") is None  # this version is now the cached one

    _write_elsewhere(path, "theirs", "req-elsewhere")
    seen = lock.get("theirs")
    assert seen is not None
    assert seen.request_id == "req-elsewhere"

    # This process's next write reads the file afresh: the other's entry survives it.
    lock.put("mine-too", _entry(2))
    assert set(LockFile(path).entries()) == {"mine", "theirs", "mine-too"}
    _write_elsewhere(path, "theirs-too", "req-2")
    lock.update("mine", lambda current: current.with_(seed=7) if current else None)
    on_disk = LockFile(path).entries()
    assert set(on_disk) == {"mine", "theirs", "mine-too", "theirs-too"}
    assert on_disk["mine"].seed == 7


def test_a_same_size_file_put_in_its_place_is_seen(tmp_path: Path) -> None:
    """A file replaced by one of the same size (a new inode: ``git checkout``, an editor),
    and one rewritten in place with the same size (a new mtime), are both read again."""
    path = tmp_path / "falnb.lock"
    lock = LockFile(path)
    lock.put("aa", _entry(1))
    assert lock.get("aa") == _entry(1)
    original = path.read_bytes()

    replaced = original.replace(b'"req-1"', b'"req-8"')
    assert len(replaced) == len(original)
    other = tmp_path / "checked-out.lock"
    other.write_bytes(replaced)
    os.replace(other, path)
    entry = lock.get("aa")
    assert entry is not None
    assert entry.request_id == "req-8"

    stat = path.stat()
    in_place = replaced.replace(b'"req-8"', b'"req-5"')
    with open(path, "r+b") as file:
        file.write(in_place)
    # A coarse clock could give the rewrite the same mtime: give it another, as time would.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert path.stat().st_ino == stat.st_ino
    assert path.stat().st_size == stat.st_size
    entry = lock.get("aa")
    assert entry is not None
    assert entry.request_id == "req-5"


def test_changing_what_a_lookup_returned_changes_nothing_else(tmp_path: Path) -> None:
    lock = LockFile(tmp_path / "falnb.lock")
    lock.put("aa", _entry(1, extra={"timings": {"inference": 0.5}}))
    first = lock.get("aa")
    assert first is not None
    first.result["zeta"] = "changed"
    first.result["alpha"]["k"] = "changed"
    first.arguments["b"]["a"].append("changed")
    first.extra["timings"]["inference"] = -1
    lock.entries()["aa"].result["none"].append("changed")
    snapshot = lock.snapshot()
    again = snapshot.get("aa")
    assert again is not None
    again.result["empty"]["x"] = 1

    assert lock.get("aa") == _entry(1, extra={"timings": {"inference": 0.5}})
    assert snapshot.get("aa") == _entry(1, extra={"timings": {"inference": 0.5}})

    # A change function gets its own copy too: what it returns is what is written, and the
    # cache cannot come to hold what the file does not.
    lock.update("bb", lambda _current: _entry(2))

    def meddle(current: Entry | None) -> Entry | None:
        assert current is not None
        current.result["zeta"] = "meddled"
        return current

    lock.update("aa", lambda current: current)
    lock.update("bb", meddle)
    assert lock.get("aa") == _entry(1, extra={"timings": {"inference": 0.5}})
    meddled = lock.get("bb")
    assert meddled is not None
    assert meddled == LockFile(lock.path).get("bb")
    assert meddled.result["zeta"] == "meddled"


def test_a_changed_replayed_result_does_not_change_the_next_replay(
    server: LocalServer, store: MediaStore, tmp_path: Path
) -> None:
    """Through the Session: a user who edits a replayed Result's JSON (or the one a call
    returned) does not edit what the next replay of that call returns."""
    recorder = Recorder(LockFile(tmp_path / "falnb.lock", secrets=[server.key]), store)
    with SyncClient(server.target) as client:
        session = Session(client, recorder=recorder)
        recorded = session.run("local/echo", {"prompt": "a fox", "seed": 3})
        expected = json.loads(json.dumps(recorded.json))
        recorded.json["prompt"] = "edited after the call"
        replayed = session.run("local/echo", {"prompt": "a fox", "seed": 3})
        assert replayed.replayed
        assert replayed.json == expected
        replayed.json["prompt"] = "edited after the replay"
        replayed.json.clear()
        again = session.run("local/echo", {"prompt": "a fox", "seed": 3})
    assert again.replayed
    assert again.json == expected
    assert accepted(server, "local/echo") == 1


def test_what_the_cache_holds_after_a_write_is_what_the_file_holds(tmp_path: Path) -> None:
    """A secret is redacted in what a later lookup returns, as a fresh reader would see it,
    and tuples come back as lists: the cache keeps the file's entries, not the caller's."""
    secret = "key-id:0123456789abcdef"
    lock = LockFile(tmp_path / "falnb.lock", secrets=[secret])
    mine = _entry(1, result={"echo": f"Key {secret}", "sizes": (1, 2)})
    lock.put("aa", mine)
    mine.result["echo"] = "changed by the caller after the write"
    cached, fresh = lock.get("aa"), LockFile(lock.path).get("aa")
    assert cached == fresh
    assert cached is not None
    assert cached.result == {"echo": "Key ***", "sizes": [1, 2]}


def test_a_lock_that_cannot_be_parsed_is_still_one_clear_error_after_a_good_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "falnb.lock"
    lock = LockFile(path)
    lock.put("aa", _entry(1))
    assert lock.get("aa") is not None
    time.sleep(0.01)  # a new mtime even on a coarse clock (the file is replaced anyway)
    broken = tmp_path / "merge.lock"
    broken.write_text("<<<<<<< HEAD\n{}\n")
    os.replace(broken, path)
    with pytest.raises(Exception, match="not a valid falnb lock file"):
        lock.get("aa")


ECHO = "%%fal local/echo\nprompt: {}"


def _cell(kc: Any, code: str) -> None:
    reply = shell_reply(kc, kc.execute(code), timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]


def test_two_kernels_on_one_lock_replay_what_the_other_recorded(
    server: LocalServer, tmp_path: Path
) -> None:
    """Both kernels stay up and keep their caches warm between cells; each records a call,
    then runs the other's: a replay, with no new submission, and no entry lost."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "FALNB_"))}
    env.update(kernel_env(server), FALNB_LOCK=str(tmp_path / "falnb.lock"))
    env.update(FALNB_CACHE_DIR=str(tmp_path / "cache"), FALNB_PROGRESS="text")
    with running_kernel(tmp_path, env) as one, running_kernel(tmp_path, env) as two:
        for kc in (one, two):
            _cell(kc, "%load_ext falnb")
        _cell(one, ECHO.format("from the first kernel"))
        _cell(two, ECHO.format("from the second kernel"))
        _cell(one, ECHO.format("from the second kernel"))
        _cell(two, ECHO.format("from the first kernel"))
        _cell(one, ECHO.format("from the first kernel, again"))
        _cell(two, ECHO.format("from the first kernel, again"))
    assert accepted(server, "local/echo") == 3
    prompts = {e.arguments["prompt"] for e in LockFile(tmp_path / "falnb.lock").entries().values()}
    assert prompts == {
        "from the first kernel",
        "from the second kernel",
        "from the first kernel, again",
    }

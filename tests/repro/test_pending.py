"""Nothing paid for is lost or paid twice: the Session under blips, CDN errors and bad locks.

The server's journal is the witness of what was submitted. Lock directories that cannot be
written are real: a read-only bind mount (EROFS) and a full tmpfs (ENOSPC), which need root;
those tests skip elsewhere.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from falnb import FalError, RequestPendingError, SyncClient
from falnb.local import LocalServer
from falnb.repro import LockFile, LockWriteError, MediaStore, Recorder
from falnb.session import Session
from tests.kit import accepted, status_blip, wait_healed

SLOW = {"duration": 0.5, "steps": 2}
IMAGE = {"prompt": "a lighthouse", "image_size": "square", "num_inference_steps": 2}


pytestmark = pytest.mark.usefixtures("default_env")


@pytest.fixture
def session(client: SyncClient, recorder: Recorder) -> Session:
    return Session(client, recorder=recorder)


# -- blips --------------------------------------------------------------------------------------


def test_a_blip_longer_than_the_wait_leaves_the_entry_pending_for_the_rerun(
    server: LocalServer,
    session: Session,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FALNB_RECONNECT_TIMEOUT", "1")
    rules = status_blip(server, 3.0)
    with pytest.raises(RequestPendingError) as info:
        session.run("local/slow", SLOW)
    message = str(info.value)
    assert message.endswith("the request is still pending; re-run the cell to pick up its result")
    assert "\n" not in message
    [entry] = recorder.lock.entries().values()
    assert (entry.status, entry.request_id) == ("pending", info.value.request_id)
    assert not server.journal.entries(method="PUT", path_contains="/cancel")

    wait_healed(rules)
    result = session.run("local/slow", SLOW)
    assert result.request_id == info.value.request_id
    assert result.json["steps"] == 2
    [entry] = recorder.lock.entries().values()
    assert entry.status == "completed"
    assert accepted(server, "local/slow") == 1


def test_a_no_wait_job_that_loses_the_server_stays_pending(
    server: LocalServer, session: Session, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FALNB_RECONNECT_TIMEOUT", "1")
    rules = status_blip(server, 3.0)
    job = session.submit("local/slow", SLOW)
    with pytest.raises(RequestPendingError):
        job.result(timeout=20)
    assert job.status() == "pending"
    [entry] = recorder.lock.entries().values()
    assert (entry.status, entry.request_id) == ("pending", job.request_id)
    wait_healed(rules)
    assert session.run("local/slow", SLOW).request_id == job.request_id
    assert accepted(server, "local/slow") == 1


def test_a_blip_shorter_than_the_wait_is_ridden_out(
    server: LocalServer, session: Session, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FALNB_RECONNECT_TIMEOUT", "20")
    seen: list[str] = []

    class Watch:
        def request(self, request_id: str, cancel: Any) -> None: ...
        def status(self, status: Any) -> None:
            seen.append(type(status).__name__)

        def partial(self, output: Any) -> None: ...
        def finished(self, result: Any) -> None: ...
        def failed(self, message: str, *, cancelled: bool = False) -> None: ...

    rules = status_blip(server, 1.5)
    result = session.run("local/slow", SLOW, progress=Watch())
    assert result.json["steps"] == 2
    assert "Reconnecting" in seen
    assert seen[-1] == "Completed"
    assert all(rule.fired for rule in rules)
    assert accepted(server, "local/slow") == 1
    assert [e.status for e in recorder.lock.entries().values()] == ["completed"]


def test_a_definitive_failure_is_still_recorded_as_failed(
    server: LocalServer, session: Session, recorder: Recorder
) -> None:
    with pytest.raises(Exception, match="boom"):
        session.run("local/fail", {"status": 500, "detail": "boom"})
    [entry] = recorder.lock.entries().values()
    assert entry.status == "failed"


# -- downloads of paid outputs ------------------------------------------------------------------


def test_a_cdn_503_on_a_paid_output_is_retried(
    server: LocalServer, session: Session, recorder: Recorder
) -> None:
    unavailable = server.faults.add("status=503;ingress", role="cdn", method="GET", times=1)
    result = session.run("local/text-to-image", IMAGE, seed=7)
    assert unavailable.fired == 1
    assert result.files[0].data[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1")
    [entry] = recorder.lock.entries().values()
    assert entry.status == "completed"
    assert entry.media
    assert accepted(server, "local/text-to-image") == 1


def test_a_download_that_keeps_failing_leaves_the_paid_request_pending(
    server: LocalServer, session: Session, recorder: Recorder
) -> None:
    down = server.faults.add("status=503;ingress", role="cdn", method="GET")
    with pytest.raises(RequestPendingError) as info:
        session.run("local/text-to-image", IMAGE, seed=8)
    assert "could not download" in str(info.value)
    assert "re-run the cell" in str(info.value)
    assert down.fired > 1  # retried before giving up
    [entry] = recorder.lock.entries().values()
    assert entry.status == "pending"

    server.faults.clear()
    result = session.run("local/text-to-image", IMAGE, seed=8)
    assert result.request_id == info.value.request_id
    assert accepted(server, "local/text-to-image") == 1
    assert [e.status for e in recorder.lock.entries().values()] == ["completed"]


# -- identical calls at once --------------------------------------------------------------------


def test_identical_calls_from_two_threads_are_submitted_once(
    server: LocalServer, session: Session
) -> None:
    results: list[Any] = []
    start = threading.Barrier(2)

    def call() -> None:
        start.wait()
        results.append(session.run("local/slow", {"duration": 0.4, "steps": 2}, seed=3))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 2
    assert results[0].request_id == results[1].request_id
    assert results[0].json == results[1].json
    assert accepted(server, "local/slow") == 1


def test_a_rerun_while_a_no_wait_job_runs_shares_its_request(
    server: LocalServer, session: Session
) -> None:
    job = session.submit("local/slow", {"duration": 0.5, "steps": 2})
    result = session.run("local/slow", {"duration": 0.5, "steps": 2})
    assert result.request_id == job.request_id
    assert job.result(timeout=20).json == result.json
    assert accepted(server, "local/slow") == 1


# -- a lock that cannot be written --------------------------------------------------------------


class Mounts:
    """Real mounts for the test (root only), undone afterwards."""

    def __init__(self) -> None:
        self.made: list[Path] = []

    @staticmethod
    def _mount(*args: str) -> None:
        subprocess.run(["mount", *args], check=True, capture_output=True, timeout=20)

    def tmpfs(self, path: Path, size: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        self._mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
        self.made.append(path)
        return path

    def read_only(self, path: Path) -> Path:
        """``path`` (a directory) bind-mounted onto itself read-only: writes get EROFS."""
        path.mkdir(parents=True, exist_ok=True)
        self._mount("--bind", str(path), str(path))
        self.made.append(path)
        self._mount("-o", "remount,ro,bind", str(path))
        return path

    def remount_read_only(self, path: Path) -> None:
        self._mount("-o", "remount,ro", str(path))

    def undo(self) -> None:
        for path in reversed(self.made):
            subprocess.run(["umount", "-l", str(path)], check=False, timeout=20)


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a read-only directory or a tiny tmpfs")
    made = Mounts()
    try:
        made.tmpfs(tmp_path / "mount-probe", "16k")
    except (subprocess.CalledProcessError, OSError):
        made.undo()
        pytest.skip("mount is not permitted here")
    yield made
    made.undo()


def session_with_lock(client: SyncClient, lock: Path, store: MediaStore) -> Session:
    return Session(client, recorder=Recorder(LockFile(lock), store))


def fill(directory: Path) -> None:
    """Write until the disk is full (ENOSPC), as a busy disk would be."""

    def write_forever(fd: int) -> None:
        while True:
            os.write(fd, b"\0" * 4096)

    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError) as full:
            write_forever(fd)
    finally:
        os.close(fd)
    assert full.value.errno == errno.ENOSPC


def test_a_lock_path_that_is_a_directory_is_one_line_and_sends_nothing(
    server: LocalServer, client: SyncClient, store: MediaStore, tmp_path: Path
) -> None:
    lock = tmp_path / "falnb.lock"
    lock.mkdir()
    with pytest.raises(LockWriteError) as info:
        session_with_lock(client, lock, store).run("local/echo", {"prompt": "hi"})
    message = str(info.value)
    assert "\n" not in message
    assert str(lock) in message
    assert "is a directory" in message
    assert not server.journal.entries(method="POST")


def test_a_read_only_lock_directory_is_found_before_submitting(
    server: LocalServer, client: SyncClient, store: MediaStore, tmp_path: Path, mounts: Mounts
) -> None:
    directory = mounts.read_only(tmp_path / "ro")
    with pytest.raises(OSError) as probe:
        (directory / "x").write_text("x")
    assert probe.value.errno == errno.EROFS
    with pytest.raises(LockWriteError) as info:
        session_with_lock(client, directory / "falnb.lock", store).run("local/echo", {"a": 1})
    message = str(info.value)
    assert "\n" not in message
    assert str(directory / "falnb.lock") in message
    assert "Read-only file system" in message
    assert message.endswith("nothing was submitted")
    assert not server.journal.entries(method="POST")


def test_a_full_disk_is_found_before_submitting(
    server: LocalServer, client: SyncClient, store: MediaStore, tmp_path: Path, mounts: Mounts
) -> None:
    directory = mounts.tmpfs(tmp_path / "full", "256k")
    fill(directory)
    with pytest.raises(LockWriteError) as info:
        session_with_lock(client, directory / "falnb.lock", store).run("local/echo", {"b": 2})
    assert "No space left on device" in str(info.value)
    assert "free some disk space" in str(info.value)
    assert not server.journal.entries(method="POST")


def test_a_lock_that_fails_after_submitting_keeps_the_id_in_memory(
    server: LocalServer,
    client: SyncClient,
    store: MediaStore,
    tmp_path: Path,
    mounts: Mounts,
    capfd: pytest.CaptureFixture[str],
    until: Callable[..., Any],
) -> None:
    directory = mounts.tmpfs(tmp_path / "lockdir", "1m")
    lock = directory / "falnb.lock"
    session = session_with_lock(client, lock, store)
    # The submission is held at the gateway; meanwhile the lock's disk turns read-only.
    held = server.faults.add("delay=1", role="queue", method="POST", times=1)
    outcome: list[Any] = []
    worker = threading.Thread(
        target=lambda: outcome.append(session.run("local/slow", {"duration": 0.3, "steps": 2}))
    )
    worker.start()
    until(lambda: held.fired, timeout=10, what="the submission to reach the server")
    mounts.remount_read_only(directory)
    worker.join(30)

    [result] = outcome  # the wait went on and the Result came back
    assert result.json["steps"] == 2
    notices = [line for line in capfd.readouterr().err.splitlines() if line.startswith("falnb:")]
    assert len(notices) == 2  # the pending write, then the result's
    assert all(str(lock) in line and result.request_id in line for line in notices)
    assert "kept in memory" in notices[0]
    assert not lock.exists()

    # A re-run in the same kernel re-attaches from memory instead of paying again.
    again = session.run("local/slow", {"duration": 0.3, "steps": 2})
    assert again.request_id == result.request_id
    assert accepted(server, "local/slow") == 1


# -- a stream cut mid-way -----------------------------------------------------------------------


def test_a_stream_cut_mid_way_says_a_rerun_sends_it_again(
    server: LocalServer, session: Session, recorder: Recorder
) -> None:
    cut = server.faults.add("cut", role="run", path_contains="/stream", times=1)
    with pytest.raises(FalError) as info:
        session.run("local/stream-text", {"prompt": "one two three four"}, stream=True)
    message = str(info.value)
    assert "\n" not in message
    assert "the stream broke after 1 partial output," in message
    assert "re-running the cell sends it again" in message
    assert cut.fired == 1
    # Nothing was settled by the server, so nothing is recorded as failed; the re-run works.
    assert not [e for e in recorder.lock.entries().values() if e.status == "failed"]
    result = session.run("local/stream-text", {"prompt": "one two three four"}, stream=True)
    assert "four" in str(result.json)


def test_a_cancelled_job_says_cancelled_and_a_failed_one_failed(session: Session) -> None:
    """Job.status() comes from how the request ended, not from words in its error text."""
    job = session.submit("local/slow", {"duration": 20, "steps": 40})
    assert job.status() == "running"
    assert job.cancel() == "CANCELLATION_REQUESTED"
    with pytest.raises(FalError):
        job.result(timeout=20)
    assert job.status() == "cancelled"

    # An app error whose message mentions cancelling is still a failure.
    failed = session.submit("local/fail", {"detail": "could not cancel the upload"})
    with pytest.raises(FalError, match="could not cancel"):
        failed.result(timeout=20)
    assert failed.status() == "failed"

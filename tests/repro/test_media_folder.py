"""falnb-media/ beside the lock: the cap, the replay order, damaged copies, port-free URLs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from falnb import SyncClient
from falnb.magics import _config_value
from falnb.repro import (
    Entry,
    LockFile,
    MediaFolder,
    MediaIntegrityError,
    MediaRef,
    MediaStore,
    OfflineError,
    Recorder,
    find_media,
    parse_cap,
    resolve_cap,
)
from falnb.repro.urls import portable_url, scrub

ARGS = {"prompt": "a heron", "image_size": "square", "num_inference_steps": 2}


@pytest.mark.parametrize(
    ("text", "cap"),
    [("2MB", 2_000_000), ("500kB", 500_000), ("1.5 mb", 1_500_000), ("1000", 1000),
     ("off", 0), ("0", 0), ("all", None), ("on", 2_000_000), (False, 0), (12, 12)],
)  # fmt: skip
def test_parse_cap(text: str | int, cap: int | None) -> None:
    assert parse_cap(text) == cap


def test_a_bad_cap_is_one_readable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="media_cap must be a size like 2MB"):
        parse_cap("lots")
    with pytest.raises(UsageError, match="media_cap must be a size like 2MB"):
        _config_value("media_cap", "lots")
    assert _config_value("media_cap", "off") == "off"
    assert _config_value("media_cap", "10 MB") == "10MB"
    monkeypatch.setenv("FALNB_MEDIA_CAP", "3MB")
    assert resolve_cap(None) == 3_000_000
    assert resolve_cap("1kB") == 1000  # the notebook's setting wins
    monkeypatch.setenv("FALNB_MEDIA_CAP", "huge")
    with pytest.raises(ValueError, match="FALNB_MEDIA_CAP must be"):
        resolve_cap(None)


def test_loopback_urls_lose_their_port_and_cloud_urls_stay() -> None:
    assert portable_url("http://127.0.0.1:40371/_cdn/files/ab/x.png") == (
        "falnb-local:/_cdn/files/ab/x.png"
    )
    assert portable_url("http://localhost:8000/f.wav?x=1") == "falnb-local:/f.wav?x=1"
    assert portable_url("http://[::1]:9/a") == "falnb-local:/a"
    cloud = "https://v3.fal.media/files/monkey/abc.png"
    assert portable_url(cloud) == cloud
    assert scrub("500 from GET http://127.0.0.1:5/_queue/x: boom") == (
        "500 from GET falnb-local:/_queue/x: boom"
    )
    assert scrub("see https://fal.ai/models") == "see https://fal.ai/models"


def _record(recorder: Recorder, client: SyncClient, cap: int | None) -> tuple[str, bytes]:
    call = recorder.lookup("local/text-to-image", ARGS, mode="once", media_cap=cap)
    handle = client.submit("local/text-to-image", ARGS)
    result = handle.get()
    entry = recorder.complete(call, handle.request_id, result)
    [ref] = entry.media
    return ref.sha256, recorder.store.cached(ref.sha256)[0] or b""


def test_recording_keeps_small_files_beside_the_lock_and_says_once_what_it_did_not(
    client: SyncClient, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    sha, data = _record(recorder, client, cap=None)
    assert recorder.folder.root == recorder.lock.path.parent / "falnb-media"
    [(name, path)] = recorder.folder.objects().items()
    assert name == sha
    assert path.name == f"{sha}.jpg"
    assert path.read_bytes() == data
    assert oct(path.stat().st_mode & 0o777) == "0o644"  # a committed file
    assert capsys.readouterr().err == ""

    path.unlink()
    call = recorder.lookup("local/text-to-image", ARGS, media_cap=1000)
    [(url, _)] = find_media(call.result)
    for _ in range(3):
        assert recorder.media(url, call) == data
    err = capsys.readouterr().err
    assert err.count("falnb:") == 1
    assert "over media_cap=1kB" in err
    assert f"media_cap={-(-len(data) // 1_000_000)}MB or FALNB_MEDIA_CAP" in err
    assert recorder.folder.objects() == {}

    # A replay under a cap that allows it fills the folder in; off keeps it as it is.
    assert recorder.media(url, recorder.lookup("local/text-to-image", ARGS, media_cap=0)) == data
    assert recorder.folder.objects() == {}
    assert recorder.media(url, recorder.lookup("local/text-to-image", ARGS)) == data
    assert list(recorder.folder.objects()) == [sha]


def test_replay_order_cache_then_folder_then_network(
    tmp_path: Path, client: SyncClient, recorder: Recorder
) -> None:
    sha, data = _record(recorder, client, cap=None)
    call = recorder.lookup("local/text-to-image", ARGS, mode="none")
    [(url, _)] = find_media(call.result)
    assert url.startswith("falnb-local:/_cdn/files/")
    cached = recorder.store.object_path(sha)
    [kept] = recorder.folder.objects().values()

    # A new machine: an empty cache. The folder serves, and fills the cache.
    fresh = Recorder(recorder.lock, MediaStore(tmp_path / "new-cache"))
    assert fresh.media(url, fresh.lookup("local/text-to-image", ARGS, mode="none")) == data
    assert fresh.store.cached(sha)[0] == data
    # A damaged cache copy: the folder's is used; a damaged folder copy: the cache's.
    cached.write_bytes(b"garbage")
    assert recorder.media(url, call) == data
    kept.write_bytes(b"garbage")
    assert recorder.media(url, call) == data
    assert cached.read_bytes() == data  # healed from the folder
    # Both damaged, and the URL was the local server's: a clear error with the fix.
    cached.write_bytes(b"garbage")
    with pytest.raises(OfflineError) as info:
        recorder.media(url, call)
    message = str(info.value)
    assert "does not match its sha256" in message
    assert "--record refresh" in message
    assert "falnb-media/" in message


def test_a_cloud_url_is_fetched_again_when_both_copies_are_damaged(tmp_path: Path) -> None:
    image = b"\x89PNG fake image bytes"
    fetched: list[str] = []

    def fetch(url: str) -> tuple[bytes, str | None]:
        fetched.append(url)
        return image, "image/png"

    store = MediaStore(tmp_path / "cache", fetch=fetch)
    recorder = Recorder(LockFile(tmp_path / "p" / "falnb.lock"), store)
    url = "https://v3.fal.media/files/monkey/out.png"
    result = {"images": [{"url": url, "content_type": "image/png"}]}
    call = recorder.lookup("fal-ai/flux/dev", {"prompt": "x"})
    entry = recorder.complete(call, "req-1", result)
    assert entry.result == result  # cloud URLs are kept as they are
    assert fetched == [url]
    [ref] = entry.media
    store.object_path(ref.sha256).write_bytes(b"x")
    recorder.folder.file_path(ref).write_bytes(b"y")
    assert recorder.media(url, recorder.lookup("fal-ai/flux/dev", {"prompt": "x"})) == image
    assert fetched == [url, url]
    assert recorder.folder.read(ref)[0] == image  # healed too
    none = recorder.lookup("fal-ai/flux/dev", {"prompt": "x"}, mode="none")
    store.object_path(ref.sha256).unlink()
    recorder.folder.file_path(ref).unlink()
    with pytest.raises(OfflineError, match="record=none allows no download"):
        recorder.media(url, none)
    with pytest.raises(MediaIntegrityError, match="gone"):
        recorder.media("falnb-local:/_cdn/files/unknown/x.png")


def test_the_lock_leaves_no_flock_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    lock = LockFile(project / "falnb.lock")
    lock.put("a" * 64, _entry())
    assert sorted(p.name for p in project.iterdir()) == ["falnb.lock"]
    assert list((Path(os.environ["FALNB_CACHE_DIR"]) / "locks").glob("*.flock"))
    # A cache that cannot be written: the temp directory holds the lock file instead.
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    monkeypatch.setenv("FALNB_CACHE_DIR", str(blocked))
    LockFile(project / "falnb.lock").put("b" * 64, _entry())
    assert sorted(p.name for p in project.iterdir()) == ["falnb.lock"]
    assert len(LockFile(project / "falnb.lock").entries()) == 2


def _entry() -> Entry:
    return Entry(endpoint="local/echo", arguments={}, status="completed", request_id="r")


def test_folder_files_are_named_the_same_on_every_machine(tmp_path: Path) -> None:
    folder = MediaFolder(tmp_path / "falnb-media")
    names = [
        folder.file_path(MediaRef("u", "0" * 64, ctype, 1)).name
        for ctype in ("image/jpeg", "audio/wav", "video/mp4", "application/x-unknown")
    ]
    assert names == ["0" * 64 + ".jpg", "0" * 64 + ".wav", "0" * 64 + ".mp4", "0" * 64]

"""The media store against real files on the local server's CDN."""

from __future__ import annotations

from pathlib import Path

import pytest

from falnb import SyncClient
from falnb.local import LocalServer
from falnb.repro import MediaIntegrityError, MediaRef, MediaStore, OfflineError


def _cdn_gets(server: LocalServer) -> int:
    return len(server.journal.entries(method="GET", role="cdn"))


def test_each_url_is_downloaded_once(
    server: LocalServer, client: SyncClient, store: MediaStore
) -> None:
    url = client.upload(b"\x89PNG fake image bytes", "image/png", "a.png")
    server.journal.clear()
    ref = store.fetch(url)
    assert ref.size == len(b"\x89PNG fake image bytes")
    assert ref.content_type == "image/png"
    assert store.fetch(url) == ref
    assert store.read(ref.sha256, url=url) == b"\x89PNG fake image bytes"
    assert _cdn_gets(server) == 1
    # A second store object on the same directory (another kernel) also reads locally.
    assert MediaStore(store.root).fetch(url, offline=True) == ref
    assert _cdn_gets(server) == 1


def _tampered(client: SyncClient, store: MediaStore) -> tuple[str, MediaRef]:
    """An uploaded file, fetched into ``store``, whose stored copy was then overwritten."""
    url = client.upload(b"original content", "text/plain", "t.txt")
    ref = store.fetch(url)
    store.object_path(ref.sha256).write_bytes(b"tampered")
    return url, ref


def test_a_tampered_file_is_detected_and_fetched_again(
    server: LocalServer, client: SyncClient, store: MediaStore
) -> None:
    url, ref = _tampered(client, store)
    server.journal.clear()
    assert store.read(ref.sha256, url=url) == b"original content"
    assert _cdn_gets(server) == 1
    assert store.object_path(ref.sha256).read_bytes() == b"original content"


def test_a_tampered_file_without_a_working_url_is_a_clear_error(
    client: SyncClient, store: MediaStore
) -> None:
    url, ref = _tampered(client, store)
    with pytest.raises(MediaIntegrityError, match="does not match its sha256"):
        store.read(ref.sha256)
    with pytest.raises(OfflineError, match="record=none"):
        store.read(ref.sha256, url=url, offline=True)
    gone = url.rsplit("/", 2)[0] + "/nosuchfile/t.txt"
    with pytest.raises(MediaIntegrityError, match="HTTP 404"):
        store.read(ref.sha256, url=gone)
    other = client.upload(b"different", "text/plain", "t.txt")
    with pytest.raises(MediaIntegrityError, match="now serves different content"):
        store.read(ref.sha256, url=other)


def test_offline_fetch_of_an_unknown_url_fails(store: MediaStore) -> None:
    with pytest.raises(OfflineError, match="not in the media store"):
        store.fetch("http://127.0.0.1:9/x.png", offline=True)


def test_gc_keeps_only_what_is_asked(store: MediaStore) -> None:
    keep, drop = store.put(b"keep me"), store.put(b"drop me")
    assert set(store.objects()) == {keep, drop}
    assert store.gc({keep}) == [drop]
    assert store.objects() == [keep]
    assert store.read(keep) == b"keep me"


def test_registered_locks(store: MediaStore, tmp_path: Path) -> None:
    lock = tmp_path / "falnb.lock"
    lock.write_text("{}")
    store.register_lock(lock)
    store.register_lock(lock)
    assert store.registered_locks() == [str(lock.resolve())]
    lock.unlink()
    assert store.registered_locks() == []

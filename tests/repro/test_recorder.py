"""The Recorder end to end with real requests to the local server (no notebook layer)."""

from __future__ import annotations

import json

import pytest

from falnb import SyncClient
from falnb.local import LocalServer
from falnb.repro import Recorder, ReplayMissError, find_media, portable, portable_url

ARGS = {"prompt": "a red fox", "image_size": "square_hd", "num_inference_steps": 2}


def _record(recorder: Recorder, client: SyncClient, mode: str = "once") -> dict[str, object]:
    call = recorder.lookup("local/text-to-image", ARGS, mode=mode)  # type: ignore[arg-type]
    assert not call.hit
    arguments = dict(ARGS)
    if call.seed is not None:
        arguments["seed"] = call.seed
    handle = client.submit("local/text-to-image", arguments)
    recorder.begin(call, handle.request_id, seed=call.seed)
    assert recorder.lock.get(call.fingerprint).status == "pending"  # type: ignore[union-attr]
    result = handle.get()
    recorder.complete(call, handle.request_id, result, seed=call.seed)
    return result


def test_record_then_replay_without_the_network(
    server: LocalServer, client: SyncClient, recorder: Recorder
) -> None:
    result = _record(recorder, client)
    [(url, ctype)] = find_media(result)
    assert ctype == "image/jpeg"
    call = recorder.lookup("local/text-to-image", dict(reversed(ARGS.items())), mode="once")
    assert call.hit
    assert call.result == portable(result)  # the local server's port is not recorded
    assert "127.0.0.1" not in json.dumps(call.result)
    assert call.seed == result["seed"]  # the seed the endpoint reported is pinned
    entry = call.entry
    assert entry is not None
    assert entry.status == "completed"
    assert entry.falnb_version
    assert entry.time.endswith("Z")
    assert [m.url for m in entry.media] == [portable_url(url)]
    server.journal.clear()
    image = recorder.media(url, call)
    assert image[:2] == b"\xff\xd8"
    assert recorder.store.object_path(entry.media[0].sha256).read_bytes() == image
    assert len(server.journal) == 0
    # mode none replays too, and a fresh recorder on the same files agrees.
    again = Recorder(recorder.lock, type(recorder.store)(recorder.store.root))
    assert again.lookup("local/text-to-image", ARGS, mode="none").hit
    assert again.media(url, again.lookup("local/text-to-image", ARGS, mode="none")) == image
    assert len(server.journal) == 0
    text = recorder.lock.path.read_text()
    assert server.key not in text
    assert all(
        server.key.encode() not in p.read_bytes()
        for p in recorder.store.root.rglob("*")
        if p.is_file()
    )


def test_none_mode_miss_names_the_cell_and_endpoint(recorder: Recorder) -> None:
    with pytest.raises(ReplayMissError) as info:
        recorder.lookup("local/text-to-image", {"prompt": "never recorded"}, mode="none", cell="7")
    message = str(info.value)
    assert message.startswith("cell 7: record=none")
    assert "local/text-to-image" in message
    assert "never recorded" in message
    assert str(recorder.lock.path) in message


def test_pending_entries_are_reattached(client: SyncClient, recorder: Recorder) -> None:
    call = recorder.lookup("local/slow", {"duration": 0.2}, mode="once")
    handle = client.submit("local/slow", {"duration": 0.2})
    recorder.begin(call, handle.request_id)
    # A new kernel: the lookup says "re-attach", in once and refresh, and none refuses.
    for mode in ("once", "refresh"):
        again = recorder.lookup("local/slow", {"duration": 0.2}, mode=mode)  # type: ignore[arg-type]
        assert again.pending_request_id == handle.request_id
        assert not again.hit
    with pytest.raises(ReplayMissError, match="pending entry"):
        recorder.lookup("local/slow", {"duration": 0.2}, mode="none")
    result = client.get_handle("local/slow", handle.request_id).get()
    recorder.complete(call, handle.request_id, result)
    assert recorder.lookup("local/slow", {"duration": 0.2}).hit


def test_refresh_sends_the_pinned_seed_and_updates(client: SyncClient, recorder: Recorder) -> None:
    first = _record(recorder, client)
    call = recorder.lookup("local/text-to-image", ARGS, mode="refresh")
    assert not call.hit
    assert call.seed == first["seed"]
    second = _record(recorder, client, mode="refresh")
    assert second["seed"] == first["seed"]
    entry = recorder.lookup("local/text-to-image", ARGS).entry
    assert entry is not None
    assert entry.result == portable(second)
    assert "previous" not in json.dumps(entry.as_dict())


def test_failed_and_cancelled_requests_are_recorded(recorder: Recorder) -> None:
    call = recorder.lookup("local/fail", {"status": 500}, mode="once")
    recorder.begin(call, "req-1", seed=5)
    recorder.fail(call, "req-1", RuntimeError("boom"))
    entry = recorder.lock.get(call.fingerprint)
    assert entry is not None
    assert (entry.status, entry.error, entry.seed) == ("failed", "boom", 5)
    # A failed entry is not replayed: once calls again.
    assert not recorder.lookup("local/fail", {"status": 500}).hit
    recorder.begin(call, "req-2")
    recorder.fail(call, "req-2", "stopped", cancelled=True)
    assert recorder.lock.get(call.fingerprint).status == "cancelled"  # type: ignore[union-attr]


def test_a_failed_refresh_keeps_the_last_good_result(
    client: SyncClient, recorder: Recorder
) -> None:
    first = _record(recorder, client)
    call = recorder.lookup("local/text-to-image", ARGS, mode="refresh")
    recorder.begin(call, "req-new", seed=call.seed)
    recorder.fail(call, "req-new", "interrupted", cancelled=True)
    entry = recorder.lookup("local/text-to-image", ARGS).entry
    assert entry is not None
    assert entry.status == "completed"
    assert entry.result == portable(first)
    assert entry.extra["last_refresh"]["status"] == "cancelled"


def test_off_mode_neither_reads_nor_writes(client: SyncClient, recorder: Recorder) -> None:
    _record(recorder, client)
    before = recorder.lock.path.read_text()
    call = recorder.lookup("local/text-to-image", ARGS, mode="off")
    assert not call.hit
    assert call.seed is None
    recorder.begin(call, "req-off")
    recorder.complete(call, "req-off", {"seed": 1})
    assert recorder.lock.path.read_text() == before


def test_outputs_fed_back_as_inputs_keep_their_fingerprint(
    client: SyncClient, recorder: Recorder
) -> None:
    result = _record(recorder, client)
    [(url, _)] = find_media(result)
    by_url = recorder.lookup("local/image-to-image", {"image_url": url})
    data = recorder.media(url)
    by_bytes = recorder.lookup("local/image-to-image", {"image_url": data})
    assert by_url.fingerprint == by_bytes.fingerprint

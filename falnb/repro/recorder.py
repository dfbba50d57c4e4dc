"""The Recorder: what the Session asks before, during and after a call.

The Session's pipeline, with the Recorder's part in each step::

    call = recorder.lookup(endpoint, arguments, mode=mode, cell=cell)   # hit | pending | miss
    if call.hit:                        # replay: no network at all
        return build(call.entry.result, fetch_media=lambda url: recorder.media(url, call))
    seed = explicit_seed or call.seed or pick()   # refresh sends the pinned seed
    handle = attach(call.pending_request_id) if call.pending_request_id else submit(...)
    recorder.begin(call, handle.request_id, seed=seed)   # pending, BEFORE waiting
    try:
        result = wait(handle)
    except BaseException as exc:
        recorder.fail(call, handle.request_id, exc, cancelled=...)
        raise
    recorder.complete(call, handle.request_id, result, seed=seed)   # media into the store

Media are read through :meth:`Recorder.media`, which serves them from the content-addressed
store (downloading each URL once, re-fetching a tampered file) and never touches the network
when the call's mode is ``none``.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote_to_bytes

from falnb._version import __version__
from falnb.client.errors import FalError
from falnb.repro.fingerprint import canonical_arguments, canonical_json, fingerprint
from falnb.repro.lockfile import Entry, EntryStatus, LockFile, default_lock_path
from falnb.repro.modes import RecordMode
from falnb.repro.store import MediaRef, MediaStore

__all__ = ["Lookup", "Recorder", "ReplayMissError", "find_media"]


class ReplayMissError(FalError):
    """``record=none`` and the lock has no completed result for this call."""


@dataclass(frozen=True)
class Lookup:
    """What the lock knows about one call, and the mode it runs in."""

    endpoint: str
    arguments: dict[str, Any]
    """The call's arguments in canonical form (what the lock stores)."""
    fingerprint: str
    mode: RecordMode
    entry: Entry | None
    cell: str | None = None

    @property
    def hit(self) -> bool:
        """A completed entry to replay (modes ``once`` and ``none``)."""
        return (
            self.mode in ("once", "none")
            and self.entry is not None
            and self.entry.status == "completed"
        )

    @property
    def pending_request_id(self) -> str | None:
        """A request submitted earlier and never collected: re-attach instead of submitting."""
        if self.mode in ("once", "refresh") and self.entry and self.entry.status == "pending":
            return self.entry.request_id
        return None

    @property
    def seed(self) -> int | None:
        """The pinned seed, if an earlier run recorded one (refresh sends it again)."""
        return self.entry.seed if self.entry is not None and self.mode != "off" else None

    @property
    def result(self) -> Any:
        """The recorded result JSON of a hit."""
        return self.entry.result if self.hit and self.entry is not None else None

    @property
    def recording(self) -> bool:
        return self.mode not in ("off", "none")


def find_media(result: Any) -> list[tuple[str, str | None]]:
    """``(url, content_type)`` of every http(s) file in a result, in order, without repeats.

    fal's File objects are ``{"url": ..., "content_type": ..., ...}``; any ``url`` key counts.
    """
    found: dict[str, str | None] = {}

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            url = value.get("url")
            if isinstance(url, str) and url.startswith(("http://", "https://")):
                ctype = value.get("content_type")
                found.setdefault(url, ctype if isinstance(ctype, str) else None)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(result)
    return list(found.items())


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _reported_seed(result: Any) -> int | None:
    seed = result.get("seed") if isinstance(result, Mapping) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def _data_uri(url: str) -> bytes:
    header, _, payload = url.partition(",")
    return base64.b64decode(payload) if header.endswith(";base64") else unquote_to_bytes(payload)


class Recorder:
    """Lock lookups and records for one Session, backed by a :class:`LockFile` and a store.

    Example::

        recorder = Recorder.default(secrets=[key.reveal()])
        call = recorder.lookup("local/text-to-image", {"prompt": "a fox"}, mode="once")
    """

    def __init__(self, lock: LockFile, store: MediaStore) -> None:
        self.lock = lock
        self.store = store
        self._registered = False

    @classmethod
    def default(
        cls,
        notebook: str | os.PathLike[str] | None = None,
        *,
        secrets: Iterable[str] = (),
        store: MediaStore | None = None,
    ) -> Recorder:
        """The lock beside ``notebook`` (see :func:`default_lock_path`) and the default store."""
        return cls(LockFile(default_lock_path(notebook), secrets=secrets), store or MediaStore())

    def __repr__(self) -> str:
        return f"Recorder(lock={str(self.lock.path)!r}, store={str(self.store.root)!r})"

    # Before the call

    def _url_hashes(self, entries: Mapping[str, Entry]) -> dict[str, str]:
        return {m.url: m.sha256 for e in entries.values() for m in e.media}

    def lookup(
        self,
        endpoint: str,
        arguments: Mapping[str, Any],
        *,
        mode: RecordMode = "once",
        cell: str | None = None,
    ) -> Lookup:
        """What the lock holds for this call. ``arguments`` are the user's, without an auto seed.

        Raises :class:`ReplayMissError` in mode ``none`` when there is nothing to replay.
        """
        entries = self.lock.entries() if mode != "off" else {}
        known = self._url_hashes(entries)

        def url_hashes(url: str) -> str | None:
            if url in known:
                return known[url]
            ref = self.store.known(url)
            return ref.sha256 if ref else None

        endpoint = endpoint.strip("/")
        canonical = canonical_arguments(arguments, url_hashes=url_hashes)
        fp = fingerprint(endpoint, arguments, url_hashes=url_hashes)
        call = Lookup(endpoint, canonical, fp, mode, entries.get(fp), cell)
        if mode == "none" and not call.hit:
            raise ReplayMissError(self._miss_message(call))
        return call

    def _miss_message(self, call: Lookup) -> str:
        where = f"cell {call.cell}: " if call.cell else ""
        shown = canonical_json(call.arguments)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        why = "has no recorded result"
        if call.entry is not None:
            why = f"has only a {call.entry.status} entry (request {call.entry.request_id})"
        return (
            f"{where}record=none and {self.lock.path} {why} for {call.endpoint} {shown}; "
            "run it once with record=once (unset FALNB_RECORD) to record it"
        )

    # During and after the call

    def _write(self, call: Lookup, change: Any) -> None:
        if not call.recording:
            return
        if not self._registered:
            # So `falnb lock gc` keeps this lock's media; once per Recorder is enough.
            with contextlib.suppress(OSError):
                self.store.register_lock(self.lock.path)
            self._registered = True
        self.lock.update(call.fingerprint, change)

    def _entry(self, call: Lookup, status: EntryStatus, request_id: str, **fields: Any) -> Entry:
        return Entry(
            endpoint=call.endpoint,
            arguments=call.arguments,
            status=status,
            request_id=request_id,
            falnb_version=__version__,
            time=_now(),
            **fields,
        )

    def begin(self, call: Lookup, request_id: str, *, seed: int | None = None) -> None:
        """Write the request down as pending: a crash from here on re-attaches, never re-pays."""

        def change(current: Entry | None) -> Entry:
            extra: dict[str, Any] = {}
            if current is not None and current.status == "completed":
                # A refresh in flight keeps the last good result until the new one lands.
                extra["previous"] = current.as_dict()
            elif current is not None and current.status == "pending":
                extra = dict(current.extra)
            return self._entry(call, "pending", request_id, seed=seed, extra=extra)

        self._write(call, change)

    def complete(
        self,
        call: Lookup,
        request_id: str,
        result: Any,
        *,
        seed: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Entry:
        """Download the result's media into the store and record the result as completed.

        The pinned seed is ``seed`` (what was sent), else the seed the endpoint reports back,
        else the one recorded before. ``extra`` holds more JSON fields for the entry (the
        Session keeps the timings a replay shows).
        """
        media = tuple(
            self.store.fetch(url, content_type=ctype) for url, ctype in find_media(result)
        )
        pinned = seed if seed is not None else _reported_seed(result)
        if pinned is None:
            pinned = call.seed
        entry = self._entry(
            call,
            "completed",
            request_id,
            seed=pinned,
            result=result,
            media=media,
            extra=dict(extra or {}),
        )
        self._write(call, lambda _current: entry)
        return entry

    def fail(
        self,
        call: Lookup,
        request_id: str,
        error: BaseException | str,
        *,
        cancelled: bool = False,
    ) -> None:
        """Record a failed or cancelled request (a failed refresh keeps the last good result)."""
        status: EntryStatus = "cancelled" if cancelled else "failed"
        message = str(error) or type(error).__name__

        def change(current: Entry | None) -> Entry:
            seed = current.seed if current is not None else None
            previous = current.extra.get("previous") if current is not None else None
            if isinstance(previous, Mapping):
                kept = Entry.from_dict(previous)
                note = {"request_id": request_id, "status": status, "error": message}
                extra = {k: v for k, v in kept.extra.items() if k != "previous"}
                return kept.with_(extra={**extra, "last_refresh": note})
            return self._entry(call, status, request_id, seed=seed, error=message)

        self._write(call, change)

    # Media

    def _ref_for(self, url: str) -> MediaRef | None:
        ref = self.store.known(url)
        if ref is not None:
            return ref
        for entry in self.lock.entries().values():
            for media in entry.media:
                if media.url == url:
                    return media
        return None

    def media(self, url: str, call: Lookup | None = None) -> bytes:
        """The bytes behind a media URL, from the store (downloaded once, verified on read).

        With a ``none``-mode ``call`` the network is never used: a file missing from the store
        raises :class:`~falnb.repro.store.OfflineError`.
        """
        if url.startswith("data:"):
            return _data_uri(url)
        offline = call is not None and call.mode == "none"
        ref = self._ref_for(url)
        if ref is None:
            ref = self.store.fetch(url, offline=offline)
        else:
            # Keep the URL note, so the next read of this URL is a local one.
            with contextlib.suppress(OSError):
                if self.store.known(url) is None and self.store.object_path(ref.sha256).exists():
                    self.store.remember(ref)
        return self.store.read(ref.sha256, url=url, offline=offline)

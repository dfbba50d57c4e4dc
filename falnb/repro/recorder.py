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

Media are read through :meth:`Recorder.media`, in this order: the content-addressed cache,
then ``falnb-media/`` beside the lock (:mod:`falnb.repro.media_folder`), then the network
(never when the call's mode is ``none``); every copy is checked against its sha256. Recording
writes each file up to the media cap into ``falnb-media/``, so the lock travels with what it
needs; loopback URLs are saved port-free (:mod:`falnb.repro.urls`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal

from falnb._paths import shown as shown_path
from falnb._values import decode_data_uri, fal_files
from falnb._version import __version__
from falnb.client.errors import FalError
from falnb.repro.errors import ReplayMissError
from falnb.repro.fingerprint import canonical_arguments, canonical_json, fingerprint
from falnb.repro.lockfile import Entry, EntryStatus, LockFile, LockSnapshot, default_lock_path
from falnb.repro.media_folder import (
    FOLDER_NAME,
    MediaFolder,
    cap_above,
    describe_cap,
    describe_size,
    resolve_cap,
)
from falnb.repro.modes import RecordMode
from falnb.repro.store import MediaIntegrityError, MediaRef, MediaStore, OfflineError
from falnb.repro.urls import LOCAL_SCHEME, is_fetchable, portable, portable_url, scrub

__all__ = ["Lookup", "Recorder", "ReplayMissError", "find_media", "seedcheck_key"]


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
    media_cap: int | None = field(default_factory=resolve_cap)
    """Bytes per file that go into ``falnb-media/`` (None: all, 0: none)."""
    seedcheck: Entry | None = None
    """The endpoint's ``%fal seedcheck`` verdict, when the lock holds one (see falnb.seedchecks)."""

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


def seedcheck_key(endpoint: str) -> str:
    """Where an endpoint's seedcheck verdict lives in the lock."""
    return f"seedcheck:{endpoint.strip('/')}"


def find_media(result: Any) -> list[tuple[str, str | None]]:
    """``(url, content_type)`` of every http(s) file in a result, in order, without repeats.

    The files are fal's File objects as :func:`falnb._values.fal_files` finds them (what a
    Result shows), with the port-free URLs of files a loopback server served
    (``falnb-local:``) counted as http.
    """
    found: dict[str, str | None] = {}
    for _key, file in fal_files(result):
        url, ctype = file["url"], file.get("content_type")
        if url.startswith(("http://", "https://", LOCAL_SCHEME)):
            found.setdefault(url, ctype if isinstance(ctype, str) else None)
    return list(found.items())


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _reported_seed(result: Any) -> int | None:
    seed = result.get("seed") if isinstance(result, Mapping) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


class Recorder:
    """Lock lookups and records for one Session, backed by a :class:`LockFile` and a store.

    Example::

        recorder = Recorder.default(secrets=[key.reveal()])
        call = recorder.lookup("local/text-to-image", {"prompt": "a fox"}, mode="once")
    """

    def __init__(
        self, lock: LockFile, store: MediaStore, folder: MediaFolder | None = None
    ) -> None:
        self.lock = lock
        self.store = store
        self.folder = folder if folder is not None else MediaFolder.beside(lock.path)
        self._registered = False
        self._noted: set[str] = set()

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

    def describe(self, media_cap: int | None) -> list[str]:
        """Where this recorder keeps things, as ``%fal config`` shows it (no absolute paths)."""
        cap = describe_cap(media_cap)
        kept = "no files" if media_cap == 0 else f"files up to {cap}" if media_cap else "all files"
        return [
            f"lock file = {shown_path(self.lock.path)}",
            f"media folder = {shown_path(self.folder.root)}/ ({kept}; commit it with the lock)",
            f"media cache = {self.store.describe()}",
        ]

    # Before the call

    def lookup(
        self,
        endpoint: str,
        arguments: Mapping[str, Any],
        *,
        mode: RecordMode = "once",
        cell: str | None = None,
        media_cap: int | Literal["default"] | None = "default",
    ) -> Lookup:
        """What the lock holds for this call. ``arguments`` are the user's, without an auto seed.

        ``media_cap`` (bytes per file kept in ``falnb-media/``) defaults to ``FALNB_MEDIA_CAP``,
        else 2 MB. Raises :class:`ReplayMissError` in mode ``none`` when there is nothing to
        replay.
        """
        cap = resolve_cap(None) if media_cap == "default" else media_cap
        lock = self.lock.snapshot() if mode != "off" else LockSnapshot.empty()
        if len(lock):
            self._register()

        def url_hashes(url: str) -> str | None:
            for form in (url, portable_url(url)):
                if (recorded := lock.media_ref(form)) is not None:
                    return recorded.sha256
            ref = self.store.known(url)
            return ref.sha256 if ref else None

        endpoint = endpoint.strip("/")
        canonical = canonical_arguments(arguments, url_hashes=url_hashes)
        fp = fingerprint(endpoint, arguments, url_hashes=url_hashes)
        checked = lock.get(seedcheck_key(endpoint))
        call = Lookup(endpoint, canonical, fp, mode, lock.get(fp), cell, cap, checked)
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
            f"{where}record=none and {shown_path(self.lock.path)} {why} for {call.endpoint} "
            f"{shown}; "
            "run it once with record=once (unset FALNB_RECORD) to record it"
        )

    # During and after the call

    def _register(self) -> None:
        if not self._registered:
            # So `falnb lock gc` keeps this lock's media; once per Recorder is enough.
            with contextlib.suppress(OSError):
                self.store.register_lock(self.lock.path)
            self._registered = True

    def _write(self, call: Lookup, change: Any) -> None:
        if not call.recording:
            return
        self._register()
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
        media: Mapping[str, bytes] | None = None,
    ) -> Entry:
        """Put the result's media into the store and ``falnb-media/``; record it as completed.

        ``media`` holds files already downloaded, by URL (others are downloaded here). The
        pinned seed is ``seed`` (what was sent), else the seed the endpoint reports back,
        else the one recorded before. ``extra`` holds more JSON fields for the entry (the
        Session keeps the timings a replay shows). Loopback URLs are recorded port-free.
        """
        given = media or {}
        refs: list[MediaRef] = []
        for url, ctype in find_media(result):
            data = given.get(url)
            if data is None:
                ref = self.store.fetch(url, content_type=ctype)
                data = self.store.read(ref.sha256, url=url)
            else:
                ref = MediaRef(
                    url=url,
                    sha256=self.store.put(data),
                    content_type=ctype or "application/octet-stream",
                    size=len(data),
                )
            ref = replace(ref, url=portable_url(url))
            with contextlib.suppress(OSError):
                self.store.remember(ref)
            self._keep(call, ref, data)
            refs.append(ref)
        result = portable(result)
        pinned = seed if seed is not None else _reported_seed(result)
        if pinned is None:
            pinned = call.seed
        entry = self._entry(
            call,
            "completed",
            request_id,
            seed=pinned,
            result=result,
            media=tuple(refs),
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
        message = scrub(str(error)) or type(error).__name__

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
        recorded = self.lock.snapshot().media_ref(url)
        if recorded is not None:
            return recorded
        ref = self.store.known(url)
        return replace(ref, url=url) if ref is not None else None

    def media(self, url: str, call: Lookup | None = None) -> bytes:
        """The bytes behind a media URL: from the cache, else ``falnb-media/``, else the network.

        Each copy is checked against the sha256 the lock recorded, so a damaged file in one
        place is replaced from the next. With a ``none``-mode ``call`` the network is never
        used: a file in neither place raises :class:`~falnb.repro.store.OfflineError`, which
        says what to do.
        """
        if url.startswith("data:"):
            return decode_data_uri(url)
        offline = call is not None and call.mode == "none"
        ref = self._ref_for(url)
        if ref is None:
            if not is_fetchable(url):
                raise MediaIntegrityError(
                    f"{url} was served by a local server that is gone, and no lock entry "
                    "says what it held"
                )
            ref = self.store.fetch(url, offline=offline)
            return self.store.read(ref.sha256, url=url, offline=offline)
        data = self._read(ref, call, offline=offline)
        if call is not None:
            # A replay keeps what a recording keeps (a lock from before falnb-media/, or a
            # raised cap); never in mode none, which must leave the project as it found it.
            self._keep(call, ref, data, write=call.mode != "none")
        return data

    def inputs(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """``arguments`` with each recorded output's ``falnb-local:`` URL replaced by its bytes.

        Such a URL names a file a loopback server served once; only its bytes can be sent
        again. A URL whose file cannot be found is left as it is (a replay does not send it).
        """

        def swap(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: swap(v) for k, v in value.items()}
            if isinstance(value, list):
                return [swap(v) for v in value]
            if isinstance(value, str) and value.startswith(LOCAL_SCHEME):
                with contextlib.suppress(FalError, OSError):
                    if self._ref_for(value) is not None:
                        return self.media(value)
            return value

        swapped: dict[str, Any] = swap(arguments)
        return swapped

    def _read(self, ref: MediaRef, call: Lookup | None, *, offline: bool) -> bytes:
        cached, cache_problem = self.store.cached(ref.sha256)
        if cached is not None:
            self._remember(ref)
            return cached
        kept, folder_problem = self.folder.read(ref)
        if kept is not None:
            with contextlib.suppress(OSError):
                self.store.put(kept)
                self._remember(ref)
            return kept
        if is_fetchable(ref.url) and not offline:
            try:
                data = self.store.read(ref.sha256, url=ref.url)
            except MediaIntegrityError as exc:
                raise MediaIntegrityError(f"{exc}; {self._remedy(call)}") from None
            self._remember(ref)
            return data
        why = (
            "record=none allows no download"
            if offline and is_fetchable(ref.url)
            else "its URL was a local server's, which is gone"
        )
        cap = call.media_cap if call is not None else None
        if cap is not None and ref.size > cap:
            why += (
                f" (it was over media_cap={describe_cap(cap)} when it was recorded, so only "
                "that machine's cache had it)"
            )
        error = OfflineError if offline else MediaIntegrityError
        raise error(
            f"media {ref.sha256[:12]}… ({ref.content_type}, {describe_size(ref.size)}) is "
            f"missing: the cache's copy {cache_problem}, {self._folder_name()}'s "
            f"{folder_problem}, and {why}; " + self._remedy(call)
        )

    def _remember(self, ref: MediaRef) -> None:
        # Keep the URL note, so the next read of this URL is a local one.
        with contextlib.suppress(OSError):
            if self.store.known(ref.url) is None:
                self.store.remember(ref)

    def _folder_name(self) -> str:
        return f"{FOLDER_NAME}/" if self.folder.root.name == FOLDER_NAME else str(self.folder.root)

    def _remedy(self, call: Lookup | None) -> str:
        where = f"cell {call.cell}" if call is not None and call.cell else "the cell"
        endpoint = f" ({call.endpoint})" if call is not None else ""
        return (
            f"re-run {where}{endpoint} with --record refresh to make it again from its pinned "
            f"seed, or copy {self._folder_name()} (beside {self.lock.path.name}) from where it "
            "was recorded"
        )

    def _keep(self, call: Lookup, ref: MediaRef, data: bytes, *, write: bool = True) -> None:
        """Write ``ref`` into ``falnb-media/`` if the cap allows; say once when it does not."""
        cap = call.media_cap
        if cap == 0:
            return
        if cap is None or ref.size <= cap:
            if write:
                try:
                    self.folder.keep(ref, data)
                except OSError as exc:
                    # strerror, not str(exc): the saved note must not carry an absolute path.
                    problem = exc.strerror or type(exc).__name__
                    self._note(ref, f"falnb: could not write {self._folder_name()}: {problem}")
            return
        if self.folder.holds(ref):
            return  # kept under an earlier, larger cap
        self._note(
            ref,
            f"falnb: {call.endpoint}'s {ref.content_type} output ({describe_size(ref.size)}) is "
            f"over media_cap={describe_cap(cap)}, so it is not kept in {self._folder_name()} "
            "beside "
            f"{self.lock.path.name}: only this machine's cache has it. To keep it with the "
            f"notebook, raise the cap (%fal config media_cap={cap_above(ref.size)} or "
            f"FALNB_MEDIA_CAP) and re-run the cell.",
        )

    def _note(self, ref: MediaRef, text: str) -> None:
        if ref.sha256 not in self._noted:
            self._noted.add(ref.sha256)
            print(text, file=sys.stderr, flush=True)  # noqa: T201 - a note for the cell's user

"""Reproducible, seed-pinned calls: fingerprints, the lock file, the media store, record modes.

A call is keyed by a fingerprint of its endpoint and canonical arguments. The lock file
(``falnb.lock`` beside the notebooks, committed) records each call's seed, request id, status,
result JSON and media; the media themselves live in a content-addressed store in falnb's cache
and, up to a size cap, in ``falnb-media/`` beside the lock (committed with it).
The :class:`Recorder` is what the Session talks to.

Example::

    from falnb.repro import Recorder

    recorder = Recorder.default()
    call = recorder.lookup("local/text-to-image", {"prompt": "a fox"}, mode="once")
    if call.hit:
        print(call.result)
"""

from __future__ import annotations

from falnb.repro.fingerprint import ArgumentError, canonical_arguments, fingerprint
from falnb.repro.lockfile import (
    Entry,
    LockFile,
    LockFileError,
    LockWriteError,
    default_lock_path,
)
from falnb.repro.media_folder import MediaFolder, parse_cap, resolve_cap
from falnb.repro.modes import RecordMode, parse_mode, resolve_mode
from falnb.repro.recorder import Lookup, Recorder, ReplayMissError, find_media
from falnb.repro.store import (
    MediaIntegrityError,
    MediaRef,
    MediaStore,
    OfflineError,
    default_cache_dir,
)
from falnb.repro.urls import portable, portable_url

__all__ = [
    "ArgumentError",
    "Entry",
    "LockFile",
    "LockFileError",
    "LockWriteError",
    "Lookup",
    "MediaFolder",
    "MediaIntegrityError",
    "MediaRef",
    "MediaStore",
    "OfflineError",
    "RecordMode",
    "Recorder",
    "ReplayMissError",
    "canonical_arguments",
    "default_cache_dir",
    "default_lock_path",
    "find_media",
    "fingerprint",
    "parse_cap",
    "parse_mode",
    "portable",
    "portable_url",
    "resolve_cap",
    "resolve_mode",
]

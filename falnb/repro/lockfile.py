"""The lock file: recorded fal calls, keyed by fingerprint, committed beside the notebooks.

One lock per directory of notebooks (a "project"): ``falnb.lock`` in the notebook's
directory, shared by the notebooks there. Entries are keyed by fingerprint, so two notebooks
making the same call share one entry, and a notebook can be renamed or moved with its
directory without losing its recordings. ``FALNB_LOCK`` names another file.

The file is indented JSON with sorted keys, so diffs are clean. Writes go to a temporary file
that replaces the lock atomically, under an inter-process file lock with a read-modify-write,
so two kernels recording at once never lose each other's entries. That file lock lives in
falnb's cache (``locks/<hash of the lock's path>.flock``; the temp directory when the cache is
not writable), not beside the lock, where it would end up in the user's commits. Strings given as
``secrets`` are redacted before anything reaches the disk.

Reads are cached: a sweep looks the lock up once per job, and re-parsing a lock of a thousand
entries each time made a sweep's cost grow with the square of its size. A :class:`LockFile`
keeps the version it last read or wrote, parsed, and reads the file again only when its
identity (device, inode, size, mtime and ctime in ns) changes, as any write by another
process changes it (writes replace the file). Callers get copies of entries, never the
cached objects, so changing a replayed result cannot change the next lookup. A
read-modify-write always reads the file itself under the file lock (comparing its bytes,
not its identity), so two kernels writing one lock never lose an entry.

Example::

    lock = LockFile(Path("falnb.lock"))
    lock.put(fp, entry)
    assert lock.get(fp) == entry
"""

from __future__ import annotations

import contextlib
import copy
import errno
import functools
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Generic, Literal, TypeVar, cast

from falnb.repro.errors import LockFileError, LockWriteError
from falnb.repro.store import MediaRef, default_cache_dir

if TYPE_CHECKING:
    from filelock import FileLock

__all__ = [
    "FORMAT_VERSION",
    "LOCK_ENV",
    "LOCK_NAME",
    "Entry",
    "EntryStatus",
    "LockFile",
    "LockFileError",
    "LockSnapshot",
    "LockWriteError",
    "default_lock_path",
]

FORMAT_VERSION = 1
LOCK_NAME = "falnb.lock"
LOCK_ENV = "FALNB_LOCK"
_ABOUT = (
    "falnb lock file: fal calls recorded by fingerprint (endpoint + arguments). Commit it with "
    "falnb-media/ beside it, which holds the media it needs (falnb lock show / verify / gc)."
)

T = TypeVar("T")
#: A queued :meth:`LockFile.update`: the fingerprint and the change to its entry.
_Change = tuple[str, Callable[["Entry | None"], "Entry | None"]]
EntryStatus = Literal["pending", "completed", "failed", "cancelled"]
#: Room a write probe asks for beyond the current file: a pending entry, or a modest result.
_PROBE_SLACK = 64 * 1024


def _write_error(path: Path, exc: OSError) -> LockWriteError:
    reason = exc.strerror or type(exc).__name__
    if exc.errno == errno.EISDIR or path.is_dir():
        reason, fix = "it is a directory", "remove it, or set FALNB_LOCK to a file"
    elif exc.errno == errno.ENOSPC:
        fix = "free some disk space, or set FALNB_LOCK to a file on another disk"
    else:
        fix = "make its directory writable, or set FALNB_LOCK to a writable file"
    return LockWriteError(
        f"cannot write the lock file {path}: {reason}; {fix} (or run with --record off)"
    )


@dataclass(frozen=True)
class Entry:
    """One recorded call."""

    endpoint: str
    arguments: dict[str, Any]
    status: EntryStatus
    request_id: str | None = None
    seed: int | None = None
    result: Any = None
    media: tuple[MediaRef, ...] = ()
    error: str | None = None
    falnb_version: str = ""
    time: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "endpoint": self.endpoint,
            "arguments": self.arguments,
            "status": self.status,
            "request_id": self.request_id,
            "seed": self.seed,
            "result": self.result,
            "media": [m.as_dict() for m in self.media],
            "falnb_version": self.falnb_version,
            "time": self.time,
        }
        if self.error is not None:
            data["error"] = self.error
        return {**self.extra, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        known = {
            "endpoint", "arguments", "status", "request_id", "seed", "result", "media",
            "error", "falnb_version", "time",
        }  # fmt: skip
        seed = data.get("seed")
        return cls(
            endpoint=str(data["endpoint"]),
            arguments=dict(data.get("arguments") or {}),
            status=cast("EntryStatus", str(data.get("status", "completed"))),
            request_id=data.get("request_id"),
            seed=int(seed) if isinstance(seed, (int, float)) else None,
            result=data.get("result"),
            media=tuple(MediaRef.from_dict(m) for m in data.get("media") or ()),
            error=data.get("error"),
            falnb_version=str(data.get("falnb_version", "")),
            time=str(data.get("time", "")),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def with_(self, **changes: Any) -> Entry:
        return replace(self, **changes)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _ordered(entry: dict[str, Any]) -> dict[str, Any]:
    """Sorted keys everywhere except the result, kept in the endpoint's own (stable) order
    so that a replayed result renders exactly like the original."""
    return {k: entry[k] if k == "result" else _sorted(entry[k]) for k in sorted(entry)}


def _clone(value: Any) -> Any:
    """A copy of a JSON value that shares nothing mutable with it (strings are immutable)."""
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def _copy(entry: Entry) -> Entry:
    """An entry a caller may change freely: the cached one stays as the file has it."""
    return replace(
        entry,
        arguments=_clone(entry.arguments),
        result=_clone(entry.result),
        extra=_clone(entry.extra),
    )


def _parse(path: Path, data: bytes) -> dict[str, Entry]:
    # A lock is UTF-8; json.loads on bytes would also take UTF-16 or UTF-32. Bytes that are not
    # UTF-8 raise UnicodeDecodeError here, which callers report as an unreadable file.
    text = data.decode("utf-8")
    try:
        raw = json.loads(text)["entries"]
        return {fp: Entry.from_dict(e) for fp, e in raw.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LockFileError(
            f"{path} is not a valid falnb lock file ({exc.__class__.__name__}: {exc}); "
            "fix it (a merge conflict?) or delete it to record again"
        ) from None


#: What tells one version of the file from another: (device, inode, size, mtime, ctime).
_Identity = tuple[int, int, int, int, int]


def _identity(stat: os.stat_result) -> _Identity:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class LockSnapshot:
    """The lock as one read saw it: entries by fingerprint, and media by URL.

    Entries come out as copies (see :meth:`get`); the snapshot itself is never changed.
    """

    def __init__(
        self,
        identity: _Identity | None,
        data: bytes,
        entries: dict[str, Entry],
        members: Mapping[str, bytes] | None = None,
    ) -> None:
        self.identity = identity  # None: no file, or one whose identity is not known
        self.data = data  # the file's bytes
        self._entries = entries
        # Each entry's text in the file, when this version was written here (see _render).
        self.members: Mapping[str, bytes] = members or {}

    @staticmethod
    def empty() -> LockSnapshot:
        """The snapshot of a lock with no entries (or none consulted)."""
        return _EMPTY

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, fingerprint: object) -> bool:
        return fingerprint in self._entries

    def fingerprints(self) -> list[str]:
        return list(self._entries)

    def get(self, fingerprint: str) -> Entry | None:
        """A copy of the entry: a caller that changes its result changes only its own."""
        entry = self._entries.get(fingerprint)
        return _copy(entry) if entry is not None else None

    def entries(self) -> dict[str, Entry]:
        """Copies of every entry, by fingerprint."""
        return {fp: _copy(e) for fp, e in self._entries.items()}

    def media_ref(self, url: str) -> MediaRef | None:
        """What the first entry recording ``url`` says it held."""
        return self._media.get(url)

    @functools.cached_property
    def _media(self) -> dict[str, MediaRef]:
        refs: dict[str, MediaRef] = {}
        for entry in self._entries.values():
            for media in entry.media:
                refs.setdefault(media.url, media)
        return refs


def default_lock_path(
    notebook: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """Where the lock lives: ``$FALNB_LOCK``, else ``falnb.lock`` in the notebook's directory.

    ``notebook`` is the notebook's absolute path when known (IPython's ``__session__``);
    otherwise ``JPY_SESSION_NAME`` (set by Jupyter for kernels it starts), otherwise the
    current directory, which Jupyter and nbclient set to the notebook's directory.
    """
    env = os.environ if environ is None else environ
    if env.get(LOCK_ENV):
        return Path(env[LOCK_ENV]).expanduser()
    candidate = str(notebook) if notebook else env.get("JPY_SESSION_NAME", "")
    if candidate.endswith(".ipynb"):
        path = Path(candidate).expanduser()
        # A relative path is Jupyter's URL path (relative to its root, not to us): unusable.
        if path.is_absolute() and path.parent.is_dir():
            return path.parent / LOCK_NAME
    return Path.cwd() / LOCK_NAME


def _mutex_path(lock_path: Path) -> Path:
    """The inter-process lock for ``lock_path``: one per lock file, kept out of its directory."""
    name = hashlib.sha256(str(lock_path.resolve()).encode()).hexdigest()[:32] + ".flock"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    for folder in (default_cache_dir() / "locks", Path(tempfile.gettempdir()) / f"falnb-{uid}"):
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder / name
    return lock_path.with_name(f".{lock_path.name}.flock")  # nowhere else to put it


def _reserve(file: BinaryIO, size: int) -> None:
    """Take ``size`` bytes of the disk for ``file`` (ENOSPC if it has not got them).

    Allocating is what a write of the lock needs from the disk, without writing (and, on the
    fsync, flushing) the bytes: at a thousand entries, a probe that wrote them held the file
    lock for as long as the writes did.
    """
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(file.fileno(), 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
        else:
            return
    file.write(b" " * size)  # no fallocate here (macOS), or not on this file system
    file.flush()


class _Batches(Generic[T]):
    """Work that threads hand in at once, done in batches: while one thread runs a batch, the
    others' items queue up, and the next of them runs them all. :meth:`do` returns (or raises
    its item's own error) once a batch holding its item has run, never earlier."""

    def __init__(self, run: Callable[[list[T]], list[Exception | None]]) -> None:
        self._run = run  # one error (or None) per item
        self._queued: list[_Item[T]] = []
        self._running = False
        self._turn = threading.Condition()

    def do(self, value: T) -> None:
        mine = _Item(value)
        with self._turn:
            self._queued.append(mine)
            while self._running and not mine.done:
                self._turn.wait()
            runner = not mine.done
            if runner:
                self._running = True  # this thread runs the batch, its own item included
                batch, self._queued = self._queued, []
        if runner:
            self._run_batch(batch, mine)
        if mine.error is not None:
            raise mine.error

    def _run_batch(self, batch: list[_Item[T]], mine: _Item[T]) -> None:
        try:
            errors = self._run([item.value for item in batch])
        except BaseException:
            # This thread was interrupted (a KeyboardInterrupt): the others' items wait for
            # the next runner.
            with self._turn:
                self._queued[:0] = [item for item in batch if item is not mine]
                self._running = False
                self._turn.notify_all()
            raise
        with self._turn:
            for item, error in zip(batch, errors, strict=True):
                # Each thread raises an error object of its own (tracebacks are per raise).
                item.error = error if error is None or item is mine else copy.copy(error)
                item.done = True
            self._running = False
            self._turn.notify_all()


class _Item(Generic[T]):
    def __init__(self, value: T) -> None:
        self.value = value
        self.done = False
        self.error: Exception | None = None


class LockFile:
    """A lock file on disk. Reads are lock-free (writes replace the file atomically).

    Updates from many threads at once (a sweep's jobs) are group-committed: while one thread
    writes, the others' changes queue up, and the next write applies them all, with one
    rewrite and one fsync. Each :meth:`update` still returns only once its change is durable.
    Write probes (:meth:`check_writable`) are shared the same way.
    """

    def __init__(self, path: str | os.PathLike[str], *, secrets: Iterable[str] = ()) -> None:
        self.path = Path(path)
        self._mutex: FileLock | None = None
        # A key may be FAL_KEY_ID:FAL_KEY_SECRET: each half is a secret of its own. Longest
        # first, so the whole goes before its halves. Short strings are not secrets worth
        # redacting and would mangle ordinary text.
        parts = {part for s in secrets for part in (s, *s.split(":", 1)) if len(part) >= 8}
        self._secrets = tuple(sorted(parts, key=len, reverse=True))
        self._version: LockSnapshot | None = None  # the file as last read or written
        self._reading = threading.Lock()
        self._updates = _Batches[_Change](self._commit)
        self._probes = _Batches[None](lambda batch: [self._probe()] * len(batch))

    def __repr__(self) -> str:
        return f"LockFile({str(self.path)!r})"

    def entries(self) -> dict[str, Entry]:
        """Every entry by fingerprint ({} when the file does not exist): copies, the caller's."""
        return self.snapshot().entries()

    def get(self, fingerprint: str) -> Entry | None:
        return self.snapshot().get(fingerprint)

    def snapshot(self) -> LockSnapshot:
        """The file as it is now, parsed only if it changed since it was last read or written."""
        try:
            identity = _identity(os.stat(self.path))
        except FileNotFoundError:
            return _EMPTY
        known = self._version
        if known is not None and known.identity == identity:
            return known
        with self._reading:  # threads that missed at once parse the new version once
            known = self._version
            if known is not None and known.identity == identity:
                return known
            return self._read()

    def _read(self) -> LockSnapshot:
        """The file's bytes read now (parsed again only if they differ from the last known)."""
        try:
            with open(self.path, "rb") as file:
                identity, data = _identity(os.fstat(file.fileno())), file.read()
        except FileNotFoundError:
            return _EMPTY
        except IsADirectoryError as exc:
            raise _write_error(self.path, exc) from None  # nor can it be written: say how
        known = self._version
        if known is not None and known.data == data:
            version = LockSnapshot(identity, data, known._entries, known.members)
        else:
            version = LockSnapshot(identity, data, _parse(self.path, data))
        self._version = version
        return version

    def put(self, fingerprint: str, entry: Entry) -> None:
        """Write ``entry`` under ``fingerprint``, keeping every other writer's entries."""
        with self.edit() as entries:
            entries[fingerprint] = entry

    def update(self, fingerprint: str, change: Callable[[Entry | None], Entry | None]) -> None:
        """Replace the entry with ``change(current)`` (None deletes it), atomically; returns
        once it is on the disk (written with whatever other threads queued meanwhile)."""
        self._updates.do((fingerprint, change))

    def _commit(self, batch: list[_Change]) -> list[Exception | None]:
        """Apply every change of ``batch`` and write once: each change's error, or the
        write's for all of them."""
        errors: list[Exception | None] = [None] * len(batch)
        try:
            with self.edit() as entries:
                for index, (fingerprint, change) in enumerate(batch):
                    current = entries.get(fingerprint)
                    try:
                        new = change(_copy(current) if current is not None else None)
                    except Exception as exc:  # noqa: BLE001 - its own caller raises it
                        errors[index] = exc
                        continue
                    if new is None:
                        entries.pop(fingerprint, None)
                    else:
                        entries[fingerprint] = new
        except Exception as exc:  # noqa: BLE001 - raised in every thread of the batch
            return [error or exc for error in errors]
        return errors

    @contextlib.contextmanager
    def edit(self) -> Iterator[dict[str, Entry]]:
        """Read-modify-write under the inter-process lock; the dict is written back on exit.

        The file is read afresh under the lock, whatever was cached. The entries in the dict
        are the lock's own: put new ones in, never change one in place. A write that fails
        raises :class:`LockWriteError` (the file is left as it was).
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock():
                with self._reading:
                    entries = dict(self._read()._entries)
                yield entries
                self._write(entries)
        except OSError as exc:
            raise _write_error(self.path, exc) from None

    def check_writable(self) -> None:
        """Raise :class:`LockWriteError` unless a write would succeed now (before paying).

        Probes what a write does: the directory, the inter-process lock beside the file, and
        room on the disk for the file as written plus an entry (a temporary file of that size
        is allocated, synced and removed).
        Threads asking at once share a probe that starts after they asked.
        """
        self._probes.do(None)

    def _probe(self) -> LockWriteError | None:
        try:
            if self.path.is_dir():
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(self.path))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            size = _PROBE_SLACK + (self.path.stat().st_size if self.path.exists() else 0)
            with self._lock():
                fd, tmp = tempfile.mkstemp(
                    dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".probe"
                )
                try:
                    with os.fdopen(fd, "wb") as file:
                        _reserve(file, size)
                        os.fsync(file.fileno())
                finally:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
        except OSError as exc:
            return _write_error(self.path, exc)
        return None

    def _lock(self) -> FileLock:
        """The inter-process lock, made on first use."""
        if self._mutex is None:
            from filelock import FileLock  # only a writer needs it: not at import time

            self._mutex = FileLock(str(_mutex_path(self.path)))
        return self._mutex

    def render(self, entries: Mapping[str, Entry]) -> str:
        """The file's text for ``entries``: stable, sorted, secrets redacted."""
        return self._render(entries, self._version)[0].decode("utf-8")

    def _render(
        self, entries: Mapping[str, Entry], base: LockSnapshot | None
    ) -> tuple[bytes, dict[str, bytes]]:
        """The file's bytes, and each entry's member of the ``entries`` object in them.

        The text is what ``json.dumps(document, indent=2)`` writes, put together from one
        member per entry, so that an entry unchanged since this process last wrote the file
        is not encoded again (``indent`` makes json encode in Python: the cost of a write).
        ``base`` is the version ``entries`` were read from.
        """
        members: dict[str, bytes] = {}
        for fp in sorted(entries):
            entry = entries[fp]
            member = base.members.get(fp) if base is not None else None
            if member is None or base is None or base._entries.get(fp) is not entry:
                value = json.dumps(_ordered(entry.as_dict()), indent=2, ensure_ascii=False)
                text = json.dumps(fp, ensure_ascii=False) + ": " + value
                text = "    " + self._redact(text).replace("\n", "\n    ")  # two levels in
                member = text.encode("utf-8")
            members[fp] = member
        body = b"{\n" + b",\n".join(members.values()) + b"\n  }" if members else b"{}"
        return b"".join((_HEAD, body, _TAIL)), members

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _write(self, entries: Mapping[str, Entry]) -> None:
        base = self._version
        data, members = self._render(entries, base)
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
                written = os.fstat(file.fileno())
            os.chmod(tmp, 0o644)  # a committed file, not a private temp file
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._remember(data, entries, members, base, written)

    def _remember(
        self,
        data: bytes,
        entries: Mapping[str, Entry],
        members: dict[str, bytes],
        base: LockSnapshot | None,
        written: os.stat_result,
    ) -> None:
        """Keep the version just written, so the next read need not parse it.

        Entries new in it are kept as the file has them (parsed back from their own text:
        redacted, keys sorted), not as the caller's objects, which the caller may change.
        """
        kept: dict[str, Entry] = {}
        for fp, entry in entries.items():
            cached = base._entries.get(fp) if base is not None else None
            if cached is not entry:
                [raw] = json.loads(b"{" + members[fp] + b"}").values()
                cached = Entry.from_dict(raw)
            kept[fp] = cached
        identity: _Identity | None = None
        with contextlib.suppress(OSError):
            now = os.stat(self.path)
            if (now.st_dev, now.st_ino) == (written.st_dev, written.st_ino):
                identity = _identity(now)  # the rename changed its ctime: stat it in place
        self._version = LockSnapshot(identity, data, kept, members)


_EMPTY = LockSnapshot(None, b"", {})
# The document around the entries (see LockFile._render).
_HEAD = f'{{\n  "about": {json.dumps(_ABOUT, ensure_ascii=False)},\n  "entries": '.encode()
_TAIL = f',\n  "version": {FORMAT_VERSION}\n}}\n'.encode()

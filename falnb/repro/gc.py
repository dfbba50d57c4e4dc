"""``falnb lock gc``: delete the media no lock refers to, in the cache and in ``falnb-media/``.

The locks whose media are kept: every lock that recorded or replayed through this cache, the
lock of the working directory, and any named. A ``falnb-media/`` folder beside one of them is
pruned too, keeping what any lock in its directory refers to. A lock that cannot be read
stops everything: deleting media it may refer to would break it.

Example::

    report = collect_garbage(MediaStore(), [Path("falnb.lock")], dry_run=True)
    print(report.summary())
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from falnb.repro.lockfile import LockFile, LockFileError
from falnb.repro.media_folder import MediaFolder
from falnb.repro.store import MediaStore

__all__ = ["Collection", "collect_garbage"]


@dataclass
class Collection:
    """What a collection deleted (or, in a dry run, would delete)."""

    store: MediaStore
    dry_run: bool
    locks: list[Path]
    kept: set[str]
    objects: list[str] = field(default_factory=list)
    size: int = 0
    folders: dict[Path, list[Path]] = field(default_factory=dict)

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        lines = [
            (
                f"{verb} {len(self.objects)} media file(s), {self.size} bytes; kept "
                f"{len(self.kept)} referenced by {len(self.locks)} lock file(s) "
                f"in {self.store.root}"
            )
        ]
        lines += [
            f"{verb} {len(files)} file(s) no lock beside it refers to from {folder}"
            for folder, files in self.folders.items()
            if files
        ]
        return "\n".join(lines)


def _media_of(path: Path) -> set[str]:
    return {m.sha256 for e in LockFile(path).entries().values() for m in e.media}


def _neighbours(folder: MediaFolder) -> list[Path]:
    """The lock files that may use ``folder``: falnb locks in its directory."""
    found = []
    for path in sorted(folder.root.parent.glob("*.lock")):
        try:
            LockFile(path).entries()
        except (LockFileError, OSError, UnicodeDecodeError):
            # Another tool's *.lock is skipped; a damaged falnb lock (a merge conflict) stops
            # the collection, as it would delete what that lock refers to.
            with contextlib.suppress(OSError, UnicodeDecodeError):
                if "falnb lock file" in path.read_text(encoding="utf-8"):
                    raise
            continue
        found.append(path)
    return found


def collect_garbage(
    store: MediaStore, locks: Iterable[str | Path], *, dry_run: bool = False
) -> Collection:
    """Delete media none of ``locks`` (plus the store's registered ones) refers to.

    Raises :class:`LockFileError` when one of them cannot be read; nothing is deleted then.
    """
    paths = list(dict.fromkeys(Path(p).absolute() for p in [*store.registered_locks(), *locks]))
    paths = [p for p in paths if p.exists()]
    keep: set[str] = set()
    for path in paths:
        keep |= _media_of(path)
    folders: dict[Path, set[str]] = {}
    for path in paths:
        folder = MediaFolder.beside(path)
        if folder.root.is_dir() and folder.root not in folders:
            users = {*_neighbours(folder), path}
            folders[folder.root] = set().union(*(_media_of(p) for p in users))
    result = Collection(store, dry_run, paths, keep)
    result.objects = [sha for sha in store.objects() if sha not in keep]
    result.size = sum(store.object_path(sha).stat().st_size for sha in result.objects)
    if not dry_run:
        store.gc(keep)
    for root, needed in folders.items():
        result.folders[root] = MediaFolder(root).prune(needed, dry_run=dry_run)
    return result

"""The media folder: the files a lock needs, kept beside it, so a committed notebook travels.

The cache (:mod:`falnb.repro.store`) is per machine; ``falnb-media/`` beside the lock file is
committed with it, so a fresh clone, a new CI runner or a machine after ``falnb lock gc``
replays with no cache and no network. Files are named by the sha256 of their content (plus an
extension, so they open with a double click) and verified on every read.

Only files up to a cap go in (default 2 MB each: git is for small files). The cap is set by
``%fal config media_cap=10MB``, else ``FALNB_MEDIA_CAP``; ``off`` (or ``0``) keeps none,
``all`` keeps everything. A larger file stays in this machine's cache, and falnb says so.

Example::

    folder = MediaFolder.beside(Path("falnb.lock"))
    folder.keep(ref, data)
    assert folder.read(ref) == data
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from falnb._values import describe_size, sha256_hex
from falnb.repro.store import MediaRef, atomic_write

__all__ = [
    "CAP_ENV",
    "DEFAULT_CAP",
    "FOLDER_NAME",
    "MediaFolder",
    "cap_above",
    "describe_cap",
    "describe_size",
    "parse_cap",
    "resolve_cap",
]

FOLDER_NAME = "falnb-media"
CAP_ENV = "FALNB_MEDIA_CAP"
DEFAULT_CAP = 2_000_000
"""Bytes per file; ``None`` means no limit, ``0`` keeps no file."""

_UNITS = {"": 1, "b": 1, "kb": 1000, "k": 1000, "mb": 10**6, "m": 10**6, "gb": 10**9, "g": 10**9}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")

# A fixed table, not mimetypes: its answers depend on the machine's mime.types, and a file
# name written on one machine must be the name looked up on another.
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "audio/flac": ".flac",
    "application/json": ".json",
    "text/plain": ".txt",
}


def parse_cap(value: str | int, *, source: str = "media_cap") -> int | None:
    """``"2MB"``, ``"500kB"``, ``1000000``, ``"off"`` (0) or ``"all"`` (None) as a byte cap."""
    if isinstance(value, bool):
        value = "on" if value else "off"  # YAML reads a bare off as False
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{source} cannot be negative")
        return value
    text = value.strip().lower()
    if text in ("off", "none", "no", "false"):
        return 0
    if text in ("all", "unlimited", "inf"):
        return None
    if text in ("on", "default"):
        return DEFAULT_CAP
    match = _SIZE.fullmatch(text)
    if match is None or match[2] not in _UNITS:
        raise ValueError(f"{source} must be a size like 2MB or 500kB, off or all, not {value!r}")
    return int(float(match[1]) * _UNITS[match[2]])


def resolve_cap(
    setting: str | int | None = None, environ: Mapping[str, str] | None = None
) -> int | None:
    """The cap for a call: the notebook's ``media_cap``, else ``FALNB_MEDIA_CAP``, else 2 MB."""
    if setting is not None:
        return parse_cap(setting)
    env = os.environ if environ is None else environ
    if env.get(CAP_ENV, "").strip():
        return parse_cap(env[CAP_ENV], source=CAP_ENV)
    return DEFAULT_CAP


def describe_cap(cap: int | None) -> str:
    if cap is None:
        return "all"
    if cap == 0:
        return "off"
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 1000)):
        if cap >= size:
            return f"{cap / size:g}{unit}"
    return f"{cap}B"


def cap_above(count: int) -> str:
    """A round cap that keeps a file of ``count`` bytes (``6MB`` for 5.2 MB)."""
    return f"{-(-count // 1_000_000)}MB"


class MediaFolder:
    """A content-addressed folder of media files beside a lock file (``falnb-media/``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @classmethod
    def beside(cls, lock_path: str | os.PathLike[str]) -> MediaFolder:
        return cls(Path(lock_path).parent / FOLDER_NAME)

    def __repr__(self) -> str:
        return f"MediaFolder({str(self.root)!r})"

    def file_path(self, ref: MediaRef) -> Path:
        extension = _EXTENSIONS.get(ref.content_type.split(";")[0].strip().lower(), "")
        return self.root / f"{ref.sha256}{extension}"

    def find(self, sha256: str) -> Path | None:
        """The file holding object ``sha256``, whatever its extension (not verified)."""
        if not self.root.is_dir():
            return None
        return next(iter(sorted(self.root.glob(f"{sha256}*"))), None)

    def read(self, ref: MediaRef) -> tuple[bytes | None, str]:
        """``(bytes, "")`` when the folder holds ``ref`` intact, else ``(None, what is wrong)``."""
        path = self.file_path(ref)
        if not path.is_file():
            path = self.find(ref.sha256) or path
        try:
            data = path.read_bytes()
        except OSError:
            return None, "is not there"
        if sha256_hex(data) != ref.sha256:
            return None, "does not match its sha256 (damaged or edited)"
        return data, ""

    def holds(self, ref: MediaRef) -> bool:
        return self.read(ref)[0] is not None

    def keep(self, ref: MediaRef, data: bytes) -> None:
        """Write ``data`` as ``ref``'s file (replacing a damaged one); the caller checks the cap."""
        if sha256_hex(data) != ref.sha256:
            raise ValueError(f"data does not match media {ref.sha256[:12]}…")
        if not self.holds(ref):
            atomic_write(self.file_path(ref), data, mode=0o644)

    def objects(self) -> dict[str, Path]:
        """Every file in the folder, by the sha256 its name gives."""
        if not self.root.is_dir():
            return {}
        found: dict[str, Path] = {}
        for path in sorted(self.root.iterdir()):
            sha = path.name.split(".", 1)[0]
            if path.is_file() and len(sha) == 64 and not path.name.startswith("."):
                found[sha] = path
        return found

    def prune(self, keep: Iterable[str], *, dry_run: bool = False) -> list[Path]:
        """Delete the files whose sha256 is not in ``keep``; the paths deleted (or to delete)."""
        kept = set(keep)
        doomed = [path for sha, path in self.objects().items() if sha not in kept]
        if not dry_run:
            for path in doomed:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return doomed

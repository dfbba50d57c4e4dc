"""The media store: every output file downloaded once, kept by the sha256 of its content.

It lives outside version control, in ``$FALNB_CACHE_DIR/media`` or
``$XDG_CACHE_HOME/falnb/media`` (default ``~/.cache/falnb/media``), so notebooks keep
rendering after fal's CDN URLs expire (fal-platform-apis.md section 3.4). Layout::

    objects/ab/abcdef...   the bytes, named by their sha256
    urls/<sha256 of url>   {"sha256", "content_type", "size"}: which object a URL gave
    locks.txt              lock files that used this store (``falnb lock gc`` keeps their media)

Every read re-hashes the object: a tampered or truncated file is fetched again from its URL
when the URL still works, else :class:`MediaIntegrityError` says what is wrong. Media URLs are
public (fal.media needs no key), so the store sends no credentials.

Example::

    store = MediaStore()
    ref = store.fetch("https://v3.fal.media/files/b/0a1b/output.png")
    data = store.read(ref.sha256, url=ref.url)
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from falnb._paths import shown
from falnb._values import sha256_hex
from falnb.client._transport import download_blocking
from falnb.client.errors import FalError, HTTPError
from falnb.repro.errors import MediaDownloadError, MediaIntegrityError, OfflineError

__all__ = [
    "CACHE_ENV",
    "MediaDownloadError",
    "MediaIntegrityError",
    "MediaRef",
    "MediaStore",
    "OfflineError",
    "atomic_write",
    "default_cache_dir",
]

CACHE_ENV = "FALNB_CACHE_DIR"

#: Downloads ``url`` and returns ``(bytes, content type or None)``.
Fetcher = Callable[[str], tuple[bytes, str | None]]


@dataclass(frozen=True)
class MediaRef:
    """One media file as the lock records it."""

    url: str
    sha256: str
    content_type: str
    size: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaRef:
        return cls(
            url=str(data["url"]),
            sha256=str(data["sha256"]),
            content_type=str(data.get("content_type") or "application/octet-stream"),
            size=int(data.get("size") or 0),
        )


def default_cache_dir() -> Path:
    """falnb's cache directory: ``$FALNB_CACHE_DIR``, else the XDG cache dir + ``falnb``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "falnb"


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a temporary file, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _http_fetch(url: str) -> tuple[bytes, str | None]:
    # Through falnb's retrying transport: a CDN blip after a paid request must not lose it.
    # No Authorization header: fal's media URLs are public and a key must not leak to a CDN.
    try:
        response = download_blocking(url)
    except HTTPError as exc:
        raise MediaDownloadError(
            f"could not download {_short(url)}: HTTP {exc.status_code}"
        ) from None
    except FalError as exc:
        raise MediaDownloadError(f"could not download {_short(url)}: {exc}") from None
    content_type = response.headers.get("content-type")
    return response.content, content_type.split(";")[0].strip() if content_type else None


def _short(url: str) -> str:
    # Media URLs can carry signatures in their query string; errors show the path only.
    return url.split("?", 1)[0]


class MediaStore:
    """A content-addressed directory of media files. Safe to share between processes."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, fetch: Fetcher | None = None):
        self.root = Path(root) if root is not None else default_cache_dir() / "media"
        self._fetch = fetch or _http_fetch

    def __repr__(self) -> str:
        return f"MediaStore({str(self.root)!r})"

    def describe(self) -> str:
        """Where the store is, as saved text shows it: by ``$FALNB_CACHE_DIR``, else under ~."""
        variable = os.environ.get(CACHE_ENV)
        if variable:
            folder = Path(variable).expanduser().absolute()
            if self.root.absolute().is_relative_to(folder):
                inside = self.root.absolute().relative_to(folder)
                return f"${CACHE_ENV}/{inside}" if str(inside) != "." else f"${CACHE_ENV}"
        return shown(self.root)

    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / sha256

    def _url_path(self, url: str) -> Path:
        return self.root / "urls" / sha256_hex(url.encode())

    def put(self, data: bytes) -> str:
        """Store ``data`` (if not already there) and return its sha256."""
        sha = sha256_hex(data)
        path = self.object_path(sha)
        if not path.exists() or sha256_hex(path.read_bytes()) != sha:
            atomic_write(path, data)
        return sha

    def known(self, url: str) -> MediaRef | None:
        """The object ``url`` was downloaded to, if the store has it (not verified)."""
        try:
            data = json.loads(self._url_path(url).read_text())
        except (OSError, ValueError):
            return None
        return MediaRef.from_dict({**data, "url": url})

    def fetch(
        self, url: str, *, content_type: str | None = None, offline: bool = False
    ) -> MediaRef:
        """Download ``url`` into the store, unless it was downloaded before; its :class:`MediaRef`.

        ``offline=True`` raises :class:`OfflineError` instead of downloading.
        """
        ref = self.known(url)
        if ref is not None and self.object_path(ref.sha256).exists():
            return ref
        if offline:
            raise OfflineError(f"{_short(url)} is not in the media store and record=none")
        data, served_type = self._fetch(url)
        sha = self.put(data)
        ref = MediaRef(
            url=url,
            sha256=sha,
            content_type=served_type or content_type or "application/octet-stream",
            size=len(data),
        )
        self.remember(ref)
        return ref

    def remember(self, ref: MediaRef) -> None:
        """Note that ``ref.url`` holds object ``ref.sha256`` (so it is never downloaded again)."""
        info = {"sha256": ref.sha256, "content_type": ref.content_type, "size": ref.size}
        atomic_write(self._url_path(ref.url), json.dumps(info, sort_keys=True).encode())

    def cached(self, sha256: str) -> tuple[bytes | None, str]:
        """``(bytes, "")`` when the store holds object ``sha256`` intact, else what is wrong."""
        try:
            data = self.object_path(sha256).read_bytes()
        except OSError:
            return None, "is not there"
        if sha256_hex(data) != sha256:
            return None, "does not match its sha256 (tampered with or truncated)"
        return data, ""

    def read(self, sha256: str, *, url: str | None = None, offline: bool = False) -> bytes:
        """The bytes of object ``sha256``, verified; fetched again from ``url`` if missing or bad.

        Raises :class:`MediaIntegrityError` when the object is damaged or missing and ``url`` is
        absent or no longer serves the same content (:class:`OfflineError` when ``offline``).
        """
        path = self.object_path(sha256)
        data, problem = self.cached(sha256)
        if data is not None:
            return data
        if url is None:
            raise MediaIntegrityError(f"media {sha256[:12]}… {problem} and has no URL to fetch")
        if offline:
            raise OfflineError(
                f"media {sha256[:12]}… {problem}; fetching it again from {_short(url)} needs "
                "the network, and record=none"
            )
        try:
            fresh, _ = self._fetch(url)
        except FalError as exc:
            raise MediaIntegrityError(f"media {sha256[:12]}… {problem}, and {exc}") from None
        if sha256_hex(fresh) != sha256:
            raise MediaIntegrityError(
                f"media {sha256[:12]}… {problem}, and {_short(url)} now serves different content"
            )
        atomic_write(path, fresh)
        return fresh

    def path(self, sha256: str, *, url: str | None = None, offline: bool = False) -> Path:
        """The verified file of object ``sha256`` (fetched again if needed), for viewers."""
        self.read(sha256, url=url, offline=offline)
        return self.object_path(sha256)

    def objects(self) -> list[str]:
        """Every object's sha256."""
        base = self.root / "objects"
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.glob("*/*") if not p.name.startswith("."))

    def gc(self, keep: Iterable[str]) -> list[str]:
        """Delete every object not in ``keep`` (and URL notes pointing at them); the deleted."""
        kept = set(keep)
        removed = [sha for sha in self.objects() if sha not in kept]
        for sha in removed:
            with contextlib.suppress(FileNotFoundError):
                self.object_path(sha).unlink()
        urls = self.root / "urls"
        if urls.is_dir():
            for note in urls.iterdir():
                target: str | None
                try:
                    target = json.loads(note.read_text())["sha256"]
                except (OSError, ValueError, KeyError, TypeError):
                    target = None
                if target not in kept:
                    with contextlib.suppress(FileNotFoundError):
                        note.unlink()
        return removed

    # Lock files that use this store, so gc knows whose media to keep.

    def _locks_file(self) -> Path:
        return self.root / "locks.txt"

    def register_lock(self, lock_path: str | os.PathLike[str]) -> None:
        """Remember that ``lock_path`` refers to media in this store."""
        entry = str(Path(lock_path).resolve())
        if entry in self.registered_locks(existing_only=False):
            return
        self.root.mkdir(parents=True, exist_ok=True)
        from filelock import FileLock  # only a writer needs it: not at import time

        with FileLock(str(self.root / ".locks.txt.flock")):
            current = self.registered_locks(existing_only=False)
            if entry not in current:
                text = "".join(f"{p}\n" for p in sorted({*current, entry}))
                atomic_write(self._locks_file(), text.encode())

    def registered_locks(self, *, existing_only: bool = True) -> list[str]:
        """Lock files registered with :meth:`register_lock` (those still on disk by default)."""
        try:
            lines = self._locks_file().read_text().splitlines()
        except OSError:
            return []
        paths = [line for line in lines if line.strip()]
        return [p for p in paths if Path(p).exists()] if existing_only else paths

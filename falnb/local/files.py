"""The local server's CDN store: uploaded and generated files, served by unguessable URL.

Files live under ``root/<id>/<name>``. The id is random (``secrets.token_urlsafe``), the name
is reduced to a safe basename, so no uploaded file name can escape the store.
"""

from __future__ import annotations

import json
import mimetypes
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FileStore", "StoredFile", "safe_file_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def safe_file_name(name: str | None, content_type: str | None = None) -> str:
    """A basename with only ``[A-Za-z0-9._-]``, never empty, never ``.``/``..``."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip("._")[:120]
    if not base:
        ext = mimetypes.guess_extension(content_type or "") or ".bin"
        base = f"file{ext}"
    return base


@dataclass(frozen=True)
class StoredFile:
    file_id: str
    file_name: str
    content_type: str
    size: int
    path: Path

    def url(self, cdn_base: str) -> str:
        return f"{cdn_base.rstrip('/')}/files/{self.file_id}/{self.file_name}"

    def as_file(self, cdn_base: str) -> dict[str, object]:
        """fal's ``File`` object for this file."""
        return {
            "url": self.url(cdn_base),
            "content_type": self.content_type,
            "file_name": self.file_name,
            "file_size": self.size,
        }


class FileStore:
    """A directory of files addressed by random id; safe for concurrent writers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def put(self, data: bytes, content_type: str, file_name: str | None = None) -> StoredFile:
        content_type = content_type or "application/octet-stream"
        name = safe_file_name(file_name, content_type)
        file_id = secrets.token_urlsafe(16)
        folder = self.root / file_id
        folder.mkdir(parents=True)
        path = folder / name
        path.write_bytes(data)
        (folder / ".meta.json").write_text(json.dumps({"content_type": content_type}))
        return StoredFile(file_id, name, content_type, len(data), path)

    def reserve(self, content_type: str, file_name: str | None = None) -> StoredFile:
        """An empty entry to be filled later by :meth:`fill` (signed PUT uploads)."""
        return self.put(b"", content_type, file_name)

    def fill(self, file_id: str, file_name: str, data: bytes) -> StoredFile | None:
        stored = self.get(file_id, file_name)
        if stored is None:
            return None
        with self._lock:
            stored.path.write_bytes(data)
        return self.get(file_id, file_name)

    def get(self, file_id: str, file_name: str) -> StoredFile | None:
        """The stored file, or None; ids and names that could escape the store are refused."""
        if not _ID.match(file_id) or safe_file_name(file_name) != file_name:
            return None
        folder = self.root / file_id
        path = folder / file_name
        try:
            meta = json.loads((folder / ".meta.json").read_text())
            size = path.stat().st_size
        except (OSError, ValueError):
            return None
        return StoredFile(file_id, file_name, str(meta["content_type"]), size, path)

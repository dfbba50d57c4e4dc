"""The local server's CDN store: uploaded and generated files, served by unguessable URL.

Files live under ``root/<id>/<name>``. The id is random (``secrets.token_urlsafe``), the name
is reduced to a safe basename, so no uploaded file name can escape the store. A file reserved
for a later upload (signed PUT, multipart) is *pending*: it is not served until it is filled.
Multipart parts wait under ``root/<id>/.parts/<upload_id>/<n>`` until the upload completes.

Each file keeps the :class:`Lifecycle` it was stored with (fal's ``initial_acl`` default and
``expiration_duration_seconds``): a file past its expiry is gone, and one whose ACL is not
``allow`` is served only through a signed URL (:mod:`falnb.local.storage`).
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["ACLDecision", "FileStore", "Lifecycle", "StoredFile", "safe_file_name"]

ACLDecision = Literal["allow", "forbid", "hide"]
ACL_DECISIONS: tuple[ACLDecision, ...] = ("allow", "forbid", "hide")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_PART_NUMBER = 10_000


def safe_file_name(name: str | None, content_type: str | None = None) -> str:
    """A basename with only ``[A-Za-z0-9._-]``, never empty, never ``.``/``..``."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip("._")[:120]
    if not base:
        ext = mimetypes.guess_extension(content_type or "") or ".bin"
        base = f"file{ext}"
    return base


@dataclass(frozen=True)
class Lifecycle:
    """How long a file lives and who may read it: fal's lifecycle preference, parsed.

    ``acl`` is the ``initial_acl`` default (rules name fal users, which a local server has
    none of, so they are accepted and not applied); ``expires_in`` is seconds, None for never.
    """

    acl: ACLDecision = "allow"
    expires_in: int | None = None

    @classmethod
    def from_json(cls, value: Any, fallback: Lifecycle) -> Lifecycle:
        """The lifecycle a ``{"expiration_duration_seconds", "initial_acl"}`` object asks for;
        what it leaves out comes from ``fallback``. Raises ValueError saying what is wrong."""
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object")  # noqa: TRY004 - a bad value, answered 422
        expires_in = fallback.expires_in
        if "expiration_duration_seconds" in value:
            expires_in = value["expiration_duration_seconds"]
            if expires_in is not None and (
                isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in < 1
            ):
                raise ValueError("expiration_duration_seconds must be a positive integer or null")
        acl = fallback.acl
        initial = value.get("initial_acl")
        if initial is not None:
            default = initial.get("default") if isinstance(initial, dict) else initial
            if default is not None and default not in ACL_DECISIONS:
                raise ValueError(f"initial_acl.default must be one of {', '.join(ACL_DECISIONS)}")
            acl = default or acl
        return cls(acl, expires_in)


def valid_id(value: str) -> bool:
    """Whether ``value`` has the shape of a store id (file id or multipart upload id)."""
    return bool(_ID.match(value))


@dataclass(frozen=True)
class StoredFile:
    file_id: str
    file_name: str
    content_type: str
    size: int
    path: Path
    acl: ACLDecision = "allow"

    @property
    def restricted(self) -> bool:
        """Whether an anonymous GET is refused (only a signed URL reads the file)."""
        return self.acl != "allow"

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

    def __init__(self, root: Path, defaults: Lifecycle | None = None) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        #: The account-wide lifecycle (fal's ``/v1/storage/settings``) of files stored
        #: without a lifecycle preference of their own.
        self.defaults = defaults or Lifecycle()

    def put(
        self,
        data: bytes,
        content_type: str,
        file_name: str | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> StoredFile:
        return self._create(data, content_type, file_name, lifecycle, pending=False)

    def reserve(
        self, content_type: str, file_name: str | None = None, lifecycle: Lifecycle | None = None
    ) -> StoredFile:
        """A pending entry, not served until :meth:`fill` or :meth:`complete_multipart`."""
        return self._create(b"", content_type, file_name, lifecycle, pending=True)

    def _create(
        self,
        data: bytes,
        content_type: str,
        file_name: str | None,
        lifecycle: Lifecycle | None,
        *,
        pending: bool,
    ) -> StoredFile:
        content_type = content_type or "application/octet-stream"
        name = safe_file_name(file_name, content_type)
        file_id = secrets.token_urlsafe(16)
        folder = self.root / file_id
        folder.mkdir(parents=True)
        path = folder / name
        path.write_bytes(data)
        life = lifecycle or self.defaults
        expires_at = None if life.expires_in is None else time.time() + life.expires_in
        meta = {"content_type": content_type, "acl": life.acl, "expires_at": expires_at}
        self._write_meta(folder, meta, pending=pending)
        return StoredFile(file_id, name, content_type, len(data), path, life.acl)

    @staticmethod
    def _read_meta(folder: Path) -> dict[str, Any]:
        meta = json.loads((folder / ".meta.json").read_text())
        return meta if isinstance(meta, dict) else {}

    @staticmethod
    def _write_meta(folder: Path, meta: dict[str, Any], *, pending: bool) -> None:
        (folder / ".meta.json").write_text(json.dumps({**meta, "pending": pending}))

    def fill(
        self, file_id: str, file_name: str, data: bytes, content_type: str | None = None
    ) -> StoredFile | None:
        """Write the bytes of a pending (or existing) entry and make it servable.

        ``content_type`` replaces the reserved one only when that was the generic default.
        """
        stored = self.get(file_id, file_name, include_pending=True)
        if stored is None:
            return None
        kept = stored.content_type
        if content_type and kept == "application/octet-stream":
            kept = content_type
        with self._lock:
            stored.path.write_bytes(data)
            meta = self._read_meta(stored.path.parent)
            self._write_meta(stored.path.parent, {**meta, "content_type": kept}, pending=False)
        return self.get(file_id, file_name)

    def get(
        self, file_id: str, file_name: str, *, include_pending: bool = False
    ) -> StoredFile | None:
        """The stored file, or None; ids and names that could escape the store are refused,
        and a file past its expiry is gone (deleted on first sight)."""
        if not valid_id(file_id) or safe_file_name(file_name) != file_name:
            return None
        folder = self.root / file_id
        path = folder / file_name
        try:
            meta = self._read_meta(folder)
            size = path.stat().st_size
        except (OSError, ValueError):
            return None
        if meta.get("pending") and not include_pending:
            return None
        expires_at = meta.get("expires_at")
        if isinstance(expires_at, (int, float)) and expires_at <= time.time():
            shutil.rmtree(folder, ignore_errors=True)
            return None
        acl: ACLDecision = meta["acl"] if meta.get("acl") in ACL_DECISIONS else "allow"
        return StoredFile(file_id, file_name, str(meta["content_type"]), size, path, acl)

    # Multipart uploads: parts are kept apart, then concatenated in part-number order.

    def begin_multipart(self, file_id: str, file_name: str) -> str | None:
        """Start a multipart upload into a pending entry; returns the upload id."""
        stored = self.get(file_id, file_name, include_pending=True)
        if stored is None:
            return None
        upload_id = secrets.token_urlsafe(16)
        (stored.path.parent / ".parts" / upload_id).mkdir(parents=True)
        return upload_id

    def _parts_dir(self, file_id: str, file_name: str, upload_id: str) -> Path | None:
        if not valid_id(upload_id) or self.get(file_id, file_name, include_pending=True) is None:
            return None
        folder = self.root / file_id / ".parts" / upload_id
        return folder if folder.is_dir() else None

    def put_part(
        self, file_id: str, file_name: str, upload_id: str, part_number: int, data: bytes
    ) -> str | None:
        """Store one part (1-based); returns its etag, or None for an unknown upload."""
        folder = self._parts_dir(file_id, file_name, upload_id)
        if folder is None or not 1 <= part_number <= MAX_PART_NUMBER:
            return None
        (folder / str(part_number)).write_bytes(data)
        return hashlib.sha256(data).hexdigest()[:32]

    def complete_multipart(
        self,
        file_id: str,
        file_name: str,
        upload_id: str,
        parts: Iterable[tuple[int, str]],
    ) -> StoredFile | None:
        """Join the listed ``(part_number, etag)`` parts; None if any is missing or differs."""
        folder = self._parts_dir(file_id, file_name, upload_id)
        if folder is None:
            return None
        chunks: list[bytes] = []
        for number, etag in sorted(parts):
            part = folder / str(number)
            if not 1 <= number <= MAX_PART_NUMBER or not part.is_file():
                return None
            data = part.read_bytes()
            if hashlib.sha256(data).hexdigest()[:32] != etag.strip('"'):
                return None
            chunks.append(data)
        if not chunks:
            return None
        stored = self.fill(file_id, file_name, b"".join(chunks))
        shutil.rmtree(folder, ignore_errors=True)
        return stored

"""The errors the lock, the media store and replay raise.

Each is one readable line naming the path or the call and the fix::

    FalError                       (falnb.client.errors)
     ├── LockFileError             the lock file cannot be read
     ├── LockWriteError            the lock file cannot be written
     ├── MediaIntegrityError       a stored file does not match its sha256
     ├── MediaDownloadError        an output file could not be downloaded
     ├── OfflineError              the store would need the network in mode ``none``
     └── ReplayMissError           mode ``none`` and no recorded result for the call
    ArgumentError (ValueError, TypeError)   an argument that cannot be fingerprinted
"""

from __future__ import annotations

from falnb.client.errors import FalError

__all__ = [
    "ArgumentError",
    "LockFileError",
    "LockWriteError",
    "MediaDownloadError",
    "MediaIntegrityError",
    "OfflineError",
    "ReplayMissError",
]


class LockFileError(FalError):
    """The lock file cannot be read (e.g. a merge conflict left it invalid)."""


class LockWriteError(FalError):
    """The lock file cannot be written: a read-only directory, a full disk, a directory there.

    The message is one line naming the path, the reason and the fix.
    """


class MediaIntegrityError(FalError):
    """A stored media file does not match its sha256 and cannot be fetched again."""


class MediaDownloadError(FalError):
    """An output file could not be downloaded (after falnb's retries)."""


class OfflineError(FalError):
    """The store would need the network, but the record mode is ``none``."""


class ReplayMissError(FalError):
    """``record=none`` and the lock has no completed result for this call."""


class ArgumentError(ValueError, TypeError):
    """An argument that cannot be fingerprinted (not JSON, or an unreadable file); names it."""

"""The errors of falnb's shared layer, which ``client/``, ``local/`` and the settings all see::

    FalError                     the base of every error falnb raises about a fal request
     └── MissingCredentialsError no key for a target that needs one (raised by the settings)

The client's errors (:mod:`falnb.client.errors`) and the lock's (:mod:`falnb.repro.errors`)
hang below :class:`FalError`; they live in their own layers.
"""

from __future__ import annotations

__all__ = ["FalError", "MissingCredentialsError"]


class FalError(Exception):
    """Base class of every error falnb raises about a fal request."""


class MissingCredentialsError(FalError):
    """No key is configured for a target that needs one."""

"""Storage settings for the files an upload or a request creates: expiry and initial ACL.

The shape is fal-client's (``StorageSettings(expires_in, initial_acl)``), sent as the JSON
header ``X-Fal-Object-Lifecycle-Preference`` (fal-platform-apis.md, "Data retention")::

    StorageSettings(expires_in="1d", initial_acl="forbid")
    # {"expiration_duration_seconds": 86400, "initial_acl": {"default": "forbid"}}

``"immediate"`` means 60 s (fal treats 0 as "never"); ``"never"`` sends no expiry, leaving
the account's default. A restricted file (``forbid``/``hide``) is then read through a signed
URL, which falnb's downloads ask for on their own when a key is configured.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from falnb._protocol import LIFECYCLE_HEADERS

__all__ = [
    "ObjectExpiration",
    "StorageACL",
    "StorageACLDecision",
    "StorageACLRule",
    "StorageSettings",
]

StorageACLDecision = Literal["allow", "forbid", "hide"]
ObjectExpiration = Literal["never", "immediate", "1h", "1d", "7d", "30d", "1y"] | int

_DECISIONS = ("allow", "forbid", "hide")
_EXPIRATIONS: dict[str, int | None] = {
    "never": None,
    "immediate": 60,
    "1h": 3600,
    "1d": 86400,
    "7d": 604800,
    "30d": 2592000,
    "1y": 31536000,
}


def _decision(value: object, what: str) -> None:
    if value not in _DECISIONS:
        raise ValueError(f"{what} must be one of {', '.join(_DECISIONS)}, not {value!r}")


@dataclass(frozen=True)
class StorageACLRule:
    """One fal user's access: ``decision`` for ``user``."""

    user: str
    decision: StorageACLDecision

    def __post_init__(self) -> None:
        _decision(self.decision, "a rule's decision")


@dataclass(frozen=True)
class StorageACL:
    """Who may read the files: ``default`` for everyone, ``rules`` for named users."""

    default: StorageACLDecision | None = None
    rules: Sequence[StorageACLRule] | None = None

    def __post_init__(self) -> None:
        if self.default is not None:
            _decision(self.default, "initial_acl default")


@dataclass(frozen=True)
class StorageSettings:
    """Expiry and ACL of the files an upload or a request creates.

    ``expires_in``: ``"never"``, ``"immediate"`` (60 s), ``"1h"``, ``"1d"``, ``"7d"``,
    ``"30d"``, ``"1y"`` or a positive number of seconds. ``initial_acl``: a
    :class:`StorageACL`, or its default decision alone (``"allow"``, ``"forbid"``, ``"hide"``).
    """

    expires_in: ObjectExpiration | None = None
    initial_acl: StorageACL | StorageACLDecision | None = None

    def __post_init__(self) -> None:
        self.expiration_seconds()  # raises for a value fal would refuse
        if isinstance(self.initial_acl, str):
            _decision(self.initial_acl, "initial_acl")
        elif self.initial_acl is not None and not isinstance(self.initial_acl, StorageACL):
            raise TypeError(
                f"initial_acl must be a StorageACL or a decision string, "
                f"not {type(self.initial_acl).__name__}"
            )

    def expiration_seconds(self) -> int | None:
        """``expires_in`` in seconds (None: no expiry is asked for)."""
        value = self.expires_in
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError(f"expires_in must be a duration name or seconds, not {value!r}")
        if isinstance(value, int):
            if value <= 0:
                raise ValueError(f"expires_in must be a positive number of seconds, not {value}")
            return value
        if value not in _EXPIRATIONS:
            raise ValueError(
                f"expires_in must be one of {', '.join(_EXPIRATIONS)} or seconds, not {value!r}"
            )
        return _EXPIRATIONS[value]

    def payload(self) -> dict[str, Any] | None:
        """The header's JSON value, or None when there is nothing to ask for."""
        out: dict[str, Any] = {}
        seconds = self.expiration_seconds()
        if seconds is not None:
            out["expiration_duration_seconds"] = seconds
        acl = self.initial_acl
        if isinstance(acl, str):
            acl = StorageACL(default=acl)
        if acl is not None:
            rules: dict[str, Any] = {}
            if acl.default is not None:
                rules["default"] = acl.default
            if acl.rules:
                rules["rules"] = [{"user": r.user, "decision": r.decision} for r in acl.rules]
            if rules:
                out["initial_acl"] = rules
        return out or None


def lifecycle_headers(settings: StorageSettings | None, *, upload: bool = False) -> dict[str, str]:
    """The headers that carry ``settings``: ``X-Fal-Object-Lifecycle-Preference`` on a request,
    and ``X-Fal-Object-Lifecycle`` too on an upload (fal's CDN reads that name)."""
    if settings is not None and not isinstance(settings, StorageSettings):
        raise TypeError(
            f"storage_settings must be a falnb.StorageSettings, not {type(settings).__name__}"
        )
    payload = settings.payload() if settings is not None else None
    if payload is None:
        return {}
    value = json.dumps(payload)
    names = LIFECYCLE_HEADERS if upload else LIFECYCLE_HEADERS[:1]
    return dict.fromkeys(names, value)

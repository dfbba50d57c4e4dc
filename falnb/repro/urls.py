"""Media URLs as falnb saves them: a loopback server's URLs lose their host and port.

A file served by the embedded server or ``falnb serve`` has a URL like
``http://127.0.0.1:40371/_cdn/files/<id>/image_0.jpg``: valid while that server runs, on that
machine. Saved into a lock or a notebook it would make every run differ (a new port each
time) and would point at nothing on the next machine. falnb records such a URL as
``falnb-local:/_cdn/files/<id>/image_0.jpg`` instead; the file itself is found by its sha256
(in the cache or ``falnb-media/``), never through that URL. Cloud URLs (fal.media) are kept.

Example::

    portable_url("http://127.0.0.1:40371/_cdn/files/ab/x.png")  # 'falnb-local:/_cdn/files/ab/x.png'
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

__all__ = ["LOCAL_SCHEME", "is_fetchable", "portable", "portable_url", "scrub"]

LOCAL_SCHEME = "falnb-local:"

_LOOPBACK_ORIGIN = re.compile(
    r"(?:https?|wss?)://(?:127(?:\.\d{1,3}){3}|localhost|\[::1\]|0\.0\.0\.0)(?::\d+)?(?=[/\s?#]|$)"
)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def portable_url(url: str) -> str:
    """``url`` as it is saved: a loopback server's URL without its host and port."""
    if not url.startswith(("http://", "https://")):
        return url
    parts = urlsplit(url)
    if not _is_loopback(parts.hostname or ""):
        return url
    query = f"?{parts.query}" if parts.query else ""
    return f"{LOCAL_SCHEME}{parts.path or '/'}{query}"


def is_fetchable(url: str) -> bool:
    """Whether ``url`` can be downloaded at all (a ``falnb-local:`` URL cannot)."""
    return url.startswith(("http://", "https://"))


def portable(value: Any) -> Any:
    """``value`` (a result's JSON) with every string that is a loopback URL made portable."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v) for v in value]
    if isinstance(value, str) and value.startswith(("http://", "https://")) and " " not in value:
        return portable_url(value)
    return value


def scrub(text: str) -> str:
    """``text`` (an error message) with every loopback server's origin replaced by
    ``falnb-local:``, so the port of this run's server stays out of saved outputs."""
    return _LOOPBACK_ORIGIN.sub(LOCAL_SCHEME, text)

"""Endpoints the local server ships with, and the process-wide default registry."""

from __future__ import annotations

import threading

from falnb.local.registry import Endpoint, Registry

__all__ = ["builtin_endpoints", "default_registry"]

_lock = threading.Lock()
_default: Registry | None = None


def builtin_endpoints() -> list[Endpoint]:
    """Fresh instances of every built-in endpoint (owner ``local``)."""
    from falnb.local.apps import basic, media, realtime_echo  # keep imports lazy

    return [*basic.ENDPOINTS, *realtime_echo.ENDPOINTS, *media.ENDPOINTS]


def default_registry() -> Registry:
    """The process's shared registry: the built-ins plus apps added with ``falnb.local.app``.

    A :class:`~falnb.local.LocalServer` made without ``registry=`` serves this one, and looks
    endpoints up per request, so an app registered after the server started is served at once.
    """
    global _default  # noqa: PLW0603 - one shared registry per process is the point
    with _lock:
        if _default is None:
            _default = Registry(builtin_endpoints())
        return _default

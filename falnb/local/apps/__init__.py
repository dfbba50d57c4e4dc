"""Endpoints the local server ships with."""

from __future__ import annotations

from falnb.local.registry import Endpoint

__all__ = ["builtin_endpoints"]


def builtin_endpoints() -> list[Endpoint]:
    """Fresh instances of every built-in endpoint (owner ``local``)."""
    from falnb.local.apps import basic, media, realtime_echo  # noqa: PLC0415 - keep imports lazy

    return [*basic.ENDPOINTS, *realtime_echo.ENDPOINTS, *media.ENDPOINTS]

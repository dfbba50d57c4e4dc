"""falnb's embedded fal-compatible server and the pieces apps are written with.

Example::

    from falnb.local import LocalServer

    with LocalServer() as server:
        print(server.base_url, server.target)

Serve a function of your own (on the embedded server and ``falnb serve`` alike)::

    import falnb.local

    @falnb.local.app("me/double")
    def double(arguments: dict) -> dict:
        return {"value": arguments["value"] * 2}
"""

from __future__ import annotations

from falnb.local.apperror import AppError, validation_error
from falnb.local.registry import Context, Endpoint, Registry
from falnb.local.server import LocalServer
from falnb.local.userapps import app, unregister

__all__ = [
    "AppError",
    "Context",
    "Endpoint",
    "LocalServer",
    "Registry",
    "app",
    "unregister",
    "validation_error",
]

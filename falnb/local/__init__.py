"""falnb's embedded fal-compatible server and the pieces apps are written with.

Example::

    from falnb.local import LocalServer

    with LocalServer() as server:
        print(server.base_url, server.target)
"""

from __future__ import annotations

from falnb.local.apperror import AppError, validation_error
from falnb.local.registry import Context, Endpoint, Registry
from falnb.local.server import LocalServer

__all__ = ["AppError", "Context", "Endpoint", "LocalServer", "Registry", "validation_error"]

"""The default target: fal's cloud with a key, else an embedded local server.

With no key configured (or ``FALNB_TARGET=local``), the first request starts one falnb local
server per process, on a free loopback port with a random key, says so once on stderr, and
stops it when the interpreter exits. ``FALNB_TARGET=fal`` always targets the cloud; without a
key its requests raise MissingCredentialsError.
"""

from __future__ import annotations

import atexit
import sys
import threading
from typing import TYPE_CHECKING

from falnb._settings import Target, in_colab, key_from_env, login_token_present, target_from_env

if TYPE_CHECKING:
    from falnb.local.server import LocalServer

__all__ = ["announce", "default_target", "embedded_server"]

_lock = threading.Lock()
_server: LocalServer | None = None
_announced = False


def default_target() -> Target:
    """The target requests go to when none is given (see the module docstring)."""
    target = target_from_env()
    if target is not None:
        return target
    return embedded_server().target


def embedded_server() -> LocalServer:
    """The process's embedded local server, started on first call (thread-safe, once)."""
    global _server  # noqa: PLW0603 - one embedded server per process is the point
    with _lock:
        if _server is None:
            from falnb.local.server import LocalServer  # heavy, only when needed

            server = LocalServer(host="127.0.0.1", port=0)
            server.start()
            atexit.register(_stop, server)
            _server = server
        started = _server
    announce()
    return started


def announce() -> None:
    """Say once per process that calls go to the embedded local server (on stderr)."""
    global _announced  # noqa: PLW0603 - once per process
    with _lock:
        if _announced:
            return
        _announced = True
    print(_announcement(), file=sys.stderr, flush=True)  # noqa: T201


def _announcement() -> str:
    # One line, free of ports and paths: in a notebook it is saved in the first cell's output.
    if key_from_env() is None:
        return (
            "falnb: no FAL_KEY set; using the embedded local server on a loopback port "
            f"(set FAL_KEY for fal's cloud){_cloud_intended()}"
        )
    return (
        "falnb: FALNB_TARGET=local; using the embedded local server on a loopback port "
        "(unset FALNB_TARGET for fal's cloud)"
    )


def _cloud_intended() -> str:
    """Why the user may have meant fal's cloud, said plainly, or nothing."""
    reasons = []
    if in_colab():
        reasons.append(
            "in Colab, add a FAL_KEY secret and grant this notebook access to it, "
            "then restart the session"
        )
    if login_token_present():
        reasons.append(
            "a `fal auth login` token was found, but falnb does not use it: set FAL_KEY instead"
        )
    return "".join(f"; {reason}" for reason in reasons)


def _stop(server: LocalServer) -> None:
    global _server  # noqa: PLW0603
    try:
        server.stop()
    finally:
        with _lock:
            if _server is server:
                _server = None

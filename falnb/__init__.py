"""falnb: fal.ai's generative-model API, native in Jupyter.

The module-level functions mirror fal_client's, on falnb's default clients: fal's cloud when
a key is configured, else an embedded local server started on first use::

    import falnb

    result = falnb.subscribe("fal-ai/flux/dev", {"prompt": "a red fox"}, with_logs=True)
    handle = falnb.submit("fal-ai/flux/dev", {"prompt": "a red fox"})
    result = await falnb.subscribe_async("fal-ai/flux/dev", {"prompt": "a red fox"})

Importing falnb is light: no server, no event loop and no network until the first request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from falnb import _embedded
from falnb._settings import Key, Target
from falnb.client import (
    AsyncClient,
    AsyncRequestHandle,
    AsyncStream,
    Completed,
    ConnectionFailedError,
    FalError,
    HTTPError,
    InProgress,
    MissingCredentialsError,
    Queued,
    RateLimitedError,
    RealtimeError,
    RequestCancelledError,
    RequestHandle,
    RequestPendingError,
    RequestTimeoutError,
    RetryPolicy,
    Status,
    StorageACL,
    StorageACLRule,
    StorageSettings,
    Stream,
    StreamError,
    SyncClient,
    ValidationError,
    WebhookVerificationError,
)
from falnb.client._client import LoopRealtimeConnection, set_default_target

# A client built without a target uses fal's cloud with a key, else the embedded local server;
# the choice is made here, above the client layer, which never starts a server itself.
set_default_target(_embedded.default_target)

if TYPE_CHECKING:
    from falnb import local, widgets
    from falnb._sweep_api import map, map_async, sweep, sweep_async
    from falnb._version import __version__
    from falnb.client.realtime import RealtimeConnection
    from falnb.client.webhooks import verify_webhook
    from falnb.result import MediaFile, Result
    from falnb.seedchecks import SeedCheck, seedcheck
    from falnb.session import Call, Job, Session, default_session
    from falnb.sweeps import Failed, SweepResults
    from falnb.widgets.compare import compare
    from falnb.widgets.form import form

__all__ = [
    "AsyncClient",
    "AsyncRequestHandle",
    "AsyncStream",
    "Call",
    "Completed",
    "ConnectionFailedError",
    "Failed",
    "FalError",
    "HTTPError",
    "InProgress",
    "Job",
    "Key",
    "LoopRealtimeConnection",
    "MediaFile",
    "MissingCredentialsError",
    "Queued",
    "RateLimitedError",
    "RealtimeConnection",
    "RealtimeError",
    "RequestCancelledError",
    "RequestHandle",
    "RequestPendingError",
    "RequestTimeoutError",
    "Result",
    "RetryPolicy",
    "SeedCheck",
    "Session",
    "Status",
    "StorageACL",
    "StorageACLRule",
    "StorageSettings",
    "Stream",
    "StreamError",
    "SweepResults",
    "SyncClient",
    "Target",
    "ValidationError",
    "WebhookVerificationError",
    "__version__",
    "cancel",
    "cancel_async",
    "compare",
    "default_async_client",
    "default_client",
    "default_session",
    "form",
    "get_handle",
    "get_handle_async",
    "load_ipython_extension",
    "local",
    "map",
    "map_async",
    "realtime",
    "realtime_async",
    "result",
    "result_async",
    "run",
    "run_async",
    "seedcheck",
    "status",
    "status_async",
    "stream",
    "stream_async",
    "submit",
    "submit_async",
    "subscribe",
    "subscribe_async",
    "sweep",
    "sweep_async",
    "upload",
    "upload_async",
    "upload_file",
    "upload_file_async",
    "upload_image",
    "upload_image_async",
    "usage",
    "verify_webhook",
    "widgets",
]

# The default clients cost nothing to create: their target (and with it the embedded server),
# event loop and connection pool are all resolved on the first request.
_async_client = AsyncClient()
_sync_client = SyncClient.wrapping(_async_client)


def default_client() -> SyncClient:
    """The SyncClient behind ``falnb.run``, ``falnb.subscribe`` and the other functions."""
    return _sync_client


def default_async_client() -> AsyncClient:
    """The AsyncClient behind ``falnb.run_async`` and the other ``*_async`` functions."""
    return _async_client


run = _sync_client.run
submit = _sync_client.submit
subscribe = _sync_client.subscribe
status = _sync_client.status
result = _sync_client.result
cancel = _sync_client.cancel
get_handle = _sync_client.get_handle
stream = _sync_client.stream
upload = _sync_client.upload
upload_file = _sync_client.upload_file
upload_image = _sync_client.upload_image
realtime = _sync_client.realtime

run_async = _async_client.run
submit_async = _async_client.submit
subscribe_async = _async_client.subscribe
status_async = _async_client.status
result_async = _async_client.result
cancel_async = _async_client.cancel
get_handle_async = _async_client.get_handle
stream_async = _async_client.stream
upload_async = _async_client.upload
upload_file_async = _async_client.upload_file
upload_image_async = _async_client.upload_image
realtime_async = _async_client.realtime


#: Names loaded on first use, so ``import falnb`` stays light (no cryptography, PIL,
#: IPython or server code until asked for), by the module that defines them.
_LAZY_FROM = {
    "falnb.session": ("Call", "Job", "Session", "default_session", "usage"),
    "falnb.result": ("MediaFile", "Result"),
    "falnb.sweeps": ("Failed", "SweepResults"),
    "falnb._sweep_api": ("map", "map_async", "sweep", "sweep_async"),
    "falnb.seedchecks": ("SeedCheck", "seedcheck"),
    "falnb.client.realtime": ("RealtimeConnection",),
    "falnb.client.webhooks": ("verify_webhook",),
    "falnb.widgets.compare": ("compare",),
    "falnb.widgets.form": ("form",),
    # The version comes from the package metadata: importlib.metadata costs ~50 ms to load.
    "falnb._version": ("__version__",),
}
_LAZY = {name: module for module, names in _LAZY_FROM.items() for name in names}
#: Subpackages loaded on first use: ``falnb.local``, ``falnb.widgets``.
_LAZY_MODULES = ("local", "widgets")


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f"falnb.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'falnb' has no attribute {name!r}")


# --- IPython extension -----------------------------------------------------------------------
# Nothing above imports IPython; the magics load only inside a running IPython shell.


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext falnb``: register the ``%%fal`` / ``%fal`` magics."""
    from falnb.magics import load_ipython_extension as load

    load(ipython)


def _register_in_running_shell() -> None:
    from falnb._environment import ipython_shell

    shell = ipython_shell()
    if shell is not None and "fal" not in shell.magics_manager.magics.get("cell", {}):
        load_ipython_extension(shell)


_register_in_running_shell()

"""The local fal-compatible server: one Starlette app on one loopback port, run by uvicorn.

URL layout (fal's roles as path prefixes, matching :meth:`falnb._settings.Target.local`):

* RUN ``POST /{owner}/{alias}[/path]``, stream ``POST /{id}/stream``
* QUEUE under ``/_queue/`` (submit, status, status stream, result, cancel)
* REST under ``/_rest/`` and CDN under ``/_cdn/`` (:mod:`falnb.local.storage`)
* realtime WebSocket ``/{id}/realtime`` (:mod:`falnb.local.realtime`)
* test hooks under ``/_falnb/`` (``health`` needs no key; ``journal``)

Example::

    with LocalServer() as server:
        httpx.post(f"{server.base_url}/local/echo", json={"x": 1},
                   headers={"Authorization": f"Key {server.key}"})
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp

from falnb._protocol import LOCAL_CDN, LOCAL_REST
from falnb._settings import Target
from falnb.local.apps import default_registry
from falnb.local.bodies import DEFAULT_MAX_BODY_BYTES
from falnb.local.faults import Faults
from falnb.local.files import FileStore
from falnb.local.gateway import gateway
from falnb.local.journal import Journal
from falnb.local.openapi import openapi_routes
from falnb.local.pricing import pricing_routes
from falnb.local.registry import Registry
from falnb.local.routes import routes
from falnb.local.state import ServerState
from falnb.local.storage import cdn_routes, rest_routes, storage_api_routes
from falnb.local.webhooks import WebhookSigner

__all__ = ["CLIENT_CLOSED", "KEEP_ALIVE", "LocalServer", "build_app"]

#: Seconds an idle keep-alive connection stays open on the server's side.
KEEP_ALIVE = 30
#: What the journal records for a request whose client left before its body arrived
#: (nginx's "client closed request"): nobody reads the answer.
CLIENT_CLOSED = 499


async def _client_gone(_request: Request, _exc: Exception) -> Response:
    """A client that hangs up mid-body (a cancelled upload part, a dropped network) is an
    ordinary event, not a server error: no traceback in the log, no 500 in the journal."""
    return Response(status_code=CLIENT_CLOSED)


def build_app(state: ServerState) -> ASGIApp:
    """The ASGI app for ``state``: the gateway in front of every route."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await state.jobs.start()
        try:
            yield
        finally:
            await state.jobs.stop()

    app = Starlette(
        routes=[
            Mount(
                LOCAL_REST,
                routes=[
                    *rest_routes(state),
                    *storage_api_routes(state),
                    *pricing_routes(state),
                    *openapi_routes(state),
                ],
            ),
            Mount(LOCAL_CDN, routes=cdn_routes(state)),
            *routes(state),
        ],
        lifespan=lifespan,
        exception_handlers={ClientDisconnect: _client_gone},
    )
    return gateway(app, state)


class LocalServer:
    """A fal-compatible server on loopback, in a daemon thread with its own event loop.

    ``key`` defaults to a random one; ``port=0`` picks a free port; files go to ``data_dir``
    (default: a temporary directory removed on :meth:`stop`). Without ``registry`` it serves
    the process's shared registry (built-ins plus ``falnb.local.app`` functions).
    ``faults=True`` (for tests) honours ``x-falnb-fault`` and :attr:`faults` rules on
    authenticated requests (:mod:`falnb.local.faults`); off, both are refused. JSON bodies of
    run, stream, queue and REST calls larger than ``max_body_bytes`` answer 413.
    """

    def __init__(
        self,
        *,
        key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: Path | None = None,
        concurrency: int = 2,
        registry: Registry | None = None,
        faults: bool = False,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if key is not None and not key.strip():
            raise ValueError("the server key must not be blank")
        self._tmp = tempfile.TemporaryDirectory(prefix="falnb-") if data_dir is None else None
        root = Path(self._tmp.name) if self._tmp is not None else Path(data_dir)  # type: ignore[arg-type]
        self.host = host
        self.state = ServerState(
            key=secrets.token_urlsafe(24) if key is None else key,
            registry=registry if registry is not None else default_registry(),
            files=FileStore(root / "files"),
            signer=WebhookSigner(),
            concurrency=concurrency,
            faults=Faults(enabled=faults),
            max_body_bytes=max_body_bytes,
        )
        self._socket = _bind(host, port)
        self.port: int = self._socket.getsockname()[1]
        url_host = f"[{host}]" if ":" in host else host
        self.state.base_url = f"http://{url_host}:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- the handy parts of the state ---------------------------------------------------

    @property
    def base_url(self) -> str:
        return self.state.base_url

    @property
    def key(self) -> str:
        return self.state.key

    @property
    def target(self) -> Target:
        """A :class:`~falnb._settings.Target` for falnb's client, key included."""
        return Target.local(self.base_url, self.key)

    @property
    def journal(self) -> Journal:
        return self.state.journal

    @property
    def faults(self) -> Faults:
        return self.state.faults

    @property
    def registry(self) -> Registry:
        return self.state.registry

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __repr__(self) -> str:
        return f"LocalServer({self.base_url!r}, running={self.running})"

    # -- lifecycle ----------------------------------------------------------------------

    def _uvicorn(self) -> uvicorn.Server:
        config = uvicorn.Config(
            build_app(self.state),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=1,
            # Longer than httpx's idle expiry (5 s), so a pooled connection is always dropped
            # by the client first: a server closing it while a request is sent on it would
            # fail that request (and a submit cannot be repeated safely).
            timeout_keep_alive=KEEP_ALIVE,
            ws_max_size=64 * 1024 * 1024,
            # Realtime frames are JPEG/PNG/msgpack'd media, already compressed: deflating each
            # one cost the server ~4 ms of CPU per 512x512 frame (and the browser an inflate)
            # for under 1% fewer bytes.
            ws_per_message_deflate=False,
        )
        return uvicorn.Server(config)

    def start(self, timeout: float = 15.0) -> LocalServer:
        """Serve in a daemon thread; returns once the server accepts connections."""
        if self.running:
            return self
        server = self._uvicorn()
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [self._socket]},
            name=f"falnb-server-{self.port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the falnb local server failed to start (see the log above)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the falnb local server did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (cancelling running requests) and remove the temporary data dir."""
        server, thread = self._server, self._thread
        if server is not None and thread is not None:
            loop = self.state.jobs.loop
            if loop is not None and not loop.is_closed():
                # End open streams first, so uvicorn's graceful shutdown has nothing to cut.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self.state.jobs.begin_close)
            server.should_exit = True
            thread.join(timeout)
            if thread.is_alive():
                server.force_exit = True
                thread.join(timeout)
        self._server = self._thread = None
        self._socket.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def serve_forever(self) -> None:
        """Serve in the foreground until Ctrl-C (for ``falnb serve``)."""
        server = self._uvicorn()
        try:
            server.run(sockets=[self._socket])
        finally:
            self._socket.close()
            if self._tmp is not None:
                self._tmp.cleanup()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on accepted sockets whose proto
    # says TCP, and without it every response waits ~40 ms on Nagle + delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock

"""Everything one local server instance holds: key, endpoints, stores, queue, journal, faults.

Route modules receive a :class:`ServerState` and read what they need from it; nothing is
global, so several servers can run in one process (tests do).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from falnb._protocol import local_urls
from falnb.local.auth import Auth
from falnb.local.bodies import DEFAULT_MAX_BODY_BYTES
from falnb.local.faults import Faults
from falnb.local.files import FileStore, Lifecycle
from falnb.local.jobs import JobManager
from falnb.local.journal import Journal
from falnb.local.registry import Context, LogLevel, Registry
from falnb.local.tokens import TokenStore
from falnb.local.webhooks import Webhooks, WebhookSigner

__all__ = ["ServerState"]


def _discard_log(message: str, level: LogLevel) -> None:
    """Direct runs have no status endpoint, so their logs go nowhere."""


@dataclass(eq=False)
class ServerState:
    """One server's state. URLs follow :meth:`falnb._settings.Target.local`."""

    key: str = field(repr=False)
    registry: Registry
    files: FileStore
    signer: WebhookSigner = field(repr=False)
    journal: Journal = field(default_factory=Journal, repr=False)
    faults: Faults = field(default_factory=Faults, repr=False)
    tokens: TokenStore = field(default_factory=TokenStore, repr=False)
    base_url: str = ""
    concurrency: int = 2
    #: Largest run, stream, queue or REST JSON body accepted (413 beyond).
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: Seconds between ``: ping`` comments on idle SSE streams.
    ping_interval: float = 5.0
    #: Seconds a realtime connection may sit without input (None: the realtime module's default).
    realtime_idle_timeout: float | None = None
    jobs: JobManager = field(init=False, repr=False)
    auth: Auth = field(init=False, repr=False)

    def __post_init__(self) -> None:
        webhooks = Webhooks(self.signer, self.journal)
        self.jobs = JobManager(
            self.make_context, lambda: self.queue_url, webhooks, concurrency=self.concurrency
        )
        self.auth = Auth(self.key, self.tokens)

    # The two URLs the server writes into its answers (``LocalServer.target`` has them all).
    @property
    def queue_url(self) -> str:
        return local_urls(self.base_url)["queue_url"]

    @property
    def cdn_url(self) -> str:
        return local_urls(self.base_url)["cdn_url"]

    def store(
        self,
        data: bytes,
        content_type: str,
        file_name: str | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> dict[str, Any]:
        """Put bytes in the CDN store; returns fal's ``File`` dict with a URL on this server."""
        return self.files.put(data, content_type, file_name, lifecycle).as_file(self.cdn_url)

    def make_context(
        self,
        request_id: str,
        endpoint_id: str,
        log_sink: Callable[[str, LogLevel], None] | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> Context:
        """A handler :class:`Context` whose ``store`` writes to this server's CDN store, with
        the request's ``lifecycle`` (as fal apps honour the request's lifecycle preference)."""

        def store(data: bytes, content_type: str, file_name: str | None = None) -> dict[str, Any]:
            return self.store(data, content_type, file_name, lifecycle)

        return Context(
            request_id=request_id,
            endpoint_id=endpoint_id,
            log_sink=log_sink or _discard_log,
            store_sink=store,
        )

"""falnb's defaults for talking to fal: timeouts, retries, reconnection and polling.

The local server's own (webhook delivery, realtime idling) are here too: one place for every
timeout and retry, whichever side of the wire it is on.

One home for each number, as httpx's ``_config.py`` is; the modules that use them import them
from here. Seconds throughout.
"""

from __future__ import annotations

import httpx

__all__ = [
    "BACKUP_CONNECT_TIMEOUT",
    "BACKUP_HOSTS",
    "CONNECT_TIMEOUT",
    "DEFAULT_RECONNECT",
    "DOWNLOAD_TIMEOUT",
    "JWKS_TIMEOUT",
    "LOCAL_REALTIME_IDLE_TIMEOUT",
    "LOCAL_WEBHOOK_RETRY_DELAYS",
    "LOCAL_WEBHOOK_TIMEOUT",
    "MAX_RECONNECT_DELAY",
    "POLL_MAX",
    "POLL_START",
    "REALTIME_OPEN_TIMEOUT",
    "RECONNECT_ENV",
    "REQUEST_TIMEOUT",
    "RETRYABLE_STATUSES",
    "RETRY_ATTEMPTS",
    "RETRY_BASE_DELAY",
    "RETRY_MAX_DELAY",
    "RUN_TIMEOUT",
    "STREAM_ATTEMPTS",
    "STREAM_DRAIN_TIMEOUT",
]

#: Opening a connection: long enough for a slow network, short enough to tell a dead host.
CONNECT_TIMEOUT = 15.0
#: fal's backup domains (as fal-client 1.0.3 has them): a request that cannot connect to one of
#: these hosts goes to its backup instead (a network that blocks ``.run`` reaches fal anyway).
BACKUP_HOSTS = {"fal.run": "falrun.com", "queue.fal.run": "queue.falrun.com"}
#: Connecting to a host with a backup gives up this soon, so the backup is tried in time.
BACKUP_CONNECT_TIMEOUT = 5.0
#: Any protocol call (submit, status, result, cancel, tokens, uploads).
REQUEST_TIMEOUT = httpx.Timeout(120.0, connect=CONNECT_TIMEOUT)
#: A run has no read timeout by default: models take as long as they take (like fal_client).
RUN_TIMEOUT = httpx.Timeout(None, connect=CONNECT_TIMEOUT)
#: Downloading one output file.
DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=CONNECT_TIMEOUT)
#: Fetching fal's webhook JWKS.
JWKS_TIMEOUT = 30.0
#: Opening a realtime WebSocket (a cold app may take a while to accept).
REALTIME_OPEN_TIMEOUT = 90.0

#: Answers worth retrying: the request was not run, or it may be asked again safely.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 502, 503, 504})
#: Tries of one call, the first included, and the backoff between them.
RETRY_ATTEMPTS = 6
RETRY_BASE_DELAY = 0.25
RETRY_MAX_DELAY = 15.0

RECONNECT_ENV = "FALNB_RECONNECT_TIMEOUT"
#: Seconds without contact a wait on an accepted request rides out (a blip, a Wi-Fi change).
DEFAULT_RECONNECT = 120.0
#: The longest pause between two reconnection attempts, so a healed server is seen soon.
MAX_RECONNECT_DELAY = 5.0

#: Consecutive status-stream failures (without an event between) before falling back to polling.
STREAM_ATTEMPTS = 3
#: How long a status stream is read on after COMPLETED for its end (the server closes it at
#: once), so its connection is kept for the next request (the result) instead of dropped and
#: a new one (a TLS handshake, on fal's cloud) opened; short, as a late end only costs that.
STREAM_DRAIN_TIMEOUT = 0.25
#: Polling a request's status: the first pause, growing to at most the second.
POLL_START, POLL_MAX = 0.15, 2.0

#: The local server's webhook delivery: the pause before each retry of a failed delivery (fal
#: retries for hours; a local server is gone sooner), and how long one delivery may take.
LOCAL_WEBHOOK_RETRY_DELAYS: tuple[float, ...] = (0.25, 1.0, 3.0)
LOCAL_WEBHOOK_TIMEOUT = 15.0
#: A local realtime session with no input for this long is closed (``realtime_idle_timeout``
#: overrides it per server).
LOCAL_REALTIME_IDLE_TIMEOUT = 60.0

"""Soak: 300 queued jobs through injected gateway failures all complete, none is paid twice.

10% of queue requests answer an ingress 503, 5% a 429 with retry_after, and 5% of status
streams drop before COMPLETED. Every job must come back with its own result, and the server
must have accepted exactly 300 submissions.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from falnb import AsyncClient, RetryPolicy, _runtime
from falnb.local import LocalServer

pytestmark = pytest.mark.soak

JOBS = 300


def test_300_jobs_through_faults(make_server: Any) -> None:
    server: LocalServer = make_server(concurrency=4)
    server.faults.seed = 1234
    server.faults.clear()  # reseeds the fault dice
    stream_drops = server.faults.add("drop", path_contains="/status/stream", rate=0.05)
    unavailable = server.faults.add("status=503;ingress", role="queue", rate=0.10)
    limited = server.faults.add("status=429;retry_after=0.05", role="queue", rate=0.05)
    # Patient enough that 10 failures in a row (p ~ 0.15**10) never happen in practice.
    client = AsyncClient(server.target, retry=RetryPolicy(max_attempts=10, base_delay=0.02))

    async def one(i: int) -> dict[str, Any]:
        return await client.subscribe("local/echo", {"job": i}, with_logs=True)

    async def all_jobs() -> list[dict[str, Any]]:
        try:
            return await asyncio.gather(*(one(i) for i in range(JOBS)))
        finally:
            await client.aclose()

    results = _runtime.run(all_jobs())

    assert results == [{"job": i} for i in range(JOBS)]
    assert len(server.journal.accepted_submissions()) == JOBS
    # The faults really happened, and each kind more than a handful of times.
    assert unavailable.fired > 20
    assert limited.fired > 10
    assert stream_drops.fired > 5

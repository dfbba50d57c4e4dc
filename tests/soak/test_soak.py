"""Soak: 300 queued jobs through injected gateway failures all complete, none is paid twice.

10% of queue requests answer an ingress 503, 5% a 429 with retry_after, and 5% of status
streams drop before COMPLETED. Every job must come back with its own result, and the server
must have accepted exactly 300 submissions. A second soak adds blips: every status request
refused for 0.8 s every 1.5 s, and streams cut mid-stream.
"""

from __future__ import annotations

import asyncio
import threading
import time
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


def test_300_jobs_through_status_blips(make_server: Any) -> None:
    """Status polls and streams refused for 0.8 s every 1.5 s, streams cut or dropped at random.

    Every wait must ride the blips out (none gives up, none is paid twice); the figures are
    printed (``pytest -s``): faults injected, submissions accepted, results delivered.
    """
    server: LocalServer = make_server(concurrency=4)
    server.faults.seed = 4321
    server.faults.clear()
    cuts = server.faults.add("cut", path_contains="/status/stream", rate=0.05)
    drops = server.faults.add("drop", path_contains="/status/stream", rate=0.05)
    unavailable = server.faults.add("status=503;ingress", role="queue", rate=0.05)
    client = AsyncClient(server.target, retry=RetryPolicy(max_attempts=10, base_delay=0.02))
    blips: list[Any] = []
    running = threading.Event()
    running.set()

    def blip_schedule() -> None:
        # A fault schedule, not a wait on state: a blip starts every 1.5 s while jobs run.
        while running.is_set():
            blips.append(server.faults.add("reset", path_contains="/status", duration=0.8))
            time.sleep(1.5)

    def duration(i: int) -> float:
        return 0.05 + i / 100_000  # local/slow answers with it: each job's own result

    async def one(i: int) -> dict[str, Any]:
        return await client.subscribe(
            "local/slow", {"duration": duration(i), "steps": 1}, with_logs=True
        )

    async def all_jobs() -> list[dict[str, Any]]:
        try:
            return await asyncio.gather(*(one(i) for i in range(JOBS)))
        finally:
            await client.aclose()

    scheduler = threading.Thread(target=blip_schedule, daemon=True)
    started = time.monotonic()
    scheduler.start()
    try:
        results = _runtime.run(all_jobs())
    finally:
        running.clear()
        scheduler.join(5)
    elapsed = time.monotonic() - started

    delivered = sum(1 for i, result in enumerate(results) if result["duration"] == duration(i))
    submissions = len(server.journal.accepted_submissions("local/slow"))
    refused = sum(blip.fired for blip in blips)
    print(
        f"\nsoak with blips: {JOBS} jobs in {elapsed:.1f} s; {len(blips)} blips; faults injected "
        f"{server.faults.fired} (status requests refused {refused}, streams cut {cuts.fired}, "
        f"streams dropped {drops.fired}, gateway 503s {unavailable.fired}); submissions "
        f"accepted {submissions}; results delivered {delivered}"
    )
    assert delivered == JOBS
    assert submissions == JOBS
    assert len(blips) >= 3
    assert refused > 20
    assert cuts.fired > 5

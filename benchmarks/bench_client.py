"""falnb's client beside the official fal-client, on the same local server (figures, not pass/fail).

Run: ``.venv/bin/python benchmarks/bench_client.py [--runs N] [--jobs N]``.

Prints, for each client: the median and p95 latency of a direct run of ``local/echo``, the
median latency of subscribe (submit, follow the status, fetch the result), and the wall time of
N concurrent subscribes; then falnb / fal-client ratios (below 1.0: falnb is faster).
fal-client polls its status every 0.1 s; falnb follows fal's SSE status stream.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import fal_client
import fal_client.client as fal_module

from falnb import AsyncClient, SyncClient, _runtime
from falnb.local import LocalServer


def latencies(call: Callable[[], Any], runs: int) -> list[float]:
    call()  # warm the connection pool
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


def point_fal_client_at(server: LocalServer) -> None:
    base = server.base_url
    fal_module.RUN_URL_FORMAT = f"{base}/"
    fal_module.QUEUE_URL_FORMAT = f"{base}/_queue/"
    fal_module.REALTIME_URL_FORMAT = base.replace("http", "ws", 1) + "/"
    fal_module.REST_URL = f"{base}/_rest"
    fal_module.CDN_URL = f"{base}/_cdn"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=100)
    args = parser.parse_args()

    with LocalServer(concurrency=8) as server:
        point_fal_client_at(server)
        theirs = fal_client.SyncClient(key=server.key)
        theirs_async = fal_client.AsyncClient(key=server.key)
        ours = SyncClient(server.target)
        ours_async = AsyncClient(server.target)
        arguments = {"prompt": "a red fox"}
        slow = {"duration": 0.3, "steps": 3}

        rows: dict[str, dict[str, float]] = {}
        for name, client in (("falnb", ours), ("fal-client", theirs)):
            run = latencies(lambda c=client: c.run("local/echo", arguments), args.runs)
            sub = latencies(lambda c=client: c.subscribe("local/slow", slow), 20)
            rows[name] = {
                "run median ms": statistics.median(run) * 1000,
                "run p95 ms": p95(run) * 1000,
                "subscribe 0.3 s job, median ms": statistics.median(sub) * 1000,
            }

        async def ours_many() -> None:
            await asyncio.gather(
                *(ours_async.subscribe("local/echo", {"i": i}) for i in range(args.jobs))
            )

        async def theirs_many() -> None:
            await asyncio.gather(
                *(theirs_async.subscribe("local/echo", {"i": i}) for i in range(args.jobs))
            )

        start = time.perf_counter()
        _runtime.run(ours_many())
        rows["falnb"][f"{args.jobs} concurrent subscribes, s"] = time.perf_counter() - start
        start = time.perf_counter()
        asyncio.run(theirs_many())
        rows["fal-client"][f"{args.jobs} concurrent subscribes, s"] = time.perf_counter() - start
        ours.close()

    width = max(len(k) for k in rows["falnb"])
    print(f"{'':<{width}}  {'falnb':>10}  {'fal-client':>10}  {'ratio':>6}")
    for key, value in rows["falnb"].items():
        other = rows["fal-client"][key]
        print(f"{key:<{width}}  {value:>10.2f}  {other:>10.2f}  {value / other:>6.2f}")


if __name__ == "__main__":
    main()

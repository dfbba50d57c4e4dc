"""falnb's client beside the official fal-client and a bare floor, on one local server.

Run: ``.venv/bin/python benchmarks/bench_client.py [--jobs 200] [--lanes 4] [--runs 1000]``
(``make bench`` runs it as part of ``benchmarks/suite.py``).

* completion latency: ``--jobs`` queued jobs of ``local/slow`` lasting 0.2-0.5 s, each run by
  falnb's ``subscribe``, fal-client's ``subscribe`` and a bare httpx + httpx-sse loop (submit,
  follow ``/status/stream``, fetch the result: the least any client can do, so the floor), in
  rotating order, ``--lanes`` jobs in flight. Latency is submit to result in hand; overhead is
  that minus the job's own duration. Status requests per job come from the server's journal.
* sequential runs: ``--runs`` direct ``run`` calls of ``local/echo`` one after another, in
  blocks of 50 alternating between the clients; per-run time is each block's mean.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Server, median, p95, paired, paired_ratio, serve

SLOW = "local/slow"
ECHO = "local/echo"
BLOCK = 50


def durations(jobs: int) -> list[float]:
    """``jobs`` durations spread over 0.2-0.5 s, shuffled deterministically."""
    spread = [round(0.2 + 0.3 * k / max(1, jobs - 1), 3) for k in range(jobs)]
    return [spread[(k * 37) % jobs] for k in range(jobs)] if jobs % 37 else spread


def floor_subscribe(http: httpx.Client, base: str, arguments: dict[str, Any]) -> Any:
    """Submit, read the status stream until COMPLETED, fetch the result: nothing else."""
    submitted = http.post(f"{base}/_queue/{SLOW}", json=arguments).json()
    with connect_sse(http, "GET", f"{submitted['status_url']}/stream") as events:
        for event in events.iter_sse():
            if json.loads(event.data).get("status") == "COMPLETED":
                break
    return http.get(submitted["response_url"]).json()


def status_requests(journal: list[dict[str, Any]]) -> Counter[str]:
    """Status requests (polls and streams) per client, told apart by their User-Agent."""
    counts: Counter[str] = Counter()
    for entry in journal:
        if "/status" in entry["path"]:
            counts[client_of(entry["headers"].get("user-agent", ""))] += 1
    return counts


def client_of(agent: str) -> str:
    if agent.startswith("falnb"):
        return "falnb"
    if agent.startswith("fal-client"):
        return "fal-client"
    return "floor" if agent.startswith("python-httpx") else agent


def completion(server: Server, jobs: int, lanes: int) -> dict[str, Any]:
    """Completion latency of queued jobs, three contenders paired job by job."""
    import fal_client

    from falnb import SyncClient

    server.point_fal_client()
    ours = SyncClient(server.target())
    theirs = fal_client.SyncClient(key=server.key)
    floor = httpx.Client(headers=server.auth, timeout=60)
    base = server.base_url
    calls: dict[str, Callable[[dict[str, Any]], Any]] = {
        "falnb": lambda a: ours.subscribe(SLOW, a),
        "fal-client": lambda a: theirs.subscribe(SLOW, a),
        "floor": lambda a: floor_subscribe(floor, base, a),
    }
    for call in calls.values():  # warm every connection pool and import
        call({"duration": 0, "steps": 1})
    spans = durations(jobs)

    def timed(name: str) -> Callable[[int], float]:
        def one(index: int) -> float:
            arguments = {"duration": spans[index], "steps": 1, "seed": index}
            start = time.perf_counter()
            result = calls[name](arguments)
            elapsed = time.perf_counter() - start
            assert result["duration"] == spans[index], result
            return elapsed

        return one

    contenders = {name: timed(name) for name in calls}
    server.clear_journal()
    with ThreadPoolExecutor(max_workers=lanes) as pool:
        rounds = list(pool.map(lambda i: paired(contenders, 1, start=i), range(jobs)))
    counts = status_requests(server.journal())
    ours.close()
    floor.close()
    latency = {name: [r[name][0] for r in rounds] for name in calls}
    overhead = {
        name: [t - d for t, d in zip(values, spans, strict=True)]
        for name, values in latency.items()
    }
    out: dict[str, Any] = {"jobs": jobs, "lanes": lanes, "job_seconds": [0.2, 0.5]}
    for name in calls:
        out[name] = {
            "latency_p50_ms": median(latency[name]) * 1000,
            "latency_p95_ms": p95(latency[name]) * 1000,
            "overhead_p50_ms": median(overhead[name]) * 1000,
            "overhead_p95_ms": p95(overhead[name]) * 1000,
            "status_requests_per_job": counts[name] / jobs,
        }
    for other in ("floor", "fal-client"):
        out[f"falnb/{other}"] = {
            "latency": paired_ratio(latency["falnb"], latency[other]),
            "overhead_p50": out["falnb"]["overhead_p50_ms"] / out[other]["overhead_p50_ms"],
        }
    return out


def sequential_runs(server: Server, runs: int) -> dict[str, Any]:
    """``runs`` direct runs per contender, one after another, in alternating blocks.

    Beside falnb and fal-client, two bare httpx loops show where the time goes: a sync
    ``httpx.Client`` (what fal-client's sync client, and falnb's sync ``run`` through its
    blocking transport, are built on) and an ``httpx.AsyncClient`` driven from this thread
    through falnb's event-loop thread (what falnb's sync ``run`` did before it had a blocking
    transport, and what the sync front's waits still do). Those loops are plain httpx; falnb's
    blocking client sends each request in one write and keeps no cookies
    (``falnb/client/_wire.py``), so falnb can come in under them. CPU is the whole client
    process's, per run: load on the machine stretches wall time but not that.
    """
    import fal_client

    from falnb import SyncClient, _runtime

    server.point_fal_client()
    ours = SyncClient(server.target())
    theirs = fal_client.SyncClient(key=server.key)
    arguments = {"prompt": "a red fox", "seed": 7}
    url = f"{server.base_url}/{ECHO}"
    sync_http = httpx.Client(headers=server.auth)
    async_http = httpx.AsyncClient(headers=server.auth)

    async def async_post() -> Any:
        return (await async_http.post(url, json=arguments)).json()

    calls: dict[str, Callable[[], Any]] = {
        "falnb": lambda: ours.run(ECHO, arguments),
        "fal-client": lambda: theirs.run(ECHO, arguments),
        "httpx.Client": lambda: sync_http.post(url, json=arguments).json(),
        "httpx.AsyncClient via falnb's loop": lambda: _runtime.run(async_post()),
    }
    for call in calls.values():
        for _ in range(20):  # warm up: connection pools, imports, the server's caches
            assert call()["seed"] == 7

    def block(name: str) -> Callable[[int], tuple[float, float]]:
        call = calls[name]

        def one(_index: int) -> tuple[float, float]:
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(BLOCK):
                call()
            return (time.perf_counter() - start) / BLOCK, (time.process_time() - cpu) / BLOCK

        return one

    blocks = max(2, runs // BLOCK)
    times = paired({name: block(name) for name in calls}, blocks)
    ours.close()
    sync_http.close()
    _runtime.run(async_http.aclose())
    out: dict[str, Any] = {"runs": blocks * BLOCK}
    for name, values in times.items():
        out[name] = {
            "per_run_ms": median([wall for wall, _ in values]) * 1000,
            "cpu_per_run_ms": median([cpu for _, cpu in values]) * 1000,
        }
    walls = {name: [wall for wall, _ in values] for name, values in times.items()}
    cpus = {name: [cpu for _, cpu in values] for name, values in times.items()}
    out["falnb/fal-client"] = paired_ratio(walls["falnb"], walls["fal-client"])
    out["falnb/fal-client cpu"] = paired_ratio(cpus["falnb"], cpus["fal-client"])
    return out


def print_completion(figures: dict[str, Any]) -> None:
    print(
        f"completion of {figures['jobs']} jobs of 0.2-0.5 s, {figures['lanes']} in flight:"
        "  latency p50 / p95, overhead p50 / p95 (ms), status requests per job"
    )
    for name in ("falnb", "fal-client", "floor"):
        row = figures[name]
        print(
            f"  {name:<10} {row['latency_p50_ms']:7.1f} {row['latency_p95_ms']:7.1f}"
            f"   {row['overhead_p50_ms']:6.1f} {row['overhead_p95_ms']:6.1f}"
            f"   {row['status_requests_per_job']:5.2f}"
        )
    for other in ("floor", "fal-client"):
        ratio = figures[f"falnb/{other}"]
        print(
            f"  falnb / {other}: latency {ratio['latency']:.3f} (paired median),"
            f" overhead p50 {ratio['overhead_p50']:.2f}"
        )


def print_runs(figures: dict[str, Any]) -> None:
    print(f"{figures['runs']} sequential runs of {ECHO}, per run (median of blocks): wall, CPU")
    for name, row in figures.items():
        if isinstance(row, dict):
            print(f"  {name:<36} {row['per_run_ms']:6.3f} ms  {row['cpu_per_run_ms']:6.3f} ms")
    print(
        f"  falnb / fal-client: {figures['falnb/fal-client']:.2f} wall,"
        f" {figures['falnb/fal-client cpu']:.2f} CPU (paired medians)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    with serve(concurrency=args.lanes * 3) as server:
        print_completion(completion(server, args.jobs, args.lanes))
        print_runs(sequential_runs(server, args.runs))


if __name__ == "__main__":
    main()

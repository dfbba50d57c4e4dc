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
            arguments = {"duration": spans[index], "steps": 1, "i": index}
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
    """``runs`` direct runs per client, one after another, in alternating blocks."""
    import fal_client

    from falnb import SyncClient

    server.point_fal_client()
    ours = SyncClient(server.target())
    theirs = fal_client.SyncClient(key=server.key)
    arguments = {"prompt": "a red fox", "seed": 7}
    clients: dict[str, Any] = {"falnb": ours, "fal-client": theirs}
    for client in clients.values():
        for _ in range(20):  # warm up: connection pool, imports, the server's caches
            client.run(ECHO, arguments)

    def block(name: str) -> Callable[[int], float]:
        run = clients[name].run

        def one(_index: int) -> float:
            start = time.perf_counter()
            for _ in range(BLOCK):
                run(ECHO, arguments)
            return (time.perf_counter() - start) / BLOCK

        return one

    blocks = max(2, runs // BLOCK)
    times = paired({name: block(name) for name in clients}, blocks)
    ours.close()
    out: dict[str, Any] = {"runs": blocks * BLOCK}
    for name, values in times.items():
        out[name] = {"per_run_ms": median(values) * 1000, "total_s": sum(values) * BLOCK}
    out["falnb/fal-client"] = paired_ratio(times["falnb"], times["fal-client"])
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
    print(f"{figures['runs']} sequential runs of {ECHO}, per run (median of blocks):")
    for name in ("falnb", "fal-client"):
        print(f"  {name:<10} {figures[name]['per_run_ms']:6.3f} ms")
    print(f"  falnb / fal-client: {figures['falnb/fal-client']:.2f} (paired median)")


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

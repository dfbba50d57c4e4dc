"""A sweep of many short jobs: falnb's sweep engine beside fal-client with a thread pool.

Run: ``.venv/bin/python benchmarks/bench_sweep.py [--jobs 1000] [--slots 32] [--pairs 3]``.

One ``falnb serve`` process with ``--slots`` runners; each measurement is a fresh client
process, so its memory is its own: ``--jobs`` jobs of ``local/slow`` taking ``--seconds``
each, ``--concurrency`` in flight. Ideal wall time is jobs x seconds / slots. The clients
run in rotating order each round: falnb's sweep engine, fal-client (``subscribe`` in a
thread pool, polling every 0.1 s), and two floors with no library around httpx, each making
the fewest requests a job needs (submit, one status stream read to its end, result):
``httpx`` from one asyncio loop, ``httpx-threads`` from a thread pool over one ``httpx.Client``.
Printed, as medians over ``--pairs`` rounds: wall / ideal, the CPU seconds the client and
the server spent (on a loaded machine wall time is mostly waiting for a core; CPU is what
each client costs), each client's memory growth (peak RSS minus RSS after warm-up), and the
paired-median wall ratios falnb / fal-client and falnb / bare httpx. falnb runs with
``record=off`` (no lock file) so the figure is the engine's; ``--with-lock`` adds a client
that writes every job to a lock (pending before waiting, then the result), as a notebook does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) another process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _bare(base: str, key: str, arguments: list[dict[str, Any]], in_flight: int) -> None:
    """Bare httpx: the fewest requests a job needs (submit, one status stream that the server
    ends after COMPLETED, result) from one asyncio loop, with no client library around them."""
    import asyncio

    headers = {"Authorization": f"Key {key}"}
    async with httpx.AsyncClient(headers=headers, limits=_limits(in_flight), timeout=60) as http:
        slots = asyncio.Semaphore(in_flight)

        async def one(body: dict[str, Any]) -> None:
            async with slots:
                answer = (await http.post(f"{base}/_queue/local/slow", json=body)).json()
                url = f"{answer['status_url']}/stream"
                async with http.stream("GET", url, params={"logs": "0"}) as events:
                    async for _ in events.aiter_lines():
                        pass  # read to the end: the connection goes back to the pool
                (await http.get(answer["response_url"])).raise_for_status()

        await asyncio.gather(*(one(a) for a in arguments))


def _bare_threads(base: str, key: str, arguments: list[dict[str, Any]], in_flight: int) -> None:
    """:func:`_bare`'s requests from a thread pool over one ``httpx.Client``: fal-client's shape,
    with a status stream instead of polling."""
    from concurrent.futures import ThreadPoolExecutor

    headers = {"Authorization": f"Key {key}"}
    with httpx.Client(headers=headers, limits=_limits(in_flight), timeout=60) as http:

        def one(body: dict[str, Any]) -> None:
            answer = http.post(f"{base}/_queue/local/slow", json=body).json()
            url = f"{answer['status_url']}/stream"
            with http.stream("GET", url, params={"logs": "0"}) as events:
                for _ in events.iter_lines():
                    pass
            http.get(answer["response_url"]).raise_for_status()

        with ThreadPoolExecutor(max_workers=in_flight) as pool:
            list(pool.map(one, arguments))


def _limits(in_flight: int) -> httpx.Limits:
    return httpx.Limits(max_connections=None, max_keepalive_connections=in_flight + 8)


def _child(which: str, base: str, key: str, args: argparse.Namespace) -> dict[str, float]:
    arguments = [{"duration": args.seconds, "steps": 1, "seed": i} for i in range(args.jobs)]
    if which == "httpx":
        import asyncio

        asyncio.run(_bare(base, key, [{"duration": 0, "steps": 1}], 1))  # warm up
        before, cpu = _rss_mb(), _cpu_s()
        start = time.perf_counter()
        asyncio.run(_bare(base, key, arguments, args.concurrency))
        wall = time.perf_counter() - start
    elif which == "httpx-threads":
        _bare_threads(base, key, [{"duration": 0, "steps": 1}], 1)  # warm up
        before, cpu = _rss_mb(), _cpu_s()
        start = time.perf_counter()
        _bare_threads(base, key, arguments, args.concurrency)
        wall = time.perf_counter() - start
    elif which.startswith("falnb"):
        os.environ.update(
            FALNB_TARGET="fal",
            FAL_KEY=key,
            FALNB_RUN_URL=base,
            FALNB_QUEUE_URL=f"{base}/_queue",
            FALNB_REST_URL=f"{base}/_rest",
            FALNB_CDN_URL=f"{base}/_cdn",
        )
        from falnb import SyncClient
        from falnb.repro import LockFile, MediaStore, Recorder
        from falnb.session import Session
        from falnb.sweeps import Sweep, SweepJob

        folder = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
        recorder = Recorder(LockFile(folder / "falnb.lock"), MediaStore(folder / "media"))
        # The server is free, but targeted as fal, so a big sweep would ask to be confirmed.
        session = Session(SyncClient(), recorder=recorder, confirm_above=float("inf"))
        record = "once" if which == "falnb+lock" else "off"
        session.run("local/slow", {"duration": 0, "steps": 1}, record="off")  # warm up
        jobs = [SweepJob("local/slow", a) for a in arguments]
        before, cpu = _rss_mb(), _cpu_s()
        start = time.perf_counter()
        results = Sweep(session, jobs, concurrency=args.concurrency, record=record).run()
        wall = time.perf_counter() - start
        assert not results.failures, f"{results.summary()}: {results.failures[0]!r}"
    else:
        from concurrent.futures import ThreadPoolExecutor

        import fal_client
        import fal_client.client as fal_module

        fal_module.QUEUE_URL_FORMAT = f"{base}/_queue/"
        fal_module.RUN_URL_FORMAT = f"{base}/"
        client = fal_client.SyncClient(key=key)
        client.subscribe("local/slow", {"duration": 0, "steps": 1})  # warm up
        before, cpu = _rss_mb(), _cpu_s()
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            outputs = list(pool.map(lambda a: client.subscribe("local/slow", a), arguments))
        wall = time.perf_counter() - start
        assert len(outputs) == args.jobs
    return {"wall": wall, "memory": _peak_mb() - before, "cpu": _cpu_s() - cpu}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _measure(which: str, server: int, base: str, key: str, argv: list[str]) -> dict[str, float]:
    """One run in a fresh process; ``server_cpu`` is what the server spent meanwhile (its
    warm-up included: a few ms)."""
    server_before = _process_cpu_s(server)
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, "--base", base, "--key", key, *argv],
        check=False,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"the {which} run failed:\n{out.stderr}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["server_cpu"] = _process_cpu_s(server) - server_before
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--with-lock", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.base, args.key, args)))
        return

    key, port = secrets.token_hex(16), _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile("w", suffix=".key") as key_file:
        key_file.write(key)
        key_file.flush()
        command = [sys.executable, "-m", "falnb.cli", "serve", "--port", str(port)]
        command += ["--key-file", key_file.name, "--concurrency", str(args.slots)]
        server = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_healthy(base)
            _report(args, server.pid, base, key)
        finally:
            server.terminate()
            server.wait(10)


def _wait_healthy(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/_falnb/health", timeout=1).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the local server did not start")


def _report(args: argparse.Namespace, server: int, base: str, key: str) -> None:
    argv = ["--jobs", str(args.jobs), "--seconds", str(args.seconds)]
    argv += ["--concurrency", str(args.concurrency)]
    ideal = args.jobs * args.seconds / args.slots
    clients = ["falnb", "fal-client", "httpx", "httpx-threads"]
    clients += ["falnb+lock"] if args.with_lock else []
    runs: dict[str, list[dict[str, float]]] = {which: [] for which in clients}
    for pair in range(args.pairs):
        # The order rotates, so no client always runs first (or right after another's load).
        for which in clients[pair % len(clients) :] + clients[: pair % len(clients)]:
            runs[which].append(_measure(which, server, base, key, argv))

    def median(which: str, field: str) -> float:
        return statistics.median(r[field] for r in runs[which])

    def paired(which: str, other: str) -> float:
        pairs = zip(runs[which], runs[other], strict=False)
        return statistics.median(a["wall"] / b["wall"] for a, b in pairs)

    print(
        f"{args.jobs} jobs of {args.seconds:g} s, {args.slots} server slots, "
        f"{args.concurrency} in flight; ideal {ideal:.2f} s; medians of {args.pairs} rounds; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for which in runs:
        wall, memory = median(which, "wall"), median(which, "memory")
        print(
            f"  {which:<13} wall {wall:6.2f} s = {wall / ideal:5.2f}x ideal, "
            f"CPU client {median(which, 'cpu'):5.2f} s + server {median(which, 'server_cpu'):5.2f}"
            f" s, memory growth {memory:6.1f} MB"
        )
    print(f"  falnb / fal-client wall (paired median): {paired('falnb', 'fal-client'):.2f}")
    print(f"  falnb / bare httpx wall (paired median): {paired('falnb', 'httpx'):.2f}")
    print(f"  falnb / httpx threads wall (paired median): {paired('falnb', 'httpx-threads'):.2f}")


if __name__ == "__main__":
    main()

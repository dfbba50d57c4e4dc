"""``make bench``: every side-by-side figure in one run, to JSON and to the README's table.

Run: ``.venv/bin/python benchmarks/suite.py [--quick] [--no-browser] [--json PATH]
[--readme PATH] [--only SECTION ...]``

Sections (each beside its yardstick in the same run, contenders paired round by round):
completion latency and status requests (``bench_client``), sequential runs (``bench_client``),
the 1000-job sweep (``bench_sweep.py``, run as its own command), realtime echo round trips
(``bench_realtime``), realtime in JupyterLab + Chromium for each transport
(``bench_realtime_browser.py``, run as its own command; skipped by ``--no-browser`` or when
Chromium is missing), replay, saved notebook bytes and import time (``bench_notebook``).

Writes ``benchmarks/results/latest.json`` (every figure, the machine, the load average before
and after each section) and rewrites the README between ``<!-- bench:begin -->`` and
``<!-- bench:end -->``. ``--only`` re-measures some sections and keeps the JSON's figures for
the others. ``--quick`` shrinks every section (seconds, not minutes) to check the
plumbing; its figures say so and are not worth quoting.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench_client  # noqa: E402
import bench_notebook  # noqa: E402
import bench_realtime  # noqa: E402
from _harness import Server, load_average, machine, serve  # noqa: E402

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


# Sizes: the (full) and a plumbing check (quick).
FULL = {
    "jobs": 200,
    "lanes": 4,
    "runs": 1000,
    "sweep": ["--jobs", "1000", "--pairs", "1"],
    "echo_seconds": 1.0,
    "echo_blocks": 6,
    "browser": ["--seconds", "3"],
    "replays": 100,
    "imports": 7,
}
QUICK = {
    "jobs": 6,
    "lanes": 2,
    "runs": 100,
    "sweep": ["--jobs", "16", "--pairs", "1", "--slots", "8", "--concurrency", "8"],
    "echo_seconds": 0.2,
    "echo_blocks": 2,
    "browser": ["--seconds", "1"],
    "replays": 10,
    "imports": 2,
}
SECTIONS = ("completion", "runs", "sweep", "realtime", "browser", "replay", "notebook", "import")


def command(script: str, argv: list[str], timeout: float) -> str:
    """Run another benchmark as its own command (its owner keeps its CLI); its stdout."""
    out = subprocess.run(
        [sys.executable, str(HERE / script), *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [""])[-1]
        # A child's command line may carry the server's key: never into the JSON or README.
        last = re.sub(r"""(['"]?--key['"]?,?\s*)['"]?[^'",\s]+""", r"\1***", last)
        raise RuntimeError(f"{script} exited with status {out.returncode}: {last[:240]}")
    return out.stdout


NUMBER = r"([0-9]+(?:\.[0-9]+)?)"


def parse_sweep(text: str) -> dict[str, Any]:
    """bench_sweep.py's printed figures: each client's wall, x ideal and memory (and CPU when
    it prints it), and its paired ratios ``falnb / other``."""
    out: dict[str, Any] = {"output": text}
    if match := re.search(rf"ideal {NUMBER} s", text):
        out["ideal_s"] = float(match.group(1))
    for name, wall, ideal, middle, memory in re.findall(
        rf"^\s+(\S+)\s+wall\s+{NUMBER} s =\s*{NUMBER}x ideal,(.*?)memory growth\s+{NUMBER} MB",
        text,
        re.MULTILINE,
    ):
        row = {"wall_s": float(wall), "x_ideal": float(ideal), "memory_mb": float(memory)}
        if cpu := re.search(rf"CPU client\s+{NUMBER} s \+ server\s+{NUMBER} s", middle):
            row.update(client_cpu_s=float(cpu.group(1)), server_cpu_s=float(cpu.group(2)))
        out[name] = row
    for other, ratio in re.findall(
        rf"^\s+falnb / (.+?) wall \(paired median\): {NUMBER}", text, re.MULTILINE
    ):
        out[f"falnb/{other}"] = float(ratio)
    return out


def parse_browser(text: str) -> dict[str, Any]:
    """bench_realtime_browser.py's per-level rows: fps, latency median and p95 (ms)."""
    levels: dict[str, Any] = {}
    out: dict[str, Any] = {"output": text, "levels": levels}
    if text.startswith("skipped"):
        out["skipped"] = text.strip()
        return out
    for name, fps, p50, p95 in re.findall(
        rf"^\s+(\S+)\s*: *{NUMBER} fps\s+latency median\s+{NUMBER} ms\s+p95\s+{NUMBER} ms",
        text,
        re.MULTILINE,
    ):
        levels[name] = {
            "fps": float(fps),
            "latency_p50_ms": float(p50),
            "latency_p95_ms": float(p95),
        }
    return out


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def run_sections(args: argparse.Namespace, sizes: dict[str, Any]) -> dict[str, Any]:
    wanted = set(args.only or SECTIONS) - ({"browser"} if args.no_browser else set())
    results: dict[str, Any] = {}

    def section(name: str, measure: Callable[[], Any]) -> None:
        if name not in wanted:
            return
        print(f"== {name}", flush=True)
        before, start = load_average(), time.perf_counter()
        try:
            figures = measure()
        except Exception as exc:  # noqa: BLE001 - one failed section must not lose the others
            figures = {"error": f"{type(exc).__name__}: {exc}"}
        results[name] = {
            **figures,
            "at": now(),
            # Not "seconds": a section's own figure may be called that (replay's is).
            "section_seconds": round(time.perf_counter() - start, 1),
            "load_average": {"before": before, "after": load_average()},
        }
        shown = {k: v for k, v in figures.items() if k != "output"}
        print(json.dumps(shown, indent=1), flush=True)

    server: Server
    with serve(concurrency=max(8, sizes["lanes"])) as server:
        section(
            "completion", lambda: bench_client.completion(server, sizes["jobs"], sizes["lanes"])
        )
        section("runs", lambda: bench_client.sequential_runs(server, sizes["runs"]))
        section(
            "realtime",
            lambda: bench_realtime.echo_round_trips(
                server.target(), sizes["echo_seconds"], sizes["echo_blocks"]
            ),
        )
        section("replay", lambda: bench_notebook.replay(server, sizes["replays"]))
        section("notebook", lambda: bench_notebook.notebook_bytes(server))
    section("sweep", lambda: parse_sweep(command("bench_sweep.py", sizes["sweep"], 1800)))
    section(
        "browser",
        lambda: parse_browser(command("bench_realtime_browser.py", sizes["browser"], 900)),
    )
    section("import", lambda: bench_notebook.import_time(sizes["imports"]))
    return results


# -- the README table ---------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.2f} ms"


def _goal(met: bool, text: str) -> str:
    return f"{text}: {'met' if met else '**missed**'}"


def table(report: dict[str, Any]) -> str:
    """The README's benchmark section body: the machine, then one row per figure."""
    failed = {name: s["error"] for name, s in report["results"].items() if "error" in s}
    r = {name: s for name, s in report["results"].items() if name not in failed}
    m = report["machine"]
    loads = [s["load_average"]["before"][0] for s in report["results"].values()]
    loads += [s["load_average"]["after"][0] for s in report["results"].values()]
    times = sorted({s.get("at", report["date"]) for s in report["results"].values()})
    when = times[0] if len(times) < 2 else f"{times[0]} to {times[-1]}"
    lines = [
        f"Measured {when} by `make bench`"
        + (" in its quick mode (plumbing only: too few runs to quote)" if report["quick"] else "")
        + f" on {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['system']}. "
        f"One-minute load average {min(loads):.1f}-{max(loads):.1f} during the run: "
        "the machine was shared, so absolute times are inflated and the paired ratios are the "
        "figures to read. Every contender ran against the same `falnb serve` process on "
        "loopback; `benchmarks/results/latest.json` has every figure.",
        "",
        "| measure | falnb | beside it | ratio | goal |",
        "| --- | --- | --- | --- | --- |",
    ]

    def row(measure: str, falnb: str, beside: str = "", ratio: str = "", goal: str = "") -> None:
        lines.append(
            "|"
            + "|".join(f" {c} " if c else " " for c in (measure, falnb, beside, ratio, goal))
            + "|"
        )

    if c := r.get("completion"):
        f, t, b = c["falnb"], c["fal-client"], c["floor"]
        ratio = c["falnb/floor"]
        row(
            f"completion latency p50 / p95, {c['jobs']} jobs of 0.2-0.5 s, {c['lanes']} in flight",
            f"{_ms(f['latency_p50_ms'])} / {_ms(f['latency_p95_ms'])}",
            f"floor (httpx + httpx-sse) {_ms(b['latency_p50_ms'])} / {_ms(b['latency_p95_ms'])};"
            f" fal-client {_ms(t['latency_p50_ms'])} / {_ms(t['latency_p95_ms'])}",
            f"{ratio['latency']:.2f}x floor, {c['falnb/fal-client']['latency']:.2f}x fal-client",
            _goal(ratio["latency"] <= 1.5, "≤ 1.5x floor"),
        )
        row(
            "of which overhead (latency minus the job's duration), p50 / p95",
            f"{_ms(f['overhead_p50_ms'])} / {_ms(f['overhead_p95_ms'])}",
            f"floor {_ms(b['overhead_p50_ms'])} / {_ms(b['overhead_p95_ms'])};"
            f" fal-client {_ms(t['overhead_p50_ms'])} / {_ms(t['overhead_p95_ms'])}",
            f"{ratio['overhead_p50']:.2f}x floor",
        )
        row(
            "status requests per job (server journal)",
            f"{f['status_requests_per_job']:.2f}",
            f"floor {b['status_requests_per_job']:.2f};"
            f" fal-client {t['status_requests_per_job']:.2f}",
        )
    if s := r.get("runs"):
        ratio = s["falnb/fal-client"]
        bare_sync, bare_async = s["httpx.Client"], s["httpx.AsyncClient via falnb's loop"]
        row(
            f"{s['runs']} sequential `run` calls, per call: wall (client CPU)",
            f"{_ms(s['falnb']['per_run_ms'])} ({_ms(s['falnb']['cpu_per_run_ms'])})",
            f"fal-client {_ms(s['fal-client']['per_run_ms'])}"
            f" ({_ms(s['fal-client']['cpu_per_run_ms'])}); bare `httpx.Client`"
            f" {_ms(bare_sync['per_run_ms'])} ({_ms(bare_sync['cpu_per_run_ms'])});"
            f" bare `httpx.AsyncClient` through falnb's loop thread"
            f" {_ms(bare_async['per_run_ms'])} ({_ms(bare_async['cpu_per_run_ms'])})",
            f"{ratio:.2f}x ({s['falnb/fal-client cpu']:.2f}x CPU)",
            _goal(max(ratio, s["falnb/fal-client cpu"]) <= 1.0, "≤ 1.0x, wall and CPU"),
        )
    if (w := r.get("sweep")) and "falnb" in w:
        others = [
            name for name in w if name not in ("falnb", "output", "ideal_s") and "/" not in name
        ]
        others = [name for name in others if isinstance(w[name], dict) and "wall_s" in w[name]]
        row(
            f"sweep: {w['output'].splitlines()[0]}",
            f"{w['falnb']['wall_s']:.1f} s ({w['falnb']['x_ideal']:.1f}x ideal)",
            "; ".join(
                f"{name} {w[name]['wall_s']:.1f} s ({w[name]['x_ideal']:.1f}x ideal)"
                for name in others
            ),
            ", ".join(
                f"{w[key]:.2f}x {key.split('/', 1)[1]}" for key in w if key.startswith("falnb/")
            ),
        )
    if e := r.get("realtime"):
        ratio = e["falnb/bare"]
        row(
            "realtime round trips per second, `local/realtime-echo`",
            f"{e['falnb_per_s']:.0f}",
            f"bare websockets + msgpack {e['bare_per_s']:.0f}",
            f"{ratio:.2f}x",
            _goal(ratio >= 0.9, "≥ 0.9x"),
        )
    if (b := r.get("browser")) and "skipped" not in b:
        for name, level in b["levels"].items():
            row(
                f"realtime `local/image-to-image`, {name} (in the JupyterLab run):"
                " fps, latency p50 / p95",
                f"{level['fps']:.1f} fps, {_ms(level['latency_p50_ms'])}"
                f" / {_ms(level['latency_p95_ms'])}",
            )
    if p := r.get("replay"):
        met = p["seconds"] <= 1.0 and p["requests"] == 0
        row(
            f"replay of {p['calls']} locked calls: wall (CPU)",
            f"{p['seconds']:.2f} s ({p['cpu_seconds']:.2f} s), {p['requests']} requests",
            goal=_goal(met, "≤ 1 s, 0 requests"),
        )
    if n := r.get("notebook"):
        kb = n["bytes_per_image"] / 1000
        row(
            f"saved notebook bytes per {n['side']}² image",
            f"{kb:.0f} KB",
            goal=_goal(kb <= 200, "≤ 200 KB"),
        )
    if i := r.get("import"):
        seconds = i["import_and_load_ext_s"]
        row(
            f"`import falnb` + `%load_ext falnb` in a fresh kernel (median of {i['processes']})",
            f"{seconds:.2f} s ({i['import_and_load_ext_cpu_s']:.2f} s CPU)",
            f"bare `import falnb` {i['bare_import_s']:.2f} s",
            goal=_goal(seconds <= 0.3, "≤ 0.3 s"),
        )
    for name, error in failed.items():
        row(f"{name}: not measured ({error.replace('|', '/')})", "")
    return "\n".join(lines)


def write_readme(path: Path, body: str) -> None:
    text = path.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start == -1 or end < start:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} section to rewrite")
    path.write_text(text[: start + len(BEGIN)] + "\n" + body + "\n" + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the plumbing")
    parser.add_argument("--no-browser", action="store_true", help="skip the JupyterLab figures")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        help="measure only these sections (the JSON's other figures are kept)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    report: dict[str, Any] = {
        "date": now(),
        "quick": args.quick,
        "machine": machine(),
    }
    results = run_sections(args, QUICK if args.quick else FULL)
    if args.only and args.json.exists():  # re-measure some sections, keep the others' figures
        earlier = json.loads(args.json.read_text())
        if earlier.get("quick") == args.quick:
            for figures in earlier["results"].values():
                figures.setdefault("at", earlier["date"])
            results = {**earlier["results"], **results}
            report["updated"] = sorted(args.only)
    report["results"] = results
    report["seconds"] = round(time.perf_counter() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    body = table(report)
    write_readme(args.readme, body)
    print(f"\n{body}\n\nwrote {args.json} and {args.readme} in {report['seconds']:.0f} s")
    failed = [name for name, figures in report["results"].items() if "error" in figures]
    if failed:
        raise SystemExit(f"not measured: {', '.join(failed)} (the JSON has why)")


if __name__ == "__main__":
    main()

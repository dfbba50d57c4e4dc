"""Realtime figures in a real browser, beside the client-level ones (figures, not pass/fail).

Run: ``.venv/bin/python benchmarks/bench_realtime_browser.py [--seconds S] [--rate HZ] [--size PX]
[--hops] [--lab-nodelay] [--breakdown]``
(needs ``/usr/bin/chromium``).

It starts ``falnb serve`` and JupyterLab on loopback, opens a notebook holding a ``Realtime``
widget in headless Chromium, focuses the slider and presses ArrowRight at ``--rate`` Hz. In the
page, a MutationObserver timestamps every change of the frame's ``<img src>``; each key press
is answered by the first frame showing its value or a newer one (latest wins). Two widgets
are measured in one run, one after the other in the same JupyterLab: ``kernel``, an ipywidgets
slider on the kernel path (every move and frame crosses the kernel), and ``bdirect``, the
widget's own slider on its own socket (browser-direct, issue 17: moves and frames skip the
kernel). The same server then runs the client-level measurements of ``bench_realtime.py``
(direct connection and widget in this process), and the figures are printed side by side
with ratios, and the machine's load average before and after.

``--hops`` also timestamps every hop on one clock (the page's ``performance.timeOrigin +
now()`` and the kernel's ``time.time()``, both this machine's wall clock) and prints where a
key press's time goes: the slider's comm message (ipywidgets sends one at a time, the next
after the kernel's ``idle`` for the previous one arrives), the kernel, the model, the frame's
way back and its decode. ``--lab-nodelay`` adds a run whose JupyterLab sets TCP_NODELAY on its
kernel websockets (jupyter_server leaves Nagle on: small messages can wait for a delayed ACK).
``--breakdown`` times the browser-direct run's frames on the page's own socket (a wrapper around
the page's ``WebSocket``: when each input left and each answer arrived, and the server's own
time per frame from its ``timings`` message) and counts the CPU time each process spent per
frame shown (the server, JupyterLab, the kernel, Chromium, Playwright's driver), both runs.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect, sync_playwright

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests" / "browser")]

import bench_realtime  # noqa: E402 - beside this file
from labkit import (  # noqa: E402 - the browser tests' helpers, reused as they are
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE,
    FalnbServer,
    LabServer,
    free_port,
    start_lab,
    stop_process,
    wait_until,
    write_notebook,
)

from falnb import SyncClient, Target  # noqa: E402

STEP = 0.001
# Today's kernel path: an ipywidgets slider bound from Python; every move and frame crosses
# the kernel.
CELL = f"""\
from pathlib import Path
from ipywidgets import FloatSlider, Layout
from falnb.widgets import Realtime

slider = FloatSlider(0.0, min=0.0, max=1.0, step={STEP}, readout_format=".3f",
                     description="strength", layout=Layout(width="500px"))
realtime = Realtime(
    "{bench_realtime.ENDPOINT}",
    base={{"image": Path("bench.png").read_bytes(), "prompt": "a fox", "seed": 3}},
    controls={{"strength": slider}},
    transport="kernel",
)
realtime"""
# Browser-direct: the widget draws its own slider and opens its own socket (auto picks it:
# the browser runs on the server's machine).
DIRECT_CELL = f"""\
from pathlib import Path
from falnb.widgets import Realtime

realtime = Realtime(
    "{bench_realtime.ENDPOINT}",
    base={{"image": Path("bench.png").read_bytes(), "prompt": "a fox", "seed": 3}},
    controls={{"strength": (0.0, 1.0, {STEP})}},
)
realtime.controls["strength"].value = 0.0
realtime"""
IPYWIDGETS_SLIDER = ".widget-slider .noUi-handle"
DRAWN_SLIDER = ".falnb-realtime-drawn input[type=range]"

# Timestamps in the page's own clock: key presses, and every new frame with its caption (set
# in the same task as the src, so it names the value the frame answers).
INSTALL = """() => {
  const bench = { keys: [], frames: [] };
  window.falnbBench = bench;
  document.addEventListener("keydown", (event) => {
    if (event.key === "ArrowRight") bench.keys.push(performance.now());
  }, true);
  new MutationObserver((records) => {
    const now = performance.now();
    for (const record of records) {
      if (!record.target.classList.contains("falnb-realtime-frame")) continue;
      const caption = document.querySelector(".falnb-realtime-caption");
      bench.frames.push([now, caption ? caption.textContent : ""]);
    }
  }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["src"] });
}"""


# --breakdown: the page's realtime sockets (not JupyterLab's), wrapped before any script runs.
WIRE = """(() => {
  const wire = { sends: [], answers: [], timings: [] };
  window.falnbWire = wire;
  const Native = window.WebSocket;
  class Timed extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      if (!String(url).includes("/realtime?")) return;
      this.addEventListener("message", (event) => {
        const now = performance.now();
        // Answers to inputs sent before the run, and their timings, are not counted.
        if (typeof event.data !== "string") {
          if (wire.answers.length < wire.sends.length) wire.answers.push(now);
        }
        else if (event.data.includes('"timings"') && wire.timings.length < wire.answers.length) {
          wire.timings.push(JSON.parse(event.data).timing);
        }
      });
      this.falnbTimed = true;
    }
    send(data) {
      if (this.falnbTimed) wire.sends.push(performance.now());
      super.send(data);
    }
  }
  window.WebSocket = Timed;
})()"""
TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, str, float]]:
    """Every process: pid -> (parent pid, name, CPU seconds so far)."""
    found: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / TICK)
    return found


def cpu_by_group(server: int, lab: int) -> dict[str, float]:
    """CPU seconds so far of the server, JupyterLab, its kernels, Chromium and Playwright."""
    table = _processes()

    def below(root: int) -> list[int]:
        found, todo = [], [root]
        while todo:
            parent = todo.pop()
            children = [pid for pid, (ppid, _, _) in table.items() if ppid == parent]
            found += children
            todo += children
        return found

    ours = below(os.getpid())
    groups = {
        "server": [server],
        "lab": [lab],
        "kernel": below(lab),
        "chromium": [pid for pid in ours if "chrom" in table[pid][1]],
        "driver": [pid for pid in ours if table[pid][1].startswith("node")],
    }
    return {
        name: sum(table[pid][2] for pid in pids if pid in table) for name, pids in groups.items()
    }


# Kernel-side hop probes, prepended to the cell under --hops: one JSON line per event.
KERNEL_PROBES = """\
import json as _json, os as _os, threading as _threading, time as _time
import ipywidgets as _ipywidgets

_hops_fd = _os.open("hops.jsonl", _os.O_WRONLY | _os.O_CREAT | _os.O_TRUNC | _os.O_APPEND)

def _hop(event, **fields):
    fields.update(ev=event, t=_time.time() * 1000, thread=_threading.current_thread().name)
    _os.write(_hops_fd, (_json.dumps(fields, default=str) + "\\n").encode())

_handle_msg = _ipywidgets.Widget._handle_msg

def _probe_handle_msg(self, msg):
    state = msg["content"]["data"].get("state") or {}
    if "value" in state:
        _hop("k_recv", id=msg["header"]["msg_id"])
    return _handle_msg(self, msg)

_ipywidgets.Widget._handle_msg = _probe_handle_msg
_kernel = get_ipython().kernel
_session_send = _kernel.session.send

def _probe_send(stream, msg_or_type, content=None, parent=None, *args, **kwargs):
    sent = _session_send(stream, msg_or_type, content, parent, *args, **kwargs)
    if stream is _kernel.iopub_socket and isinstance(sent, dict):
        content = sent.get("content") or {}
        _hop("k_iopub", id=sent["header"]["msg_id"], type=sent["header"]["msg_type"],
             parent=(sent.get("parent_header") or {}).get("msg_id"),
             state=content.get("execution_state"),
             frame=["frame"] in ((content.get("data") or {}).get("buffer_paths") or []))
    return sent

_kernel.session.send = _probe_send
"""
KERNEL_PROBES_AFTER = """
_request = realtime.driver.request

def _probe_request(inputs):
    _hop("k_request", v=inputs.get("strength"))
    _request(inputs)

realtime.driver.request = _probe_request
"""
# Page-side hop probes: the kernel connection's messages both ways (after deserialising).
PAGE_PROBES = """() => {
  const hops = [];
  window.falnbHops = hops;
  const now = () => performance.timeOrigin + performance.now();
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  kernel.anyMessage.connect((_, { msg, direction }) => {
    const type = msg.header.msg_type;
    if (direction === "send" && type === "comm_msg") {
      const state = msg.content.data.state || {};
      if ("value" in state) hops.push(["b_send", now(), msg.header.msg_id, state.value]);
    } else if (direction === "recv" && (type === "status" || type === "comm_msg")) {
      const parent = msg.parent_header.msg_id || "";
      hops.push(["b_recv", now(), msg.header.msg_id, parent, msg.content.execution_state || ""]);
    }
  });
}"""
# Lab config for --lab-nodelay: TCP_NODELAY on every kernel websocket.
NODELAY_CONFIG = """\
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler

_open = KernelWebsocketHandler.open


async def _open_nodelay(self, *args, **kwargs):
    self.set_nodelay(True)
    return await _open(self, *args, **kwargs)


KernelWebsocketHandler.open = _open_nodelay
"""


def start_server(directory: Path) -> FalnbServer:
    port, key = free_port(), "bench-" + secrets.token_hex(8)
    log = (directory / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "falnb.cli", "serve", "--port", str(port), "--key", key],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = FalnbServer(f"http://127.0.0.1:{port}", key, process)
    wait_until(
        lambda: httpx.get(f"{server.base_url}/_falnb/health", timeout=1).status_code == 200,
        timeout=30,
        what="falnb serve",
    )
    return server


def answered(keys: list[float], frames: list[tuple[float, int]]) -> list[float]:
    """Per key press k (value (k+1)*STEP): time to the first frame at that value or newer."""
    latencies: list[float] = []
    done = 0
    for shown_at, index in frames:
        while done <= index and done < len(keys):
            latencies.append(shown_at - keys[done])
            done += 1
    return latencies


def in_browser(
    lab: LabServer,
    seconds: float,
    rate: float,
    *,
    hops: bool = False,
    direct: bool = False,
    cpu: Callable[[], dict[str, float]] | None = None,
) -> tuple[float, list[float], int, dict[str, Any]]:
    """fps, slider-to-frame latencies (s), key presses and the raw log: hops (``hops``), the
    page's socket's timestamps (``direct`` with ``cpu``) and CPU seconds per frame (``cpu``).

    ``direct``: the browser-direct widget (its own slider and socket) instead of the kernel
    path's; hop probes are for the kernel path only. ``cpu``: reads each process group's CPU
    seconds so far (``cpu_by_group``), taken around the slider's run.
    """
    hops = hops and not direct
    cell = KERNEL_PROBES + CELL.removesuffix("realtime") + KERNEL_PROBES_AFTER + "realtime"
    write_notebook(lab.root, "bench.ipynb", [DIRECT_CELL if direct else cell if hops else CELL])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        if direct and cpu is not None:
            context.add_init_script(WIRE)
        page = context.new_page()
        page.goto(lab.notebook_url("bench.ipynb"))
        expect(page.get_by_text(IDLE)).to_be_visible(timeout=60_000)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        expect(page.locator(".falnb-realtime-frame")).to_be_visible(timeout=60_000)
        if direct:
            transport = page.locator(".falnb-realtime-transport")
            expect(transport).to_have_text("browser-direct", timeout=60_000)
        page.locator(DRAWN_SLIDER if direct else IPYWIDGETS_SLIDER).first.focus()
        page.evaluate(INSTALL)
        if hops:
            page.evaluate(PAGE_PROBES)
        if direct and cpu is not None:
            page.evaluate(
                "() => { for (const list of Object.values(window.falnbWire)) list.length = 0; }"
            )
        cpu_before = cpu() if cpu is not None else {}
        started = time.perf_counter()
        presses = 0
        while time.perf_counter() - started < seconds and presses < round(1 / STEP) - 1:
            page.keyboard.press("ArrowRight")
            presses += 1
            time.sleep(max(0.0, started + presses / rate - time.perf_counter()))
        final = f"strength={presses * STEP:.3f}".rstrip("0").rstrip(".")
        caption = page.locator(".falnb-realtime-caption")
        wait_until(
            lambda: _value(caption.text_content() or "") == presses,
            timeout=30,
            what=f"the frame for {final}",
        )
        data: dict[str, Any] = page.evaluate("window.falnbBench")
        raw: dict[str, Any] = {}
        if cpu is not None:
            after, shown = cpu(), max(1, len(data["frames"]))
            raw["cpu_per_frame"] = {k: (after[k] - v) / shown for k, v in cpu_before.items()}
            raw["cpu_window"] = (time.perf_counter() - started, shown, presses)
            if direct:
                raw["wire"] = page.evaluate("window.falnbWire")
                raw["keys"], raw["frames"] = data["keys"], [t for t, _ in data["frames"]]
        if hops:
            origin = page.evaluate("performance.timeOrigin")
            raw |= {
                "page": page.evaluate("window.falnbHops"),
                "kernel": [json.loads(line) for line in (lab.root / "hops.jsonl").open()],
                # The bench's own timestamps, moved onto the same (epoch ms) clock.
                "keys": [origin + t for t in data["keys"]],
                "frames": [[origin + t, text] for t, text in data["frames"]],
            }
        browser.close()
    keys = [t / 1000 for t in data["keys"]]
    frames = [(t / 1000, _value(text) - 1) for t, text in data["frames"]]
    frames = [(t, index) for t, index in frames if index >= 0]
    elapsed = frames[-1][0] - keys[0]
    return len(frames) / elapsed, answered(keys, frames), presses, raw


def hop_table(raw: dict[str, Any]) -> list[tuple[str, list[float]]]:
    """Per-hop durations (ms) from one --hops run, in the order a key press travels."""
    page, kernel, keys = raw["page"], raw["kernel"], raw["keys"]

    def steps(value: Any) -> int:
        return round(float(value) / STEP)

    sent = {e[2]: (e[1], steps(e[3])) for e in page if e[0] == "b_send"}
    arrived = {e[2]: e[1] for e in page if e[0] == "b_recv"}
    idle_for = {e[3]: e[1] for e in page if e[0] == "b_recv" and e[4] == "idle"}
    handled = {e["id"]: e["t"] for e in kernel if e["ev"] == "k_recv"}
    requested: dict[int, float] = {}
    for e in kernel:
        if e["ev"] == "k_request" and e["v"] is not None:
            requested.setdefault(steps(e["v"]), e["t"])
    published = [e for e in kernel if e["ev"] == "k_iopub"]
    idle = {e["parent"]: (e["id"], e["t"]) for e in published if e["state"] == "idle"}
    frame_msgs = [e for e in published if e["frame"]]
    shown = [(t, _value(text)) for t, text in raw["frames"]]
    key_to_send = [t - keys[n - 1] for t, n in sent.values() if 0 < n <= len(keys)]
    up = [handled[i] - t for i, (t, _) in sent.items() if i in handled]
    kernel_idle = [idle[i][1] - handled[i] for i in handled if i in idle]
    model: list[float] = []  # includes waiting for the exchange already in flight
    down: list[float] = []
    render: list[float] = []
    for t_shown, n in shown:
        landed = [e for e in frame_msgs if arrived.get(e["id"], t_shown + 1) <= t_shown]
        if not landed or n not in requested:
            continue
        message = landed[-1]
        model.append(message["t"] - requested[n])
        down.append(arrived[message["id"]] - message["t"])
        render.append(t_shown - arrived[message["id"]])
    back = [arrived[i] - t for i, t in idle.values() if i in arrived]
    throttle = [idle_for[i] - t for i, (t, _) in sent.items() if i in idle_for]
    return [
        ("keydown -> slider comm_msg sent (JS throttle)", key_to_send),
        ("slider comm_msg: browser -> kernel handler", up),
        ("kernel: handler -> idle published", kernel_idle),
        ("idle status: kernel -> browser", back),
        ("slider comm_msg sent -> its idle in browser", throttle),
        ("value requested -> its frame published (kernel)", model),
        ("frame message: kernel -> browser", down),
        ("frame message -> <img src> set (JS: blob URL, decode)", render),
    ]


def _value(caption: str) -> int:
    """The number of steps the caption's ``strength=`` is at (-1 when it names none)."""
    match = re.search(r"strength=([0-9.]+)", caption)
    return round(float(match.group(1)) / STEP) if match else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=30.0, help="key presses per second")
    parser.add_argument("--size", type=int, default=512, help="input picture side, pixels")
    parser.add_argument("--hops", action="store_true", help="time each hop of a key press")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="time browser-direct frames on the page's socket; CPU per frame by process",
    )
    parser.add_argument(
        "--lab-nodelay",
        action="store_true",
        help="also run with TCP_NODELAY on JupyterLab's kernel websockets",
    )
    args = parser.parse_args()
    if not CHROMIUM.exists():  # not a failure of `make bench`: there is nothing to measure
        print(f"skipped: {CHROMIUM} is missing (apt-get install chromium)")
        return
    image = bench_realtime.picture(args.size)
    browser: dict[str, tuple[float, list[float], int, dict[str, Any]]] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="falnb-bench-") as tmp:
        directory = Path(tmp)
        server = start_server(directory)
        try:
            browser.update(lab_run(server, directory / "lab", image, args, nodelay=False))
            if args.lab_nodelay:
                runs = lab_run(server, directory / "nodelay", image, args, nodelay=True)
                browser["nodelay"] = runs["kernel"]
            with SyncClient(Target.local(server.base_url, server.key)) as client:
                fps_direct, lat_direct = bench_realtime.direct(client, image, args.seconds)
                fps_widget, lat_widget, _, _ = bench_realtime.widget(
                    client, image, args.seconds, args.rate
                )
        finally:
            stop_process(server.process)
    levels = {"direct": (fps_direct, lat_direct), "widget": (fps_widget, lat_widget)}
    levels.update({name: (fps, latencies) for name, (fps, latencies, _, _) in browser.items()})
    report(args, levels)
    presses = browser["kernel"][2], browser["bdirect"][2]
    print(
        f"  kernel, bdirect: {presses[0]}, {presses[1]} ArrowRight presses at {args.rate:g} Hz"
        " (latest wins); kernel = ipywidgets slider through the kernel, bdirect = the"
        " widget's own slider and socket (browser-direct)"
    )
    load_after = os.getloadavg()
    print(
        "  load average (1, 5, 15 min) before "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in load_after)
        + f"; {os.cpu_count()} CPUs"
    )
    if args.lab_nodelay:
        print("  nodelay: the same in a JupyterLab whose kernel websockets set TCP_NODELAY")
    for name, (_, latencies, _, raw) in browser.items():
        if "page" in raw:
            print_hops(name, raw, statistics.median(latencies) * 1000.0)
        if "cpu_per_frame" in raw:
            print_breakdown(name, raw)


def lab_run(
    server: FalnbServer, directory: Path, image: bytes, args: Any, *, nodelay: bool
) -> dict[str, tuple[float, list[float], int, dict[str, Any]]]:
    """One JupyterLab (optionally with TCP_NODELAY): the kernel path's run in it, then (not
    with ``nodelay``) the browser-direct one."""
    if nodelay:
        (directory / "home" / "config").mkdir(parents=True)
        (directory / "home" / "config" / "jupyter_server_config.py").write_text(NODELAY_CONFIG)
    lab = start_lab(server, directory / "root", directory / "home")
    cpu = None
    if args.breakdown:
        cpu = functools.partial(cpu_by_group, server.process.pid, lab.process.pid)
    try:
        (lab.root / "bench.png").write_bytes(image)
        runs = {"kernel": in_browser(lab, args.seconds, args.rate, hops=args.hops, cpu=cpu)}
        if not nodelay:
            runs["bdirect"] = in_browser(lab, args.seconds, args.rate, direct=True, cpu=cpu)
        return runs
    finally:
        stop_process(lab.process)


def print_hops(name: str, raw: dict[str, Any], measured: float) -> None:
    print(f"  hops ({name}): median ms per hop [count]; slider hops are per comm message")
    for label, values in hop_table(raw):
        median = f"{statistics.median(values):6.1f}" if values else "   n/a"
        print(f"    {label:<56} {median} [{len(values)}]")
    print(f"    {'keydown -> <img src> (measured above)':<56} {measured:6.1f}")


def print_breakdown(name: str, raw: dict[str, Any]) -> None:
    """Where a frame's time and CPU go (one --breakdown run)."""
    cpu = ", ".join(
        f"{group} {seconds * 1000:.1f}" for group, seconds in raw["cpu_per_frame"].items()
    )
    seconds, shown, presses = raw["cpu_window"]
    print(
        f"  cpu ({name}): ms of CPU per frame shown ({shown} frames, {presses} key presses in"
        f" {seconds:.1f} s): {cpu}"
    )
    wire = raw.get("wire")
    if not wire:
        return
    sends, answers, frames = wire["sends"], wire["answers"], raw["frames"]

    def after(t: float, times: list[float]) -> float | None:
        return next((u - t for u in times if u >= t), None)

    def median(values: list[float | None]) -> str:
        known = [v for v in values if v is not None]
        return f"{statistics.median(known):6.1f} [{len(known)}]" if known else "   n/a"

    # One input in flight: the i-th answer is the i-th input's.
    trips = [a - t for t, a in zip(sends, answers, strict=False)]
    server = [t * 1000 for t in wire["timings"]]
    rows = [
        (
            "key press -> its input sent (waits for the one in flight)",
            [after(k, sends) for k in raw["keys"]],
        ),
        ("input sent -> answer received (round trip)", trips),
        ("  of which the server's handler + msgpack", server),
        (
            "  of which the rest (socket both ways, scheduling)",
            [t - v for t, v in zip(trips, server, strict=False)],
        ),
        ("answer received -> <img src> set (decode, swap)", [after(a, frames) for a in answers]),
        ("answer received -> next input sent", [after(a, sends) for a in answers]),
    ]
    print(f"  breakdown ({name}): median ms [count], on the page's realtime socket")
    for label, values in rows:
        print(f"    {label:<60} {median(values)}")


def report(args: Any, levels: dict[str, tuple[float, list[float]]]) -> None:
    ms = 1000.0
    medians = {name: statistics.median(latencies) * ms for name, (_, latencies) in levels.items()}
    print(
        f"realtime {bench_realtime.ENDPOINT}, {args.size}x{args.size} input, {args.seconds:g} s"
        f" each, slider at {args.rate:g} Hz (direct: back-to-back round trips)"
    )
    for name, (fps, latencies) in levels.items():
        p95 = bench_realtime.percentile(latencies, 0.95) * ms
        print(
            f"  {name:<7}: {fps:6.1f} fps   latency median {medians[name]:6.1f} ms"
            f"  p95 {p95:6.1f} ms"
        )
    fps = {name: levels[name][0] for name in levels}
    print(
        f"  ratios : bdirect/kernel fps {fps['bdirect'] / fps['kernel']:.2f}, median latency"
        f" {medians['bdirect'] / medians['kernel']:.2f};"
        f" kernel/widget fps {fps['kernel'] / fps['widget']:.2f},"
        f" median latency {medians['kernel'] / medians['widget']:.2f};"
        f" bdirect/direct fps {fps['bdirect'] / fps['direct']:.2f},"
        f" median latency {medians['bdirect'] / medians['direct']:.2f}"
    )
    goals = fps["bdirect"] >= 30.0, medians["bdirect"] <= 50.0
    print(
        f"  goals  : browser-direct >= 30 fps {'met' if goals[0] else 'NOT met'},"
        f" slider-to-frame median <= 50 ms {'met' if goals[1] else 'NOT met'}"
    )


if __name__ == "__main__":
    main()

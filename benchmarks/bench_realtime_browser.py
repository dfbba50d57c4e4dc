"""Realtime figures in a real browser, beside the client-level ones (figures, not pass/fail).

Run: ``.venv/bin/python benchmarks/bench_realtime_browser.py [--seconds S] [--rate HZ]
[--rounds N] [--size PX] [--hops] [--lab-nodelay] [--breakdown]``
(needs ``/usr/bin/chromium``).

It starts ``falnb serve`` and JupyterLab on loopback, opens a notebook holding a ``Realtime``
widget in headless Chromium and, once the machine is quiet (the page has loaded), drags the
slider's handle to the right a pixel per step at ``--rate`` Hz (default 60: inputs are offered
faster than the 30 fps goal, as a hand dragging a slider moves it on every screen refresh;
each step is one trusted mouse event through Chromium's DevTools protocol). The widget sends
latest-wins, so moves made while an input is in flight are superseded by the next, and only
the newest is sent. In the page, a MutationObserver timestamps every move (the slider's
readout, rewritten in the task that moves it) and every frame shown (the frame element's
``data-frames`` changes in the same task as the picture and its caption, which names the
value the frame answers).

* fps: frames shown over the frames' own span (first frame shown to last frame shown), so
  neither the driver's rate nor the wait for the last frame caps it;
* latency: for each answered move (a move whose own value a frame showed), the time from the
  move to that frame; superseded moves are counted, not timed.

Why a drag and not a held arrow key: Chromium defers a page's other tasks (socket messages
among them) after each discrete input such as a keydown until the next frame is drawn, so
keydowns at the screen's own rate can starve the page's realtime socket for whole seconds
(a round of 6 fps against 55-60 fps with ``--disable-features=DeferRendererTasksAfterInput``);
a drag is continuous input, which it does not defer, and is how a slider is moved.

Two widgets are measured with the same driver, each in its own page of the same JupyterLab:
``kernel``, an ipywidgets slider on the kernel path (every move and frame crosses the
kernel), and ``bdirect``, the widget's own slider on its own socket (browser-direct, issue 17:
moves and frames skip the kernel). ``--rounds`` rounds, the two in alternating order; each
figure is the median over rounds. The same server then runs the client-level measurements of
``bench_realtime.py`` (direct connection and widget in this process), and the figures are
printed side by side with ratios, and the machine's load average before and after.

``--hops`` also timestamps every hop on one clock (the page's ``performance.timeOrigin +
now()`` and the kernel's ``time.time()``, both this machine's wall clock) and prints where a
slider move's time goes: the slider's comm message (ipywidgets sends one at a time, the next
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect, sync_playwright

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests" / "browser")]

import bench_realtime  # noqa: E402 - beside this file
from _harness import paired_ratio  # noqa: E402 - beside this file
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
# --keys: a keydown of ArrowRight as Chromium's DevTools protocol takes it (a key with no text).
ARROW_RIGHT = {
    "type": "rawKeyDown",
    "key": "ArrowRight",
    "code": "ArrowRight",
    "windowsVirtualKeyCode": 39,
}
DRAWN_SLIDER = ".falnb-realtime-drawn input[type=range]"

# Timestamps in the page's own clock: every move of the slider (its readout, which both
# sliders rewrite in the task that moves them, with the value moved to), and every new frame
# with its caption (the view sets the frame's data-frames, its picture and the caption in one
# task, so the caption names the value the frame answers).
INSTALL = """() => {
  const bench = { moves: [], frames: [] };
  window.falnbBench = bench;
  const READOUT = ".falnb-realtime-readout, .widget-readout";
  new MutationObserver((records) => {
    const now = performance.now();
    for (const record of records) {
      const node = record.target;
      const element = node.nodeType === Node.TEXT_NODE ? node.parentElement : node;
      if (record.type === "attributes") {
        const frame = element.classList.contains("falnb-realtime-frame");
        if (!frame || !element.dataset.frames) continue;
        const caption = document.querySelector(".falnb-realtime-caption");
        bench.frames.push([now, caption ? caption.textContent : ""]);
      } else if (element?.matches(READOUT)) {
        const moves = bench.moves;
        const text = element.textContent;
        if (!moves.length || moves[moves.length - 1][1] !== text) moves.push([now, text]);
      }
    }
  }).observe(document.body, {
    subtree: true, attributes: true, attributeFilter: ["data-frames"], characterData: true,
    childList: true,
  });
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


def _chromium_type(pid: int) -> str:
    try:
        # Chromium rewrites its title: the switches may be one space-separated string.
        argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").split()
    except OSError:
        return "other"
    kind = next((a[7:].decode() for a in argv if a.startswith(b"--type=")), "browser")
    return kind if kind in ("browser", "renderer", "gpu-process") else "other"


def _busy() -> float:
    """The whole machine's busy CPU seconds so far (every process: what the cores gave)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / TICK


def settle(share: float = 0.25, window: float = 0.25, timeout: float = 15.0) -> None:
    """Wait until the machine is busy for under ``share`` of one core over a ``window`` (the
    page has finished loading: JupyterLab, the kernel and Chromium still start up for a few
    seconds after the widget shows), ``timeout`` seconds at most."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        before = _busy()
        time.sleep(window)
        if _busy() - before < share * window:
            return


def cpu_by_group(server: int, lab: int) -> dict[str, float]:
    """CPU seconds so far of the server, JupyterLab, its kernels, Chromium (and each of its
    processes by type), Playwright, and the whole machine (busy time, every process)."""
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
    # Chromium by process: the browser, the page's renderer, the GPU process (software
    # compositing here: --disable-gpu), the rest (network, storage).
    for pid in groups["chromium"]:
        kind = _chromium_type(pid)
        groups.setdefault(f"chromium:{kind}", []).append(pid)
    seconds = {
        name: sum(table[pid][2] for pid in pids if pid in table) for name, pids in groups.items()
    }
    return seconds | {"machine": _busy()}


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


@dataclass(frozen=True)
class Run:
    """One widget's slider run in one page: what the figures are made of."""

    moves: list[tuple[float, int]]  # (when, the value in steps): each move of the slider
    frames: list[tuple[float, int]]  # (shown at, the value in steps it shows)
    raw: dict[str, Any]

    @property
    def fps(self) -> float:
        """Frames shown over their own span, first to last (0 with fewer than two)."""
        if len(self.frames) < 2:
            return 0.0
        return (len(self.frames) - 1) / (self.frames[-1][0] - self.frames[0][0])

    @property
    def latencies(self) -> list[float]:
        """For each answered move (its own value shown): the move to that frame (s)."""
        moved = {value: t for t, value in reversed(self.moves)}  # a value's first move
        return [t - moved[value] for t, value in self.frames if value in moved]

    @property
    def moved(self) -> int:
        return len(self.moves)

    @property
    def close_pairs(self) -> int:
        """Frames replaced within one 60 Hz screen refresh: perhaps never on screen (counted
        as shown all the same; printed so that a figure they inflate says so)."""
        pairs = zip(self.frames, self.frames[1:], strict=False)
        return sum(1 for a, b in pairs if b[0] - a[0] < 1 / 60)


def in_browser(
    lab: LabServer,
    seconds: float,
    rate: float,
    *,
    hops: bool = False,
    direct: bool = False,
    keys: bool = False,
    cpu: Callable[[], dict[str, float]] | None = None,
) -> Run:
    """One slider run, with its raw log: hops (``hops``), the page's socket's timestamps
    (``direct`` with ``cpu``) and CPU seconds per frame (``cpu``).

    ``direct``: the browser-direct widget (its own slider and socket) instead of the kernel
    path's; hop probes are for the kernel path only. ``keys``: ArrowRight held on the focused
    slider (one keydown per step, a key's auto-repeat) instead of a drag. ``cpu``: reads each
    process group's CPU seconds so far (``cpu_by_group``), taken around the slider's run.
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
        handle = page.locator(DRAWN_SLIDER if direct else IPYWIDGETS_SLIDER).first
        handle.scroll_into_view_if_needed()
        box = handle.bounding_box()
        assert box is not None
        # Where the handle sits at 0 (the drawn slider's thumb is at its left end).
        x = box["x"] + (box["height"] / 2 if direct else box["width"] / 2)
        y = box["y"] + box["height"] / 2
        page.evaluate(INSTALL)
        settle()
        if hops:
            page.evaluate(PAGE_PROBES)
        if direct and cpu is not None:
            page.evaluate(
                "() => { for (const list of Object.values(window.falnbWire)) list.length = 0; }"
            )
        # A drag: the handle pressed, then moved right a pixel at a time, one trusted mouse
        # event per step through Chromium's DevTools protocol, then released. Or (``keys``)
        # the focused slider's ArrowRight held: a keydown per step, then its keyup.
        session = context.new_cdp_session(page)

        def mouse(kind: str, at: float) -> None:
            event = {"type": kind, "x": at, "y": y, "button": "left", "clickCount": 1}
            session.send("Input.dispatchMouseEvent", event | {"buttons": 1})

        def step(number: int) -> None:
            if keys:
                session.send("Input.dispatchKeyEvent", ARROW_RIGHT | {"autoRepeat": number > 1})
            else:
                mouse("mouseMoved", x + number)

        if keys:
            handle.focus()
        else:
            mouse("mousePressed", x)
        cpu_before = cpu() if cpu is not None else {}
        started = time.perf_counter()
        steps = 0
        while time.perf_counter() - started < seconds:
            steps += 1
            step(steps)
            time.sleep(max(0.0, started + steps / rate - time.perf_counter()))
        if keys:
            session.send("Input.dispatchKeyEvent", ARROW_RIGHT | {"type": "keyUp"})
        else:
            mouse("mouseReleased", x + steps)
        moves = page.evaluate("window.falnbBench.moves")
        if not moves:
            raise RuntimeError(f"the {'keys' if keys else 'drag'} did not move the slider")
        final = _steps(moves[-1][1])
        caption = page.locator(".falnb-realtime-caption")
        wait_until(
            lambda: _value(caption.text_content() or "") == final,
            timeout=30,
            what=f"the frame for the last move ({moves[-1][1]})",
        )
        data: dict[str, Any] = page.evaluate("window.falnbBench")
        moved = len(data["moves"])
        raw: dict[str, Any] = {}
        if cpu is not None:
            after, shown = cpu(), max(1, len(data["frames"]))
            raw["cpu_per_frame"] = {k: (after.get(k, v) - v) / shown for k, v in cpu_before.items()}
            raw["cpu_window"] = (time.perf_counter() - started, shown, moved)
            if direct:
                raw["wire"] = page.evaluate("window.falnbWire")
                raw["move_times"] = [t for t, _ in data["moves"]]
                raw["frames"] = [t for t, _ in data["frames"]]
        if hops:
            origin = page.evaluate("performance.timeOrigin")
            raw |= {
                "page": page.evaluate("window.falnbHops"),
                "kernel": [json.loads(line) for line in (lab.root / "hops.jsonl").open()],
                # The bench's own timestamps, moved onto the same (epoch ms) clock.
                "moves": [[origin + t, _steps(text)] for t, text in data["moves"]],
                "frames": [[origin + t, text] for t, text in data["frames"]],
            }
        browser.close()
    # The notebook's kernel would serve the next run of the same notebook: a kernel-path run
    # after it would meet the old widgets and probes (the hop probes wrapped twice recursed on
    # every message, and its run-all never returned: the 3-round --hops hang).
    lab.shut_down_kernels()
    moves = [(t / 1000, _steps(text)) for t, text in data["moves"]]
    frames = [(t / 1000, _value(text)) for t, text in data["frames"]]
    # Frames answering this run's moves (not a first frame the page drew before them).
    return Run(moves, [(t, value) for t, value in frames if value > 0], raw)


def hop_table(raw: dict[str, Any]) -> list[tuple[str, list[float]]]:
    """Per-hop durations (ms) from one --hops run, in the order a slider move travels."""
    page, kernel = raw["page"], raw["kernel"]
    moved = {value: t for t, value in reversed(raw["moves"])}  # a value's first move

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
    move_to_send = [t - moved[n] for t, n in sent.values() if n in moved]
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
        ("move -> slider comm_msg sent (JS throttle)", move_to_send),
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
    return _steps(match.group(1)) if match else -1


def _steps(readout: str) -> int:
    """A slider readout (``0.123``) in steps."""
    return round(float(readout) / STEP)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="slider run per round")
    parser.add_argument("--rate", type=float, default=60.0, help="slider moves per second")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; figures are medians")
    parser.add_argument("--size", type=int, default=512, help="input picture side, pixels")
    parser.add_argument("--hops", action="store_true", help="time each hop of a slider move")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="time browser-direct frames on the page's socket; CPU per frame by process",
    )
    parser.add_argument(
        "--keys",
        action="store_true",
        help="hold ArrowRight on the focused slider (a keydown per move) instead of dragging it",
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
    browser: dict[str, list[Run]] = {}
    levels: dict[str, list[tuple[float, list[float]]]] = {"direct": [], "widget": []}
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
                for _ in range(args.rounds):
                    levels["direct"].append(bench_realtime.direct(client, image, args.seconds))
                    fps, latencies, _, _ = bench_realtime.widget(
                        client, image, args.seconds, args.rate
                    )
                    levels["widget"].append((fps, latencies))
        finally:
            stop_process(server.process)
    levels.update({name: [(r.fps, r.latencies) for r in runs] for name, runs in browser.items()})
    report(args, levels)
    for name in ("kernel", "bdirect"):
        runs = browser[name]
        frames = sum(len(r.frames) for r in runs)
        close = sum(r.close_pairs for r in runs)
        moved = sum(r.moved for r in runs)
        achieved = statistics.median(r.moved / args.seconds for r in runs)
        print(
            f"  {name}: {frames} frames ({close} replaced within 1/60 s) for {moved}"
            f" slider moves over {len(runs)}"
            f" rounds (driver asked {args.rate:g} Hz, gave {achieved:.1f}; latest wins);"
            " per round fps "
            + ", ".join(f"{r.fps:.1f}" for r in runs)
            + ", median ms "
            + ", ".join(f"{statistics.median(r.latencies) * 1000:.0f}" for r in runs)
        )
    print(
        "  kernel = ipywidgets slider through the kernel, bdirect = the widget's own slider and"
        " socket (browser-direct); fps over the frames' own span, latency per answered move"
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
    for name, runs in browser.items():
        raws = [r.raw for r in runs]
        if "page" in raws[0]:
            measured = statistics.median(t for r in runs for t in r.latencies) * 1000.0
            print_hops(name, raws, measured)
        if "cpu_per_frame" in raws[0]:
            print_breakdown(name, runs)


def lab_run(
    server: FalnbServer, directory: Path, image: bytes, args: Any, *, nodelay: bool
) -> dict[str, list[Run]]:
    """One JupyterLab (optionally with TCP_NODELAY): ``args.rounds`` rounds of the kernel
    path's run in it and (not with ``nodelay``) the browser-direct one, in alternating order."""
    if nodelay:
        (directory / "home" / "config").mkdir(parents=True)
        (directory / "home" / "config" / "jupyter_server_config.py").write_text(NODELAY_CONFIG)
    lab = start_lab(server, directory / "root", directory / "home")
    cpu = None
    if args.breakdown:
        cpu = functools.partial(cpu_by_group, server.process.pid, lab.process.pid)
    names = ["kernel"] if nodelay else ["kernel", "bdirect"]
    runs: dict[str, list[Run]] = {name: [] for name in names}
    try:
        (lab.root / "bench.png").write_bytes(image)
        for round_ in range(args.rounds):
            for name in names if round_ % 2 == 0 else names[::-1]:
                direct = name == "bdirect"
                runs[name].append(
                    in_browser(
                        lab,
                        args.seconds,
                        args.rate,
                        hops=args.hops,
                        direct=direct,
                        keys=args.keys,
                        cpu=cpu,
                    )
                )
        return runs
    finally:
        stop_process(lab.process)


def print_hops(name: str, raws: list[dict[str, Any]], measured: float) -> None:
    print(f"  hops ({name}): median ms per hop [count], all rounds; slider hops per comm message")
    tables = [hop_table(raw) for raw in raws]
    for i, (label, _) in enumerate(tables[0]):
        values = [v for table in tables for v in table[i][1]]
        median = f"{statistics.median(values):6.1f}" if values else "   n/a"
        print(f"    {label:<56} {median} [{len(values)}]")
    print(f"    {'move -> frame shown (measured above)':<56} {measured:6.1f}")


def print_breakdown(name: str, runs: list[Run]) -> None:
    """Where a frame's time and CPU go (--breakdown; CPU: medians over rounds, the socket's
    timings: all rounds' frames)."""
    per_frame = [r.raw["cpu_per_frame"] for r in runs]
    cpu = ", ".join(
        f"{group} {statistics.median(p.get(group, 0.0) for p in per_frame) * 1000:.1f}"
        for group in per_frame[0]
    )
    shown = sum(r.raw["cpu_window"][1] for r in runs)
    moved = sum(r.raw["cpu_window"][2] for r in runs)
    print(
        f"  cpu ({name}): ms of CPU per frame shown ({shown} frames, {moved} slider moves in"
        f" {len(runs)} rounds): {cpu}"
    )
    if "wire" not in runs[0].raw:
        return

    def after(t: float, times: list[float]) -> float | None:
        return next((u - t for u in times if u >= t), None)

    def median(values: list[float | None]) -> str:
        known = [v for v in values if v is not None]
        return f"{statistics.median(known):6.1f} [{len(known)}]" if known else "   n/a"

    labels = [
        "slider move -> its input sent (waits for the one in flight)",
        "input sent -> answer received (round trip)",
        "  of which the server's handler + msgpack",
        "  of which the rest (socket both ways, scheduling)",
        "answer received -> frame shown (decode, draw)",
        "answer received -> next input sent",
    ]
    rows: list[list[float | None]] = [[] for _ in labels]
    for run in runs:
        wire, frames = run.raw["wire"], run.raw["frames"]
        sends, answers = wire["sends"], wire["answers"]
        # One input in flight: the i-th answer is the i-th input's.
        trips = [a - t for t, a in zip(sends, answers, strict=False)]
        server = [t * 1000 for t in wire["timings"]]
        rows[0] += [after(k, sends) for k in run.raw["move_times"]]
        rows[1] += trips
        rows[2] += server
        rows[3] += [t - v for t, v in zip(trips, server, strict=False)]
        rows[4] += [after(a, frames) for a in answers]
        rows[5] += [after(a, sends) for a in answers]
    print(f"  breakdown ({name}): median ms [count], on the page's realtime socket")
    for label, values in zip(labels, rows, strict=True):
        print(f"    {label:<60} {median(values)}")


def report(args: Any, levels: dict[str, list[tuple[float, list[float]]]]) -> None:
    """One row per level (medians over rounds of fps, latency median and p95), then ratios
    (medians of the per-round ratios) and the goals."""
    ms = 1000.0
    fps_by = {name: [fps for fps, _ in rounds] for name, rounds in levels.items()}
    p50_by = {
        name: [statistics.median(lat) * ms for _, lat in rounds] for name, rounds in levels.items()
    }
    print(
        f"realtime {bench_realtime.ENDPOINT}, {args.size}x{args.size} input, {args.seconds:g} s"
        f" each, slider at {args.rate:g} Hz, medians of {args.rounds} rounds"
        " (direct: back-to-back round trips)"
    )
    for name, rounds in levels.items():
        p95 = statistics.median(bench_realtime.percentile(lat, 0.95) * ms for _, lat in rounds)
        print(
            f"  {name:<7}: {statistics.median(fps_by[name]):6.1f} fps   latency median"
            f" {statistics.median(p50_by[name]):6.1f} ms  p95 {p95:6.1f} ms"
        )

    def ratios(a: str, b: str) -> str:
        return (
            f"{a}/{b} fps {paired_ratio(fps_by[a], fps_by[b]):.2f},"
            f" median latency {paired_ratio(p50_by[a], p50_by[b]):.2f}"
        )

    print(
        f"  ratios : {ratios('bdirect', 'kernel')}; {ratios('kernel', 'widget')};"
        f" {ratios('bdirect', 'direct')} (medians of per-round ratios)"
    )
    fps, p50 = statistics.median(fps_by["bdirect"]), statistics.median(p50_by["bdirect"])
    print(
        f"  goals  : browser-direct >= 30 fps {'met' if fps >= 30.0 else 'NOT met'},"
        f" slider-to-frame median <= 50 ms {'met' if p50 <= 50.0 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()

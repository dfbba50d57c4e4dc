"""Realtime figures in a real browser, beside the client-level ones (figures, not pass/fail).

Run: ``.venv/bin/python benchmarks/bench_realtime_browser.py [--seconds S] [--rate HZ] [--size PX]``
(needs ``/usr/bin/chromium``).

It starts ``falnb serve`` and JupyterLab on loopback, opens a notebook holding a ``Realtime``
widget in headless Chromium, focuses the slider and presses ArrowRight at ``--rate`` Hz. In the
page, a MutationObserver timestamps every change of the frame's ``<img src>``; each key press
is answered by the first frame showing its value or a newer one (latest wins). The same
server then runs the client-level measurements of ``bench_realtime.py`` (direct connection
and widget in this process), and the figures are printed side by side with ratios.
"""

from __future__ import annotations

import argparse
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
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
)
realtime"""

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


def in_browser(lab: LabServer, seconds: float, rate: float) -> tuple[float, list[float], int]:
    """fps, slider-to-frame latencies (s) and key presses, measured in Chromium."""
    write_notebook(lab.root, "bench.ipynb", [CELL])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(lab.notebook_url("bench.ipynb"))
        expect(page.get_by_text(IDLE)).to_be_visible(timeout=60_000)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        expect(page.locator(".falnb-realtime-frame")).to_be_visible(timeout=60_000)
        page.locator(".widget-slider .noUi-handle").first.focus()
        page.evaluate(INSTALL)
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
        browser.close()
    keys = [t / 1000 for t in data["keys"]]
    frames = [(t / 1000, _value(text) - 1) for t, text in data["frames"]]
    frames = [(t, index) for t, index in frames if index >= 0]
    elapsed = frames[-1][0] - keys[0]
    return len(frames) / elapsed, answered(keys, frames), presses


def _value(caption: str) -> int:
    """The number of steps the caption's ``strength=`` is at (-1 when it names none)."""
    match = re.search(r"strength=([0-9.]+)", caption)
    return round(float(match.group(1)) / STEP) if match else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=30.0, help="key presses per second")
    parser.add_argument("--size", type=int, default=512, help="input picture side, pixels")
    args = parser.parse_args()
    if not CHROMIUM.exists():  # not a failure of `make bench`: there is nothing to measure
        print(f"skipped: {CHROMIUM} is missing (apt-get install chromium)")
        return
    image = bench_realtime.picture(args.size)
    with tempfile.TemporaryDirectory(prefix="falnb-bench-") as tmp:
        directory = Path(tmp)
        server = start_server(directory)
        lab: LabServer | None = None
        try:
            lab = start_lab(server, directory / "root", directory / "home")
            (lab.root / "bench.png").write_bytes(image)
            fps_browser, lat_browser, presses = in_browser(lab, args.seconds, args.rate)
            with SyncClient(Target.local(server.base_url, server.key)) as client:
                fps_direct, lat_direct = bench_realtime.direct(client, image, args.seconds)
                fps_widget, lat_widget, _, _ = bench_realtime.widget(
                    client, image, args.seconds, args.rate
                )
        finally:
            if lab is not None:
                stop_process(lab.process)
            stop_process(server.process)
    report(args, (fps_direct, lat_direct), (fps_widget, lat_widget), (fps_browser, lat_browser))
    print(f"  browser: {presses} ArrowRight presses at {args.rate:g} Hz (latest wins)")


def report(args: Any, *levels: tuple[float, list[float]]) -> None:
    ms = 1000.0
    names = ("direct ", "widget ", "browser")
    medians = [statistics.median(latencies) * ms for _, latencies in levels]
    print(
        f"realtime {bench_realtime.ENDPOINT}, {args.size}x{args.size} input, {args.seconds:g} s"
        f" each, slider at {args.rate:g} Hz (direct: back-to-back round trips)"
    )
    for name, (fps, latencies), median in zip(names, levels, medians, strict=True):
        p95 = bench_realtime.percentile(latencies, 0.95) * ms
        print(f"  {name}: {fps:6.1f} fps   latency median {median:6.1f} ms  p95 {p95:6.1f} ms")
    (fps_d, _), (fps_w, _), (fps_b, _) = levels
    print(
        f"  ratios : browser/widget fps {fps_b / fps_w:.2f}, median latency"
        f" {medians[2] / medians[1]:.2f};"
        f" browser/direct fps {fps_b / fps_d:.2f}, median latency {medians[2] / medians[0]:.2f}"
    )


if __name__ == "__main__":
    main()

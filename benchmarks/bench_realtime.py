"""Realtime figures: frames per second and slider-to-frame latency (figures, not pass/fail).

Run: ``.venv/bin/python benchmarks/bench_realtime.py [--seconds S] [--rate HZ] [--size PX]``.

* direct: back-to-back send/recv on one realtime connection to ``local/image-to-image``
  (the ceiling: one input in flight, no widget);
* widget: a ``Realtime`` widget whose slider changes at ``--rate`` Hz (a fast drag), measured
  from each change to the first frame that answers it or a newer value (latest wins), plus
  how many changes were coalesced away.

Ratios compare the widget with the direct ceiling. Both run against an in-process local server.
``bench_realtime_browser.py`` adds the same figures measured in JupyterLab + Chromium.
"""

from __future__ import annotations

import argparse
import io
import statistics
import threading
import time

from ipywidgets import FloatSlider
from PIL import Image

from falnb import SyncClient
from falnb.local import LocalServer
from falnb.widgets._realtime_driver import Report
from falnb.widgets.realtime import Realtime

ENDPOINT = "local/image-to-image"


def picture(size: int) -> bytes:
    image = Image.new("RGB", (size, size), (30, 90, 160))
    for x in range(0, size, size // 8):
        image.paste((240, 190, 60), (x, size // 3, x + size // 16, 2 * size // 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def direct(client: SyncClient, image: bytes, seconds: float) -> tuple[float, list[float]]:
    latencies: list[float] = []
    with client.realtime(ENDPOINT) as connection:
        started = time.perf_counter()
        i = 0
        while time.perf_counter() - started < seconds:
            sent = time.perf_counter()
            strength = (i % 100) / 100
            connection.send({"image": image, "prompt": "a fox", "seed": 3, "strength": strength})
            connection.recv(timeout=30)
            latencies.append(time.perf_counter() - sent)
            i += 1
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


def widget(
    client: SyncClient, image: bytes, seconds: float, rate: float
) -> tuple[float, list[float], int, int]:
    slider = FloatSlider(0.0, min=0.0, max=1.0, step=0.001)
    realtime = Realtime(
        ENDPOINT,
        base={"image": image, "prompt": "a fox", "seed": 3},
        controls={"strength": slider},
        client=client,
    )
    assert realtime.wait_for_frame(30)
    changed_at: dict[float, float] = {}
    frames: list[tuple[float, float]] = []  # (time shown, value answered)
    lock = threading.Lock()
    report_frame = realtime._on_report

    def on_report(report: Report) -> None:
        before = realtime.last_frame
        report_frame(report)
        frame = realtime.last_frame
        if frame is not None and frame is not before:
            with lock:
                frames.append((time.perf_counter(), frame.inputs["strength"]))

    realtime.driver._on_report = on_report
    sent_before = realtime.stats["sent"]
    started = time.perf_counter()
    i = 0
    while time.perf_counter() - started < seconds:
        i += 1
        value = round((i % 1000) / 1000 + 0.0005, 4)
        changed_at[value] = time.perf_counter()
        slider.value = value
        time.sleep(max(0.0, started + i / rate - time.perf_counter()))
    final = slider.value
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline:
        with lock:
            if frames and frames[-1][1] == final:
                break
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    # Each change is answered by the first frame showing it or a newer value.
    order = list(changed_at)
    position = {value: k for k, value in enumerate(order)}
    latencies: list[float] = []
    with lock:
        shown = [(t, position[v]) for t, v in frames if v in position]
    answered = 0
    for t, k in shown:
        while answered <= k:
            latencies.append(t - changed_at[order[answered]])
            answered += 1
    sent = realtime.stats["sent"] - sent_before
    realtime.close()
    return len(shown) / elapsed, latencies, i, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=60.0, help="slider changes per second")
    parser.add_argument("--size", type=int, default=512, help="input picture side, pixels")
    args = parser.parse_args()
    image = picture(args.size)
    with LocalServer() as server, SyncClient(server.target) as client:
        fps_direct, lat_direct = direct(client, image, args.seconds)
        fps_widget, lat_widget, changes, sent = widget(client, image, args.seconds, args.rate)
    ms = 1000.0
    d_med, d_p95 = statistics.median(lat_direct) * ms, percentile(lat_direct, 0.95) * ms
    w_med, w_p95 = statistics.median(lat_widget) * ms, percentile(lat_widget, 0.95) * ms
    print(f"realtime {ENDPOINT}, {args.size}x{args.size} input, {args.seconds:g} s each")
    print(
        f"  direct : {fps_direct:6.1f} fps   round trip median {d_med:6.1f} ms  p95 {d_p95:6.1f} ms"
    )
    print(
        f"  widget : {fps_widget:6.1f} fps   slider-to-frame median {w_med:6.1f} ms"
        f"  p95 {w_p95:6.1f} ms"
    )
    print(
        f"  widget : {changes} slider changes at {args.rate:g} Hz, {sent} inputs sent (latest wins)"
    )
    print(
        f"  ratios : fps widget/direct {fps_widget / fps_direct:.2f},"
        f" median latency widget/direct {w_med / d_med:.2f}"
    )


if __name__ == "__main__":
    main()

"""Realtime figures: frames per second and slider-to-frame latency (figures, not pass/fail).

Run: ``.venv/bin/python benchmarks/bench_realtime.py [--seconds S] [--rate HZ] [--size PX]``.

* direct: back-to-back send/recv on one realtime connection to ``local/image-to-image``
  (the ceiling: one input in flight, no widget);
* echo: round trips per second on ``local/realtime-echo`` (no model: the transport alone),
  falnb's ``realtime`` connection beside a bare websockets + msgpack loop (token, socket,
  pack, send, receive, unpack), paired block by block (``echo_round_trips``, also run by
  ``benchmarks/suite.py``);
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
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ipywidgets import FloatSlider
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import median, paired, paired_ratio, serve

from falnb import SyncClient, Target
from falnb.local import LocalServer
from falnb.widgets._realtime_driver import Report
from falnb.widgets.realtime import Realtime

ENDPOINT = "local/image-to-image"
ECHO = "local/realtime-echo"


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


def echo_round_trips(target: Target, seconds: float, blocks: int) -> dict[str, Any]:
    """Round trips per second on the echo app: falnb beside a bare websockets + msgpack loop.

    Each block gives each contender ``seconds`` of back-to-back round trips on one open
    connection (opened before the block, so the handshake is not timed); order alternates.
    """
    import httpx
    import msgpack
    from websockets.sync.client import connect

    message = {"prompt": "a fox", "seed": 3, "strength": 0.5}
    token = httpx.post(
        f"{target.rest_url}/tokens/",
        json={"allowed_apps": ["realtime-echo"], "token_expiration": 600},
        headers={"Authorization": f"Key {target.key.reveal()}"},
    ).json()
    bare = connect(f"{target.realtime_url}/{ECHO}/realtime?fal_jwt_token={token}")
    client = SyncClient(target)
    ours = client.realtime(ECHO)

    def falnb_loop() -> int:
        ours.send(message)
        return 0 if ours.recv(timeout=30) is None else 1

    def bare_loop() -> int:
        bare.send(msgpack.packb(message))
        frame = bare.recv(timeout=30)
        while isinstance(frame, str):  # the server's JSON meta messages (timings)
            frame = bare.recv(timeout=30)
        return 1 if msgpack.unpackb(frame)["seed"] == 3 else 0

    def block(loop: Callable[[], int]) -> Callable[[int], tuple[float, float]]:
        """A block's round trips per second, and the client process's CPU per round trip
        (all its threads: websockets' reader thread and falnb's loop count too); the CPU
        figure holds up on a loaded machine, where the rate mostly measures scheduling."""

        def one(_index: int) -> tuple[float, float]:
            done, start, cpu = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - start < seconds:
                done += loop()
            cpu = time.process_time() - cpu
            return done / (time.perf_counter() - start), cpu / max(done, 1)

        return one

    for loop in (falnb_loop, bare_loop):  # warm up both sockets
        for _ in range(50):
            loop()
    figures = paired({"falnb": block(falnb_loop), "bare": block(bare_loop)}, blocks)
    ours.close()
    bare.close()
    client.close()
    rates = {name: [rate for rate, _ in runs] for name, runs in figures.items()}
    cpus = {name: [cpu for _, cpu in runs] for name, runs in figures.items()}
    return {
        "seconds_per_block": seconds,
        "blocks": blocks,
        "falnb_per_s": median(rates["falnb"]),
        "bare_per_s": median(rates["bare"]),
        "falnb/bare": paired_ratio(rates["falnb"], rates["bare"]),
        "falnb_cpu_us_per_round_trip": median(cpus["falnb"]) * 1e6,
        "bare_cpu_us_per_round_trip": median(cpus["bare"]) * 1e6,
        "falnb/bare cpu": paired_ratio(cpus["falnb"], cpus["bare"]),
    }


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
    with serve() as remote:  # its own process, as a client meets a server
        echo = echo_round_trips(remote.target(), 1.0, 6)
    print(
        f"  echo   : {echo['falnb_per_s']:6.0f} round trips/s falnb,"
        f" {echo['bare_per_s']:6.0f} bare websockets + msgpack;"
        f" falnb/bare {echo['falnb/bare']:.2f} (paired median)"
    )
    ours_us, bare_us = echo["falnb_cpu_us_per_round_trip"], echo["bare_cpu_us_per_round_trip"]
    print(
        f"  echo   : client CPU per round trip {ours_us:.0f} us falnb, {bare_us:.0f} us bare;"
        f" falnb/bare {echo['falnb/bare cpu']:.2f}"
    )


if __name__ == "__main__":
    main()

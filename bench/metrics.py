"""What counting costs per packet: the old global-lock StatsProjection next to kiln.metrics, same run.

The reference is the pre-refactor ``kiln/projections/stats.py`` kept verbatim in
``_stats_reference.py``: every packet took one process-wide lock and updated the server, vhost, app
and stream objects. The new path is what ``LiveStream.ingest`` now does: ``add_in`` on the stream's
own node (windows of the parents are closed from there at most once a second per node).

1. One ingest thread: ns per packet for ``bytes_in`` (old) vs ``add_in`` (new), and ns per
   ``bytes_out`` call (old vs new, by name as publishers call it); both include one clock read.
2. Many threads at once (``--streams`` ingest threads, one per stream, and as many publisher threads
   calling ``bytes_out``): packets/s over all threads for each implementation.
3. The price of composing at read time: ``server_json`` and ``stream_json`` with ``--streams`` streams.
Ratios are new/old for costs and new/old for rates. Nothing is asserted.

Usage: .venv/bin/python bench/metrics.py [--packets 300000] [--streams 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _control import machine, out, table  # noqa: E402
from _stats_reference import StatsProjection  # noqa: E402

from kiln.metrics import MetricsTree  # noqa: E402
from kiln.timefmt import now  # noqa: E402

PACKET = 1316  # a typical video packet share of a 3 Mbit/s stream


def setup(streams: int) -> tuple[StatsProjection, MetricsTree]:
    old, new = StatsProjection(), MetricsTree()
    for tree in (old, new):
        tree.vhost_created("default")
        tree.app_created("default", "app")
        for i in range(streams):
            tree.stream_created("default", "app", f"s{i}")
    return old, new


def per_call_ns(fn: Callable[[], None], calls: int) -> float:
    best = float("inf")
    for _ in range(3):  # best of three: the machine is shared
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / calls)
    return best


def single_thread(packets: int, streams: int) -> None:
    old, new = setup(streams)
    meter = new.ingest_meter("default", "app", "s0")

    def old_in() -> None:
        old.bytes_in("default", "app", "s0", PACKET)

    def new_in() -> None:
        meter.add_in(PACKET, now())

    def old_out() -> None:
        old.bytes_out("default", "app", "s0", PACKET)

    def new_out() -> None:
        new.bytes_out("default", "app", "s0", PACKET)

    def clock() -> None:
        now()

    base = per_call_ns(clock, packets)
    rows = []
    for what, before, after in (("bytes in (per packet)", old_in, new_in), ("bytes out (per call)", old_out, new_out)):
        o, n = per_call_ns(before, packets), per_call_ns(after, packets)
        rows.append([what, o, n, n / o])
    out(f"1. one thread, {packets:,} calls, best of 3 (a call that only reads the clock: {base:.0f} ns)")
    table(["path", "old ns", "new ns", "new/old"], rows)
    if old.stream_json("default", "app", "s0") is None:
        raise SystemExit("reference lost its stream")


def old_workers(old: StatsProjection, name: str, packets: int) -> list[Callable[[], None]]:
    def ingest() -> None:
        for _ in range(packets):
            old.bytes_in("default", "app", name, PACKET)

    def publish() -> None:
        for _ in range(packets):
            old.bytes_out("default", "app", name, PACKET)
    return [ingest, publish]


def new_workers(new: MetricsTree, name: str, packets: int) -> list[Callable[[], None]]:
    def ingest() -> None:
        meter = new.ingest_meter("default", "app", name)
        for _ in range(packets):
            meter.add_in(PACKET, now())

    def publish() -> None:
        for _ in range(packets):
            new.bytes_out("default", "app", name, PACKET)
    return [ingest, publish]


def contended(packets: int, streams: int) -> None:
    rows = []
    rates = {}
    for label in ("old", "new"):
        old, new = setup(streams)
        workers: list[Callable[[], None]] = []
        for i in range(streams):
            workers += old_workers(old, f"s{i}", packets) if label == "old" else new_workers(new, f"s{i}", packets)
        threads = [threading.Thread(target=w) for w in workers]
        start = time.perf_counter()
        cpu = time.process_time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        total = packets * len(workers)
        rates[label] = total / wall
        got = (old.server_json() if label == "old" else new.server_json())
        exact = got["totalBytesIn"] == got["totalBytesOut"] == packets * streams * PACKET
        rows.append([label, len(workers), total, wall, total / wall, cpu * 1e9 / total, "yes" if exact else "NO"])
    out(f"2. {streams} ingest + {streams} publisher threads, {packets:,} calls each")
    table(["impl", "threads", "calls", "wall s", "calls/s", "cpu ns/call", "exact totals"], rows)
    out(f"   new/old calls/s: {rates['new'] / rates['old']:.2f}")
    out()


def reads(streams: int) -> None:
    old, new = setup(streams)
    for i in range(streams):
        old.bytes_in("default", "app", f"s{i}", PACKET)
        new.ingest_meter("default", "app", f"s{i}").add_in(PACKET, now())
    rows = []
    for what, before, after in (
            ("server_json", old.server_json, new.server_json),
            ("stream_json", lambda: old.stream_json("default", "app", "s0"),
             lambda: new.stream_json("default", "app", "s0"))):
        o, n = per_call_ns(lambda f=before: f() and None, 2000), per_call_ns(lambda f=after: f() and None, 2000)
        rows.append([what, o / 1000, n / 1000, n / o])
    out(f"3. reads with {streams} streams (composed when read; HTTP pays this, never the packet path)")
    table(["read", "old µs", "new µs", "new/old"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packets", type=int, default=300_000)
    parser.add_argument("--streams", type=int, default=8)
    args = parser.parse_args()
    out(f"kiln bench/metrics.py  machine: {machine()}  load avg {os.getloadavg()[0]:.2f}  "
        f"python {sys.version.split()[0]}")
    out()
    single_thread(args.packets, args.streams)
    contended(args.packets // args.streams, args.streams)
    reads(args.streams)


if __name__ == "__main__":
    main()

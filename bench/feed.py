"""What following the journal costs the writer, and what a Prometheus scrape costs, same run.

1. Durable appends/s from ``--writers`` threads (fsync on) with no reader (the reference), with
   ``--tails`` live tails each read on an asyncio loop (as SSE clients and webhook deliveries read
   them), and with the same tails plus one that never reads (it is cut off, never waited for). The
   appender's p99 latency is shown next to it: a tail must not slow it.
2. Scrape: rendering ``/metrics`` (prometheus-client exposition of the metrics tree) with ``--streams``
   live streams, next to composing the same tree's ``/v1/stats`` JSON for the server and every stream
   (the reference: what the stats API does for the same figures).
Nothing is asserted.

Usage: .venv/bin/python bench/feed.py [--seconds 3] [--writers 8] [--tails 8] [--streams 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _control import filesystem_of, machine, out, percentile, table  # noqa: E402

from kiln.journal import Journal, NewRecord  # noqa: E402
from kiln.journal.feed import JournalFeed  # noqa: E402
from kiln.metrics.prometheus import Sources, exposition, registry_for  # noqa: E402
from kiln.metrics.tree import MetricsTree  # noqa: E402

RECORD = NewRecord("push:default/app/p1", "PushStateChanged", 1, {"id": "p1", "state": "started", "reason": ""})


class Readers:
    """Live tails read on their own event loop thread; ``read`` counts what they were handed."""

    def __init__(self, feed: JournalFeed, tails: int, idle: int) -> None:
        self.feed = feed
        self.read = 0
        self.cut = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.tasks: list[asyncio.Task[None]] = asyncio.run_coroutine_threadsafe(self._spawn(tails), self.loop).result()
        self.idle = [asyncio.run_coroutine_threadsafe(self._open_idle(), self.loop).result() for _ in range(idle)]

    async def _spawn(self, tails: int) -> list[asyncio.Task[None]]:
        return [asyncio.ensure_future(self._follow()) for _ in range(tails)]

    async def _cancel(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _follow(self) -> None:
        tail = self.feed.tail(self.feed.last_seq + 1)
        while True:
            batch = await tail.batch()
            if batch is None:
                self.cut += 1
                tail = self.feed.tail(tail.next_seq)
                continue
            self.read += len(batch)

    async def _open_idle(self) -> object:
        return self.feed.tail(self.feed.last_seq + 1)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cancel(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def appends(directory: Path, seconds: float, writers: int, tails: int, idle: int) -> list[object]:
    journal = Journal.open(directory, fsync=True)
    feed = JournalFeed(journal)
    readers = Readers(feed, tails, idle) if tails or idle else None
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def writer() -> None:
        mine = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            journal.append([RECORD]).result()
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    done = journal.last_seq
    deadline = time.monotonic() + 10
    while readers is not None and tails and readers.read < done * tails and time.monotonic() < deadline:
        time.sleep(0.01)
    read = readers.read if readers is not None else 0
    cut = feed.cut_offs
    if readers is not None:
        readers.close()
    journal.close()
    latencies.sort()
    label = "no reader (reference)" if not (tails or idle) else f"{tails} live tails" + (
        f" + {idle} open, never reading" if idle else "")
    return [label, done / elapsed, percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000,
            f"{read}/{done * tails}" if tails else "-", cut]


def scrape(streams: int, rounds: int = 20) -> list[list[object]]:
    tree = MetricsTree()
    tree.vhost_created("default")
    tree.app_created("default", "app")
    for i in range(streams):
        tree.stream_created("default", "app", f"s{i}")
        tree.ingest_meter("default", "app", f"s{i}").add_in(1316 * (i + 1), time.time())
        tree.connection("default", "app", f"s{i}", "llhls", 3)
    registry = registry_for(Sources(tree=tree))

    def stats_json() -> int:
        size = len(str(tree.server_json()))
        for i in range(streams):
            size += len(str(tree.stream_json("default", "app", f"s{i}")))
        return size

    rows = []
    for name, fn in (("/v1/stats JSON, server + every stream (reference)", stats_json),
                     ("/metrics exposition", lambda: len(exposition(registry)))):
        best = float("inf")
        size = 0
        for _ in range(rounds):
            started = time.perf_counter()
            size = fn()
            best = min(best, time.perf_counter() - started)
        rows.append([name, best * 1000, size])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--tails", type=int, default=8)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    out(machine())
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp)
        out(f"journal on {filesystem_of(base)}; {args.writers} writer threads, fsync on, {args.seconds:.0f} s each")
        out(f"each configuration {args.repeat} times, interleaved (the machine is shared); the median run "
            "by appends/s is shown")
        setups = ((0, 0), (args.tails, 0), (args.tails, 1))
        runs: list[list[list[object]]] = [[] for _ in setups]
        for round_ in range(args.repeat):
            for i, (tails, idle) in enumerate(setups):
                runs[i].append(appends(base / f"run{round_}-{i}", args.seconds, args.writers, tails, idle))
        rows = [sorted(found, key=lambda row: float(row[1]))[len(found) // 2]  # type: ignore[arg-type]
                for found in runs]
        table(["appends", "appends/s", "p50 ms", "p99 ms", "records read", "cut offs"], rows)
    out()
    out(f"scrape with {args.streams} live streams (best of 20)")
    table(["what", "ms", "bytes"], scrape(args.streams))


if __name__ == "__main__":
    main()

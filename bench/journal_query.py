"""What ``GET /v1/journal`` costs (``kiln/journal/query.py``), next to references measured in the same run.

(1) A console poll (``after=`` a recent sequence number) served from the in-memory tail, against reading the
same records back from the segment files (what every poll would cost without that tail). (2) The newest
100 records on a process that has not appended yet (nothing in memory: the newest segment is read), and a
filter that matches only old records (segments read newest first until enough match), against a full
``Journal.read()`` of the journal. (3) The time the query's listener takes per record on the journal's writer
thread (it only keeps the tail; secrets are learned at query time) against the time an append takes.
Run: ``.venv/bin/python bench/journal_query.py [--events 200000]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kiln.journal import Journal, NewRecord  # noqa: E402
from kiln.journal.query import JournalFilter, JournalQuery  # noqa: E402
from kiln.journal.reader import iter_records  # noqa: E402
from kiln.journal.segments import journal_dir  # noqa: E402


def record(i: int) -> NewRecord:
    kind = i % 4
    if kind == 0:
        return NewRecord(f"push:default/app/p{i % 50}", "PushProgress", 1,
                         {"vhost": "default", "app": "app", "id": f"p{i % 50}", "sent_bytes": i * 1316,
                          "sent_time_ms": i})
    if kind == 1:
        return NewRecord(f"stream:default/app/s{i % 200}", "StreamStarted", 1,
                         {"vhost": "default", "app": "app", "name": f"s{i % 200}", "instance": f"{i:x}",
                          "source_type": "Rtmp", "source_url": f"rtmp://10.0.0.{i % 250}:1935/app/s{i % 200}",
                          "created_time": 1.7e9 + i})
    if kind == 2:
        return NewRecord(f"record:default/app/r{i % 20}", "RecordStateChanged", 1,
                         {"vhost": "default", "app": "app", "id": f"r{i % 20}", "state": "recording", "reason": ""})
    return NewRecord(f"stream:default/app/s{i % 200}", "StreamEnded", 1,
                     {"vhost": "default", "app": "app", "name": f"s{i % 200}", "instance": f"{i:x}",
                      "reason": "disconnected", "bytes_in": i * 100})


def timed(fn, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(p50, p99) in milliseconds."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def fill(data: Path, events: int, listener: JournalQuery | None = None) -> float:
    journal = Journal.open(data, fsync=False)
    if listener is not None:
        journal.add_listener(listener.on_durable)
    t0 = time.perf_counter()
    for start in range(0, events, 100):
        journal.append([record(i) for i in range(start, min(events, start + 100))]).result()
    elapsed = time.perf_counter() - t0
    journal.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    n = args.events
    sys.stdout.write(f"cpu: {platform.processor() or platform.machine()} x{os.cpu_count()}  events: {n}\n")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp) / "a"
        plain = fill(base, n)
        # the listener's own time per record (it runs on the journal's writer thread), timed directly: the
        # difference of two whole append runs drowns in a loaded machine's noise
        listener = JournalQuery(journal_dir(base))
        reopened = Journal.open(base, fsync=False)
        kept = list(reopened.read(1))[-50_000:]
        reopened.close()
        t0 = time.perf_counter()
        for start in range(0, len(kept), 100):
            listener.on_durable(kept[start:start + 100])
        per_record = (time.perf_counter() - t0) / len(kept) * 1e6
        append_us = plain / n * 1e6
        sys.stdout.write(f"(3) the query listener: {per_record:.2f} us per record on the writer thread; reference "
                         f"append (batches of 100, fsync off): {append_us:.2f} us per record ({n / plain:,.0f}/s), "
                         f"so +{100 * per_record / append_us:.0f}%\n")

        journal = Journal.open(base, fsync=False)
        query = JournalQuery(journal_dir(base))
        query.start_at(journal.last_seq)
        journal.add_listener(query.on_durable)
        last = journal.last_seq
        cold_tail = timed(lambda: query.query(JournalFilter(limit=100)), 20)
        rare = timed(lambda: query.query(JournalFilter(entity="record:default/app/r7", limit=100)), 5)
        t0 = time.perf_counter()
        total = sum(1 for _ in journal.read(1))
        full_read = (time.perf_counter() - t0) * 1000
        sys.stdout.write(f"(2) newest 100, nothing in memory: p50 {cold_tail[0]:.1f} ms p99 {cold_tail[1]:.1f} ms; "
                         f"100 newest of one rare entity: p50 {rare[0]:.1f} ms; reference Journal.read() of all "
                         f"{total:,} records: {full_read:.0f} ms\n")

        for start in range(n, n + 5000, 100):
            journal.append([record(i) for i in range(start, start + 100)]).result()
        last = journal.last_seq
        poll = timed(lambda: query.query(JournalFilter(after=last - 10, limit=1000)), 200)
        from_disk = timed(lambda: list(iter_records(journal_dir(base), last - 9)), 20)
        sys.stdout.write(f"(1) poll after=last-10 (10 new records), in memory: p50 {poll[0]:.3f} ms "
                         f"p99 {poll[1]:.3f} ms;"
                         f" reference reading the same 10 from segments: p50 {from_disk[0]:.1f} ms "
                         f"p99 {from_disk[1]:.1f} ms\n")
        journal.close()


if __name__ == "__main__":
    main()

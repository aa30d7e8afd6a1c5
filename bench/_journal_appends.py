"""One append measurement of bench/journal.py in a child process, for ``--ab-tree`` and ``--pinned``.

``THREADS FSYNC(on|off) SECONDS [CPU]``: that many writers, each appending a single record and waiting for
it (``Journal.append([record]).result()``), like bench/journal.py's own rows. With ``CPU`` the process is
pinned to that one CPU first (its threads inherit it), which shows in the same run what the journal loses
to threads woken on both CPUs. It imports only ``kiln.journal`` and ``kiln.events`` from ``PYTHONPATH``,
so the parent can run it against another checkout. Prints one JSON object: appends/s, records per commit,
mean fsync, wall clock per append outside fsync, process CPU (user, system) and context switches
(voluntary, involuntary) per append, and the p50/p99 latency.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path


def measure(threads: int, fsync: bool, seconds: float) -> dict[str, float]:
    from kiln.events import tasks as te
    from kiln.events.codec import record_parts
    from kiln.journal import Journal, NewRecord

    work = Path(tempfile.mkdtemp(prefix="kiln-bench-journal-ab-"))
    journal = Journal.open(work, fsync=fsync)
    commits = [0]
    journal.add_listener(lambda _records: commits.__setitem__(0, commits[0] + 1))
    record = NewRecord(*record_parts(te.PushStateChanged("default", "app", "push-1", "started", "stream started",
                                                         time.time())))
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    deadline = [0.0]

    def writer(index: int) -> None:
        mine, clock = latencies[index], time.perf_counter
        start.wait()
        while clock() < deadline[0]:
            t0 = clock()
            journal.append([record]).result()
            mine.append(clock() - t0)

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    used = resource.getrusage(resource.RUSAGE_SELF)
    start.wait()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    journal.close()
    shutil.rmtree(work, ignore_errors=True)
    every = sorted(x for lat in latencies for x in lat)
    n = max(1, len(every))
    fsyncs, fsync_s = journal.counters.fsyncs, journal.counters.fsync_seconds
    return {"rate": len(every) / elapsed, "per_commit": len(every) / max(1, commits[0]),
            "fsync_ms": fsync_s / max(1, fsyncs) * 1000, "rest_us": (elapsed - fsync_s) / n * 1e6,
            "user_us": (after.ru_utime - used.ru_utime) / n * 1e6, "sys_us": (after.ru_stime - used.ru_stime) / n * 1e6,
            "vcsw": (after.ru_nvcsw - used.ru_nvcsw) / n, "ivcsw": (after.ru_nivcsw - used.ru_nivcsw) / n,
            "p50_ms": every[len(every) // 2] * 1000 if every else 0.0,
            "p99_ms": every[min(len(every) - 1, int(len(every) * 0.99))] * 1000 if every else 0.0}


def main() -> None:
    threads, fsync, seconds = int(sys.argv[1]), sys.argv[2] == "on", float(sys.argv[3])
    if len(sys.argv) > 4:
        os.sched_setaffinity(0, {int(sys.argv[4])})
    sys.stdout.write(json.dumps(measure(threads, fsync, seconds)) + "\n")


if __name__ == "__main__":
    main()

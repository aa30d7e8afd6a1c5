"""One append measurement of bench/journal.py, in a child process for ``--ab-tree`` and ``--pinned``.

``THREADS FSYNC(on|off) SECONDS [CPU|all] [threads|actors]``, in two shapes:

- ``threads`` (the default): that many writer threads, each appending a single record and blocking for it
  (``Journal.append([record]).result()``), like bench/journal.py's first rows.
- ``actors``: Kiln's own shape. No Kiln thread blocks on its own append: an actor (a pykka thread) appends its
  events and answers with the append's future among ``Outcome.durable``; the HTTP handler that sent the command
  awaits it on the event loop through ``kiln.actors.base.ask`` (``_LoopReply``, ``_LoopInbox``). So: that many
  ``CommandActor``s, each appending one record per command, built from the same event as the checkout's actors
  build it (``kiln.eventlog.encode_events`` where the checkout has it: encoded on the actor's thread before its
  events are applied; else a ``NewRecord`` the commit encodes), and as many callers on one event loop
  (uvloop, as ``kiln serve`` runs it: ``kiln.cli.event_loop_choice``), each ``await ask(actor, Append())`` then
  sending its next command. An append counts once its ``ask`` returned, which is only after the commit's write
  and fsync completed its future (an append that failed raises and ends the run).

With ``CPU`` the process is pinned to that one CPU first (its threads inherit it), which shows in the same run
what the journal loses to threads woken on both CPUs. It imports Kiln from ``PYTHONPATH``, so the parent can run it
against another checkout. Prints one JSON object: appends/s, records per commit, mean fsync, wall clock per append
outside fsync, process CPU (user, system) and context switches (voluntary, involuntary) per append, and the p50/p99
latency (for ``actors``: from ``ask`` to its return on the loop).
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
from typing import Any

SHAPES = ("threads", "actors")


def measure(threads: int, fsync: bool, seconds: float) -> dict[str, float]:
    from kiln.events import tasks as te
    from kiln.events.codec import record_parts
    from kiln.journal import Journal, NewRecord

    work = Path(tempfile.mkdtemp(prefix="kiln-bench-journal-ab-"))
    journal = Journal.open(work, fsync=fsync)
    record = NewRecord(*record_parts(te.PushStateChanged("default", "app", "push-1", "started", "stream started",
                                                         time.time())))
    latencies, elapsed, used, after = blocked_writers(journal, record, threads, seconds)
    journal.close()
    shutil.rmtree(work, ignore_errors=True)
    return _figures(journal, latencies, elapsed, used, after, [0, 0, 0.0])


def blocked_writers(journal: Any, record: Any, threads: int,
                    seconds: float) -> tuple[list[list[float]], float, Any, Any]:
    """``threads`` writer threads, each appending ``record`` and blocking in ``result()`` for it, for ``seconds``:
    each thread's latencies, the time taken, and the process's rusage (every thread) before and after."""
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
    return latencies, elapsed, used, resource.getrusage(resource.RUSAGE_SELF)


def _records_as_actors_build_them(event: Any, new_record: Any, record_parts: Any) -> Any:
    """What an actor of the checkout appends for ``event``, built per command (an A/B child runs either tree)."""
    try:
        from kiln.eventlog import encode_events  # type: ignore[attr-defined, unused-ignore]
    except ImportError:  # a checkout whose journal encodes in its commit
        return lambda: [new_record(*record_parts(event))]
    return lambda: encode_events([event]).records


class Append:
    """The command each actor of the ``actors`` shape handles: append one record (``handle_Append``)."""


def measure_actors(callers: int, fsync: bool, seconds: float) -> dict[str, float]:
    """Kiln's shape (module docstring): ``callers`` actors, each sent one command at a time by its own caller on
    one event loop; each command appends one record, and its caller sends the next once ``ask`` returned."""
    import asyncio

    import pykka

    from kiln.actors.base import CommandActor, Outcome, ask
    from kiln.cli import event_loop_choice
    from kiln.events import tasks as te
    from kiln.events.codec import record_parts
    from kiln.journal import Journal, NewRecord

    work = Path(tempfile.mkdtemp(prefix="kiln-bench-journal-actors-"))
    journal = Journal.open(work, fsync=fsync)
    event = te.PushStateChanged("default", "app", "push-1", "started", "stream started", time.time())
    records = _records_as_actors_build_them(event, NewRecord, record_parts)

    class Appender(CommandActor):
        def handle_Append(self, _command: Append) -> Outcome:
            return Outcome(None, [journal.append(records())])  # as an actor's emit: its future, not its wait

    refs = [Appender.start() for _ in range(callers)]
    latencies: list[list[float]] = [[] for _ in range(callers)]
    command = Append()

    async def caller(ref: Any, mine: list[float], deadline: float) -> None:
        clock = time.perf_counter
        while clock() < deadline:
            t0 = clock()
            await ask(ref, command)
            mine.append(clock() - t0)

    before: list[float] = []

    async def run() -> tuple[float, Any, Any]:
        await asyncio.gather(*(ask(ref, command) for ref in refs))  # every actor thread is up and has appended
        counters = journal.counters
        before.extend((counters.commits, counters.fsyncs, counters.fsync_seconds))
        used = resource.getrusage(resource.RUSAGE_SELF)
        began = time.perf_counter()
        await asyncio.gather(*(caller(ref, mine, began + seconds) for ref, mine in zip(refs, latencies, strict=True)))
        elapsed = time.perf_counter() - began
        return elapsed, used, resource.getrusage(resource.RUSAGE_SELF)

    _name, loop_factory = event_loop_choice()
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            elapsed, used, after = runner.run(run())
    finally:
        for ref in refs:
            ref.stop(block=False)
        pykka.ActorRegistry.stop_all(block=True, timeout=30)
        journal.close()
        shutil.rmtree(work, ignore_errors=True)
    return _figures(journal, latencies, elapsed, used, after, before)


def _figures(journal: Any, latencies: list[list[float]], elapsed: float, used: Any, after: Any,
             before: list[float]) -> dict[str, float]:
    """``before``: commits, fsyncs and seconds in fsync when the measured window opened."""
    every = sorted(x for lat in latencies for x in lat)
    n = max(1, len(every))
    counters = journal.counters
    commits = counters.commits - int(before[0])
    fsyncs, fsync_s = counters.fsyncs - int(before[1]), counters.fsync_seconds - before[2]
    return {"rate": len(every) / elapsed, "per_commit": len(every) / max(1, commits),
            "fsync_ms": fsync_s / max(1, fsyncs) * 1000, "rest_us": (elapsed - fsync_s) / n * 1e6,
            "user_us": (after.ru_utime - used.ru_utime) / n * 1e6, "sys_us": (after.ru_stime - used.ru_stime) / n * 1e6,
            "vcsw": (after.ru_nvcsw - used.ru_nvcsw) / n, "ivcsw": (after.ru_nivcsw - used.ru_nivcsw) / n,
            "p50_ms": every[len(every) // 2] * 1000 if every else 0.0,
            "p99_ms": every[min(len(every) - 1, int(len(every) * 0.99))] * 1000 if every else 0.0}


def main() -> None:
    threads, fsync, seconds = int(sys.argv[1]), sys.argv[2] == "on", float(sys.argv[3])
    if len(sys.argv) > 4 and sys.argv[4] != "all":
        os.sched_setaffinity(0, {int(sys.argv[4])})
    shape = sys.argv[5] if len(sys.argv) > 5 else "threads"
    if shape not in SHAPES:
        raise SystemExit(f"shape {shape!r}: expected one of {', '.join(SHAPES)}")
    found = measure(threads, fsync, seconds) if shape == "threads" else measure_actors(threads, fsync, seconds)
    sys.stdout.write(json.dumps(found) + "\n")


if __name__ == "__main__":
    main()

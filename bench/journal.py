"""Journal cost: durable appends/s, replay events/s, and the first request after a restart.

1. Appends: single-record ``Journal.append([...]).result()`` calls from 1, 8 and 64 threads, with
   fsync on (group commit: more writers share each fsync, so appends/s grows with writers) and off; next to
   the 64 threads, Kiln's own shape: 64 actors that append and answer with the append's future, each asked
   by its own caller on one event loop (``kiln.actors.base.ask``), counted once ``ask`` returned after the
   fsync (bench/_journal_appends.py).
   Reference in the same run: a loop of raw ``write(frame)`` + ``fsync`` (and ``write`` alone) on a
   plain file in the same directory: what the disk allows one writer.
2. Replay: ``Journal.read()`` over the N-event journal built for 3 (frames, CRC, msgpack), the same plus
   ``event_of``, and what startup does: ``Journal.read_stored_lists`` into ``EventLog.apply_stored_lists``
   with the catalog and tasks projections, best of ``--replay-runs``, by the wall clock and per CPU-second;
   with ``--ab-tree`` another checkout's replay takes turns with this one's (bench/_replay_ab.py).
   Reference: reading the same bytes raw.
3. Restart: N realistic events (streams starting and ending, push and record tasks created, run and
   removed, on API-created vhosts and apps) are emitted through a ``KilnService`` (fsync off) in a
   child process, as the API's actors emit them, so the service saves its automatic snapshots (every
   ``snapshot_every`` events); the child then kills itself with SIGKILL. ``KilnService.open()`` + the
   first ``GET /v1/vhosts`` is timed after that crash, again with every snapshot deleted (full replay),
   and once more after that full replay (which saves a snapshot as soon as it has started). References:
   generating the journal, and a raw sequential write + fsync of the same bytes.

Each figure with a target (issue 16) is printed next to it.

Usage: .venv/bin/python bench/journal.py [--events 1000000] [--seconds 2] [--dir DIR]
       .venv/bin/python bench/journal.py --only appends [--ab-tree DIR] [--turns 3] [--pinned CPU]
                                         [--shape threads|actors|both]
       .venv/bin/python bench/journal.py --only replay [--replay-runs 3] [--ab-tree DIR] [--turns 3]
(``--ab-tree``/``--pinned``: the appends in child processes taking turns, bench/_journal_ab.py; ``--ab-tree``: the
replay too, bench/_replay_ab.py)
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

from _control import api_server_xml, filesystem_of, machine, out, percentile, table  # noqa: E402
from _journal_appends import blocked_writers, measure_actors  # noqa: E402
from _replay_ab import best, replay_runs  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from kiln.cli import event_loop_choice  # noqa: E402
from kiln.config import load_server_xml_text  # noqa: E402
from kiln.eventlog import EventLog  # noqa: E402
from kiln.events import catalog as ce  # noqa: E402
from kiln.events import streams as se  # noqa: E402
from kiln.events import tasks as te  # noqa: E402
from kiln.events.base import Event  # noqa: E402
from kiln.events.codec import event_of, record_parts  # noqa: E402
from kiln.journal import Journal, NewRecord  # noqa: E402
from kiln.journal.framing import encode_frame  # noqa: E402
from kiln.journal.records import Record  # noqa: E402
from kiln.journal.segments import journal_dir, list_segments  # noqa: E402
from kiln.projections.catalog import CatalogProjection  # noqa: E402
from kiln.projections.tasks import TasksProjection  # noqa: E402
from kiln.service import KilnService  # noqa: E402

TOKEN = "bench-token"
AUTH = {"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()}
SERVER_XML = api_server_xml(TOKEN)

VHOSTS, APPS_PER_VHOST, STANDING_TASKS = 10, 10, 1000
PUSH_FILE = {"push": {}, "file": {}}


def record_of(ev: Event) -> NewRecord:
    return NewRecord(*record_parts(ev))


# --- 1. appends -------------------------------------------------------------------------------------


def sample_event() -> Event:
    return te.PushStateChanged("default", "app", "push-1", "started", "stream started", time.time())


def append_rate(directory: Path, threads: int, fsync: bool, seconds: float) -> dict[str, float]:
    """Appends/s from ``threads`` writers each waiting for its own single-record append."""
    shutil.rmtree(directory, ignore_errors=True)
    journal = Journal.open(directory, fsync=fsync)
    commits = [0]
    journal.add_listener(lambda _records: commits.__setitem__(0, commits[0] + 1))
    record = record_of(sample_event())
    latencies, elapsed, used, after = blocked_writers(journal, record, threads, seconds)
    journal.close()
    every = sorted(x for lat in latencies for x in lat)
    n = max(1, len(every))
    fsyncs, fsync_s = journal.counters.fsyncs, journal.counters.fsync_seconds
    return {"appends": len(every), "rate": len(every) / elapsed, "per_commit": len(every) / max(1, commits[0]),
            "p50": percentile(every, 50) * 1000, "p99": percentile(every, 99) * 1000,
            "fsync_ms": fsync_s / max(1, fsyncs) * 1000, "fsync_busy": fsync_s / elapsed,
            "rest_us": (elapsed - fsync_s) / n * 1e6,
            "cpu_us": (after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime) / n * 1e6,
            "switches": (after.ru_nvcsw + after.ru_nivcsw - used.ru_nvcsw - used.ru_nivcsw) / n}


def raw_write_rate(directory: Path, fsync: bool, seconds: float) -> dict[str, float]:
    """The disk's own answer: one frame of the same size per write, each followed by fsync."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "raw.bin"
    frame = encode_frame(Record(1, time.time(), *record_parts(sample_event())))
    times: list[float] = []
    with open(path, "wb", buffering=0) as fh:
        began = time.perf_counter()
        end = began + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            fh.write(frame)
            if fsync:
                os.fsync(fh.fileno())
            times.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - began
    path.unlink()
    times.sort()
    return {"appends": len(times), "rate": len(times) / elapsed, "per_commit": 1.0,
            "p50": percentile(times, 50) * 1000, "p99": percentile(times, 99) * 1000}


def one_writer_interleaved(work: Path, seconds: float, slices: int = 8) -> dict[str, list[float]]:
    """Latencies of one writer with fsync: the journal's ``append().result()`` and raw write+fsync of a frame
    of the same size, taking turns in ``slices`` short slices each, so both meet the same disk (on a shared
    machine the disk's fsync time swings by 10x within seconds, which separate runs would compare)."""
    shutil.rmtree(work / "interleaved", ignore_errors=True)
    journal = Journal.open(work / "interleaved", fsync=True)
    record = record_of(sample_event())
    frame = encode_frame(Record(1, time.time(), *record_parts(sample_event())))
    (work / "raw").mkdir(parents=True, exist_ok=True)
    found: dict[str, list[float]] = {"journal": [], "raw": []}
    try:
        with open(work / "raw" / "interleaved.bin", "wb", buffering=0) as fh:
            for _ in range(slices):
                end = time.perf_counter() + seconds / (2 * slices)
                while time.perf_counter() < end:
                    t0 = time.perf_counter()
                    journal.append([record]).result()
                    found["journal"].append(time.perf_counter() - t0)
                end = time.perf_counter() + seconds / (2 * slices)
                while time.perf_counter() < end:
                    t0 = time.perf_counter()
                    fh.write(frame)
                    os.fsync(fh.fileno())
                    found["raw"].append(time.perf_counter() - t0)
    finally:
        journal.close()
        (work / "raw" / "interleaved.bin").unlink(missing_ok=True)
    return {k: sorted(v) for k, v in found.items()}


def bench_appends(work: Path, seconds: float) -> None:
    out(f"== 1. durable appends: single-record appends, each caller waits for its own ({seconds:g} s each)")
    rows: list[list[Any]] = []
    raw_fsync = raw_write_rate(work / "raw", True, seconds)
    raw_plain = raw_write_rate(work / "raw", False, seconds)
    found: dict[tuple[bool, int], dict[str, float]] = {}
    kiln_shape: dict[bool, dict[str, float]] = {}
    for fsync, raw in ((True, raw_fsync), (False, raw_plain)):
        for threads in (1, 8, 64):
            r = found[fsync, threads] = append_rate(work / f"appends-{threads}-{fsync}", threads, fsync, seconds)
            rows.append([f"journal fsync={'on' if fsync else 'off'}", threads, r["rate"], r["per_commit"], r["p50"],
                         r["p99"], f"{r['rate'] / raw['rate']:.2f}x"])
        k = kiln_shape[fsync] = measure_actors(64, fsync, seconds)  # Kiln's shape: bench/_journal_appends.py
        rows.append([f"Kiln's shape: 64 actors, 64 asks on one loop, fsync={'on' if fsync else 'off'}", 64, k["rate"],
                     k["per_commit"], k["p50_ms"], k["p99_ms"], f"{k['rate'] / raw['rate']:.2f}x"])
        label = "raw write+fsync (reference)" if fsync else "raw write, no fsync (reference)"
        rows.append([label, 1, raw["rate"], 1, raw["p50"], raw["p99"], "1.00x"])
    table(["writer", "threads", "appends/s", "records/commit", "p50 ms", "p99 ms", "vs raw"], rows)
    out("threads: writer threads each blocked in Journal.append([record]).result(); Kiln's shape: pykka actors "
        "(CommandActor) that append and answer with the append's future, each asked by its own caller on one "
        f"{event_loop_choice()[0].split()[0]} loop through kiln.actors.base.ask, which returns once the commit's write "
        "and fsync completed the future; the caller then asks again (p50/p99: ask to return)")
    many, one, shaped = rows[2], rows[0], kiln_shape[True]
    met = "met" if many[2] >= 50_000 else "NOT met"
    shaped_met = "met" if shaped["rate"] >= 50_000 else "NOT met"
    out(f"64 writers, fsync on: threads blocked in result() {many[2]:,.0f} appends/s (target >= 50,000: {met}); "
        f"Kiln's shape (64 actors, 64 asks on one loop) {shaped['rate']:,.0f} appends/s (target >= 50,000: "
        f"{shaped_met}; {shaped['user_us'] + shaped['sys_us']:.1f} us of process CPU per append, threads "
        f"{found[True, 64]['cpu_us']:.1f}); fsync off: threads {rows[7][2]:,.0f}, Kiln's shape "
        f"{kiln_shape[False]['rate']:,.0f}; raw write+fsync {raw_fsync['rate']:,.0f}/s")
    out(f"one writer, fsync on: p99 {one[5]:.2f} ms (target <= 1 ms: {'met' if one[5] <= 1.0 else 'NOT met'}; "
        f"raw write+fsync p99 {raw_fsync['p99']:.2f} ms)")
    both = one_writer_interleaved(work, seconds * 2)
    j, r = both["journal"], both["raw"]
    raw_note = "" if percentile(r, 99) <= 0.001 else "; the raw p99 itself is above it"
    out(f"one writer, fsync on, journal and raw write+fsync taking turns ({seconds * 2:g} s): journal p50 "
        f"{percentile(j, 50) * 1000:.3f} ms p99 {percentile(j, 99) * 1000:.3f} ms ({len(j):,} appends); raw p50 "
        f"{percentile(r, 50) * 1000:.3f} ms p99 {percentile(r, 99) * 1000:.3f} ms ({len(r):,} writes); the journal's "
        f"own cost at p50: {(percentile(j, 50) - percentile(r, 50)) * 1e6:,.0f} us (target p99 <= 1 ms: "
        f"{'met' if percentile(j, 99) <= 0.001 else 'NOT met'}{raw_note})")
    # what the disk allows: with fsync on, appends/s = records per commit x commits (fsyncs) per second, and
    # 50,000 appends/s at the batching reached needs that many fsyncs/s; fsync off shows what the CPU allows
    off_many = rows[7]
    commits = many[2] / many[3]
    fsynced = found[True, 64]
    out(f"64 writers, fsync on: {many[3]:.1f} records per commit x {commits:,.0f} commits (fsyncs)/s, mean fsync "
        f"{fsynced['fsync_ms']:.3f} ms (in fsync {fsynced['fsync_busy']:.0%} of the time; raw write+fsync p50 "
        f"{raw_fsync['p50']:.3f} ms); 50,000 appends/s at that batching needs {50_000 / many[3]:,.0f} fsyncs/s (raw "
        f"single-writer fsyncs/s in this run: {raw_fsync['rate']:,.0f}); with fsync off (what the CPU allows) "
        f"{off_many[2]:,.0f} appends/s")
    # the part of a commit cycle that is not the disk's: the fsync-on figure is 64 / (fsync + 64 x this)
    rest = fsynced["rest_us"]
    out(f"64 writers, fsync on: the rest of the cycle (wall clock not in fsync) {rest:.1f} us per append; process CPU "
        f"{fsynced['cpu_us']:.1f} us and {fsynced['switches']:.2f} context switches per append; at that rest, 50,000 "
        f"appends/s in 64-record commits needs a mean fsync under {max(0.0, 64 * (20 - rest)) / 1000:.2f} ms")


# --- 3. building an N-event journal ---------------------------------------------------------------------


def catalog_events(now: float) -> list[Event]:
    evs: list[Event] = []
    for v in range(VHOSTS):
        vhost = f"vh{v}"
        evs.append(ce.VhostCreated(vhost, {"name": vhost, "host": {"names": [f"{vhost}.example"]}}, now))
        for a in range(APPS_PER_VHOST):
            config = {"name": f"app{a}", "type": "live", "providers": {"rtmp": {}, "srt": {}},
                      "publishers": {**PUSH_FILE, "llhls": {}}, "dynamic": False,
                      "outputProfiles": {"outputProfile": [{"name": "bypass", "outputStreamName": "${OriginStreamName}",
                                                            "encodes": {"videos": [{"bypass": True}]}}]}}
            evs.append(ce.AppCreated(vhost, f"app{a}", config, now))
    return evs


def task_events(vhost: str, app: str, task_id: str, stream: str, now: float) -> tuple[list[Event], list[Event]]:
    """(create, remove) events of one push task and one record task on ``stream``."""
    create: list[Event] = [
        te.PushCreated(vhost, app, task_id, stream, ["bypass_video"], [], "rtmp",
                       f"rtmp://push.example.com/live/{stream}", "key", now),
        te.RecordCreated(vhost, app, task_id, f"tx-{task_id}", stream, [], [], "", "", 60000, "", "discontinuity",
                         "", now),
    ]
    remove: list[Event] = [te.PushRemoved(vhost, app, task_id), te.RecordRemoved(vhost, app, task_id)]
    return create, remove


def cycle_events(i: int, now: float) -> list[Event]:
    """One stream's life: it starts, is described, a push and a recording run on it, it ends (10 events)."""
    vhost, app = f"vh{i % VHOSTS}", f"app{(i // VHOSTS) % APPS_PER_VHOST}"
    stream, instance, task = f"s{i % 50}", f"i{i}", f"t{i}"
    create, remove = task_events(vhost, app, task, stream, now)
    return [
        se.StreamStarted(vhost, app, stream, instance, "Rtmp", f"rtmp://10.0.0.{i % 250}:50000", now),
        se.StreamTracksDescribed(vhost, app, stream, instance, [
            {"id": 0, "type": "Video", "codec": "H264", "width": 1280, "height": 720, "framerate": 30.0},
            {"id": 1, "type": "Audio", "codec": "AAC", "samplerate": 48000, "channel": 2}]),
        *create,
        te.PushStateChanged(vhost, app, task, "started", "stream started", now),
        te.RecordStateChanged(vhost, app, task, "recording", "", now, f"/rec/{task}.ts", f"/rec/{task}.xml"),
        te.PushSessionEnded(vhost, app, task, 3_000_000 + i, 60_000, "stream ended"),
        *remove,
        se.StreamEnded(vhost, app, stream, instance, "publisher closed", 22_500_000),
    ]


def build_journal(data_dir: Path, events: int) -> dict[str, float]:
    """Emit ``events`` events through a KilnService in a child process, then SIGKILL it (see main's --build)."""
    import json
    import subprocess
    began = time.perf_counter()
    child = subprocess.run([sys.executable, __file__, "--build", str(data_dir), "--events", str(events)],
                           capture_output=True, text=True, timeout=3600, check=False)
    if child.returncode != -9 or not child.stdout.strip():
        raise SystemExit(f"journal builder failed rc={child.returncode}: {child.stderr[-2000:]}")
    built: dict[str, float] = json.loads(child.stdout.strip().splitlines()[-1])
    built["wall"] = time.perf_counter() - began
    built["bytes"] = sum(p.stat().st_size for _seq, p in list_segments(journal_dir(data_dir)))
    built["snapshots"] = len(list((data_dir / "snapshots").glob("*.snap")))
    return built


def build_and_crash(data_dir: Path, events: int) -> None:
    """The child: a KilnService (fsync off) whose EventLog gets ``events`` events in 10,000-event emits, as
    actors emit them (projections and the automatic-snapshot observer see each one); then SIGKILL."""
    import json
    import signal
    service = KilnService(load_server_xml_text(SERVER_XML, data_dir), data_dir, fsync=False)
    service.open()
    assert service.events is not None
    now = time.time()
    head: list[Event] = catalog_events(now)
    for k in range(STANDING_TASKS):
        create, _remove = task_events(f"vh{k % VHOSTS}", f"app{k % APPS_PER_VHOST}", f"standing{k}", f"s{k}", now)
        head.extend(create)
    began = time.perf_counter()
    pending: list[Any] = []
    batch: list[Event] = list(head)
    written, cycle = service.journal.last_seq + len(batch), 0
    while written < events:
        for ev in cycle_events(cycle, now):
            if written >= events:
                break
            batch.append(ev)
            written += 1
        cycle += 1
        if len(batch) >= 10_000:
            pending.append(service.events.emit(batch))
            batch = []
            if len(pending) > 4:
                pending.pop(0).result()
    if batch:
        pending.append(service.events.emit(batch))
    for future in pending:
        future.result()
    elapsed = time.perf_counter() - began
    sys.stdout.write(json.dumps({"events": service.journal.last_seq, "seconds": elapsed,
                                 "snapshot_every": service.snapshot_every}) + "\n")
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def raw_bulk_write(data_dir: Path, work: Path) -> float:
    """Seconds to write the journal's bytes to one new file and fsync it (page cache warm for reading)."""
    chunks = [p.read_bytes() for _seq, p in list_segments(journal_dir(data_dir))]
    target = work / "raw-bulk.bin"
    began = time.perf_counter()
    with open(target, "wb", buffering=0) as fh:
        for chunk in chunks:
            fh.write(chunk)
        os.fsync(fh.fileno())
    elapsed = time.perf_counter() - began
    target.unlink()
    return elapsed


# --- 2. replay --------------------------------------------------------------------------------------------


def bench_replay(data_dir: Path, built: dict[str, float], runs: int = 3, ab_tree: Path | None = None,
                 turns: int = 2) -> None:
    out(f"== 2. replay: reading the {built['events']:,.0f}-event journal back ({built['bytes'] / 1e6:.1f} MB, "
        f"page cache warm; into projections: best of {runs} runs)")
    journal = Journal.open(data_dir, fsync=False)
    try:
        began, cpu = time.perf_counter(), time.process_time()
        count = sum(1 for _ in journal.read(1))
        read_s, read_cpu = time.perf_counter() - began, time.process_time() - cpu
        began, cpu = time.perf_counter(), time.process_time()
        decoded = sum(1 for record in journal.read(1) if event_of(record) is not None)
        decode_s, decode_cpu = time.perf_counter() - began, time.process_time() - cpu
        done: list[dict[str, Any]] = []
        for _ in range(runs):  # what startup does (KilnService.open), best of ``runs``: see bench/_replay_ab.py
            log = EventLog(journal, NewRecord)
            log.add_projection(CatalogProjection())
            log.add_projection(TasksProjection())
            began, cpu = time.perf_counter(), time.process_time()
            projected = log.apply_stored_lists(journal.read_stored_lists(1))
            done.append({"events": projected, "wall": time.perf_counter() - began, "cpu": time.process_time() - cpu})
    finally:
        journal.close()
    top = best(done)
    project_s = top["events"] / top["rate"]
    began = time.perf_counter()
    raw = sum(len(p.read_bytes()) for _seq, p in list_segments(journal_dir(data_dir)))
    raw_s = time.perf_counter() - began
    # events per CPU-second next to events/s: on a machine other jobs keep busy, the wall-clock rate
    # measures the share of a core this process got as much as the replay
    table(["what", "events", "seconds", "events/s", "events/CPU-s", "MB/s"], [
        ["Journal.read (frames, CRC, msgpack)", count, read_s, count / read_s, count / read_cpu,
         built["bytes"] / read_s / 1e6],
        ["Journal.read + event_of", decoded, decode_s, decoded / decode_s, decoded / decode_cpu,
         built["bytes"] / decode_s / 1e6],
        [f"read_stored_lists -> apply_stored_lists, 2 projections (best of {runs})", top["events"], project_s,
         top["rate"], top["cpu_rate"], built["bytes"] / project_s / 1e6],
        ["raw read of the same bytes (reference)", "", raw_s, "", "", raw / raw_s / 1e6],
    ])
    rate, cpu_rate = top["rate"], top["cpu_rate"]
    wall_met, cpu_met = ("met" if r >= 300_000 else "NOT met" for r in (rate, cpu_rate))
    out(f"replay into projections: {rate:,.0f} events/s (median of {runs} runs {top['median_rate']:,.0f}), "
        f"{cpu_rate:,.0f} events per CPU-second (target >= 300,000: {wall_met} by the wall clock, {cpu_met} per "
        f"CPU-second; {state_of_compiled()})")
    if ab_tree is not None:
        replay_ab(data_dir, runs, ab_tree, turns)


def state_of_compiled() -> str:
    from kiln import compiled
    return f"compiled modules: {compiled.install().state}"


def replay_ab(data_dir: Path, runs: int, other: Path, turns: int) -> None:
    """This tree's replay and ``other``'s, taking turns in child processes on the same journal."""
    this = Path(__file__).resolve().parent.parent
    rows: list[list[Any]] = []
    found: dict[str, list[dict[str, float]]] = {"this": [], "other": []}
    for turn in range(1, turns + 1):
        for label, tree in (("this", this), ("other", other)):
            done = replay_runs(data_dir, runs, tree)
            top = best(done)
            found[label].append(top)
            rows.append([f"{label} ({tree})", turn, done[0]["compiled"], top["rate"], top["cpu_rate"],
                         f"{os.getloadavg()[0]:.1f}"])
    table(["replay into projections, taking turns", "turn", "compiled", f"events/s (best of {runs})",
           "events/CPU-s", "load"], rows)
    this_cpu = max(r["cpu_rate"] for r in found["this"])
    other_cpu = max(r["cpu_rate"] for r in found["other"])
    out(f"replay A/B: this {this_cpu:,.0f} events per CPU-second, other {other_cpu:,.0f} (best turn each): "
        f"{this_cpu / other_cpu:.2f}x")


# --- 3. restart -------------------------------------------------------------------------------------------


def first_request(data_dir: Path) -> tuple[KilnService, dict[str, Any]]:
    """Open a KilnService on ``data_dir`` as ``kiln serve`` does and answer GET /v1/vhosts in process."""
    began = time.perf_counter()
    service = KilnService(load_server_xml_text(SERVER_XML, data_dir), data_dir, fsync=True)
    recovery = service.open()
    opened = time.perf_counter()
    client = TestClient(service.build_api().starlette, base_url="http://kiln.bench")
    response = client.get("/v1/vhosts", headers=AUTH)
    answered = time.perf_counter()
    vhosts = len(response.json().get("response", [])) if response.status_code == 200 else 0
    return service, {"open": opened - began, "first": answered - began, "status": response.status_code,
                     "vhosts": vhosts, "replayed": recovery.replayed, "snapshot_seq": recovery.snapshot_seq,
                     "pushes": len(service.tasks.all_pushes()), "records": len(service.tasks.all_records())}


def bench_restart(data_dir: Path, built: dict[str, float], work: Path) -> None:
    out(f"== 3. restart: KilnService.open() + first GET /v1/vhosts with {built['events']:,.0f} events in the journal "
        f"(built through the service, snapshots every {built['snapshot_every']:,.0f} events, then SIGKILL)")
    rows = []
    service, crash = first_request(data_dir)
    service.close()
    rows.append(["after SIGKILL, automatic snapshots", crash])
    shutil.rmtree(data_dir / "snapshots", ignore_errors=True)
    service, full = first_request(data_dir)
    service.close()
    rows.append(["no snapshot (full replay)", full])
    service, after = first_request(data_dir)
    service.close()
    rows.append(["the start after that full replay", after])
    raw_s = raw_bulk_write(data_dir, work)
    table(["restart", "replayed", "open s", "first GET s", "status", "state"],
          [[label, r["replayed"], r["open"], r["first"], r["status"],
            f"{r['vhosts']} vhosts, {r['pushes']} pushes, {r['records']} records"] for label, r in rows])
    mb = built["bytes"] / 1e6
    table(["reference", "seconds", "events/s", "MB/s"], [
        [f"generate journal (emits through the service, fsync off, {built['snapshots']:.0f} snapshots kept)",
         built["seconds"], built["events"] / built["seconds"], mb / built["seconds"]],
        ["raw sequential write + fsync of the same bytes", raw_s, built["events"] / raw_s, mb / raw_s],
    ])
    worst = max(crash["first"], after["first"])
    out(f"first request after a restart: {crash['first']:.2f} s after a crash, {after['first']:.2f} s after a full "
        f"replay (target <= 2 s: {'met' if worst <= 2.0 else 'NOT met'}); with no snapshot at all "
        f"{full['first']:.2f} s, a full replay at {full['replayed'] / full['open']:,.0f} events/s into projections, "
        "open() included")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="journal size for replay/restart")
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each append measurement")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a new temp dir)")
    parser.add_argument("--build", type=Path, default=None, help=argparse.SUPPRESS)  # the child of build_journal
    parser.add_argument("--only", choices=("appends", "replay", "restart"), default=None, help="one section only")
    parser.add_argument("--replay-runs", type=int, default=3, help="replays into projections, best one reported")
    parser.add_argument("--ab-tree", type=Path, default=None,
                        help="another checkout (e.g. /work/main) whose journal takes turns with this one (appends, "
                             "replay)")
    parser.add_argument("--turns", type=int, default=3, help="turns of this/other with --ab-tree or --pinned")
    parser.add_argument("--pinned", type=int, default=None, metavar="CPU",
                        help="also measure the appends pinned to this one CPU, in the same turns")
    parser.add_argument("--shape", choices=("threads", "actors", "both"), default="both",
                        help="with --ab-tree/--pinned: the writers measured (threads blocked in result(), Kiln's "
                             "actors asked from one event loop, or both)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.build is not None:
        build_and_crash(args.build, args.events)
    work = Path(tempfile.mkdtemp(prefix="kiln-bench-journal-", dir=args.dir))
    out(f"kiln bench/journal.py  events={args.events:,}  machine: {machine()}  load avg {os.getloadavg()[0]:.2f}")
    out(f"work dir {work} on {filesystem_of(work)}")
    out()
    try:
        if args.only in (None, "appends") and (args.ab_tree is not None or args.pinned is not None):
            from _journal_ab import run as appends_in_turns

            shapes = ("threads", "actors") if args.shape == "both" else (args.shape,)
            appends_in_turns(work, args.ab_tree, args.turns, args.seconds, args.pinned, shapes)
        elif args.only in (None, "appends"):
            bench_appends(work, args.seconds)
        if args.only == "appends":
            return
        data_dir = work / "restart"
        built = build_journal(data_dir, args.events)
        if args.only in (None, "replay"):
            bench_replay(data_dir, built, args.replay_runs, args.ab_tree, args.turns)
        if args.only in (None, "restart"):
            bench_restart(data_dir, built, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

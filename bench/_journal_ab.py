"""Appends of bench/journal.py in turns: this checkout against another (``--ab-tree``), and pinned to one CPU.

Each measurement runs in its own child (``_journal_appends.py``, with ``PYTHONPATH`` set to the tree it
measures), one after another in turns (this, other; then other, this; ...), so both trees meet the same
moment of a shared machine's disk and CPUs; each turn starts with a raw ``write`` + ``fsync`` loop on the same
disk (the disk's own rate at that moment). With ``--pinned CPU`` every configuration also runs pinned to that
CPU: the gap between the two rows of one tree is what its threads lose to being woken on both CPUs (their GIL
hand-offs cross CPUs) rather than to the disk.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from _control import ROOT, out, table

CHILD = Path(__file__).resolve().with_name("_journal_appends.py")
# (shape, writers, fsync): "threads" blocked in result(), "actors" Kiln's shape (_journal_appends.py)
CONFIGS = (("threads", 64, True), ("actors", 64, True), ("threads", 64, False), ("actors", 64, False),
           ("threads", 1, True))


def _child(tree: Path, shape: str, threads: int, fsync: bool, seconds: float,
           cpu: int | None) -> dict[str, float] | str:
    cmd = [sys.executable, str(CHILD), str(threads), "on" if fsync else "off", f"{seconds:g}",
           "all" if cpu is None else str(cpu), shape]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 10 + 60,
                          env={**os.environ, "PYTHONPATH": str(tree)}, cwd=str(tree), check=False)
    if done.returncode != 0:
        return done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
    parsed: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return parsed


def _raw_fsync_rate(directory: Path, seconds: float) -> float:
    """Raw write+fsync of a 100-byte frame in a loop: the disk's single-writer rate right now."""
    import time

    path = directory / "raw-ab.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    try:
        count, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            os.write(fd, b"\x01" * 100)
            os.fsync(fd)
            count += 1
        return count / (time.perf_counter() - began)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)


def _median(found: dict[Any, list[dict[str, float]]], key: Any, what: str) -> float:
    """The median over the turns of appends/s (``rate``) or process CPU per append (``cpu``); NaN if none ran."""
    values = [r["rate"] if what == "rate" else r["user_us"] + r["sys_us"] for r in found.get(key, [])]
    return statistics.median(values) if values else float("nan")


def run(work: Path, other: Path | None, turns: int, seconds: float, pinned: int | None,
        shapes: tuple[str, ...] = ("threads", "actors")) -> None:
    configs = [config for config in CONFIGS if config[0] in shapes]
    trees = [("this", ROOT)] + ([("other", other.resolve())] if other is not None else [])
    cpus: list[int | None] = [None] + ([pinned] if pinned is not None else [])
    against = f", other = {other}" if other is not None else ""
    pinning = f"; pinned = on CPU {pinned} only" if pinned is not None else ""
    out(f"== 1. durable appends in turns ({turns} turns, {seconds:g} s each): this = {ROOT}{against}{pinning}")
    found: dict[tuple[str, str, int, bool, int | None], list[dict[str, float]]] = {}
    rows: list[list[Any]] = []
    for turn in range(turns):
        raw = _raw_fsync_rate(work, min(1.0, seconds))
        rows.append([f"turn {turn + 1}: raw write+fsync", "", "", f"{raw:,.0f}/s", "", "", "", "", "", "", "",
                     f"load {os.getloadavg()[0]:.1f}"])
        order = trees if turn % 2 == 0 else trees[::-1]
        for shape, threads, fsync in configs:
            for cpu in cpus:
                for label, tree in order:
                    got = _child(tree, shape, threads, fsync, seconds, cpu)
                    where = "all CPUs" if cpu is None else f"CPU {cpu}"
                    writers = f"{threads} {shape}"
                    if isinstance(got, str):
                        rows.append([label, writers, "on" if fsync else "off", where, f"failed: {got}"])
                        continue
                    found.setdefault((label, shape, threads, fsync, cpu), []).append(got)
                    rows.append([label, writers, "on" if fsync else "off", where, got["rate"], got["per_commit"],
                                 got["fsync_ms"], got["rest_us"], got["user_us"] + got["sys_us"],
                                 got["vcsw"] + got["ivcsw"], got["p99_ms"], ""])
    headers = ["tree", "writers", "fsync", "CPUs", "appends/s", "rec/commit", "fsync ms", "rest us", "cpu us",
               "switches", "p99 ms", ""]
    table(headers, [row + [""] * (len(headers) - len(row)) for row in rows])
    out("threads: writer threads each blocked in Journal.append([record]).result(); actors: Kiln's shape, "
        "CommandActors that append and answer with the append's future, each asked by its own caller on one event "
        "loop (uvloop) through kiln.actors.base.ask, which returns once the append is fsynced")
    out("rest us: wall clock per append outside fsync; cpu us and switches (voluntary + involuntary): the "
        "process's, per append")
    summary: list[list[Any]] = []
    for shape, threads, fsync in configs:
        for cpu in cpus:
            medians = {label: _median(found, (label, shape, threads, fsync, cpu), "rate") for label, _ in trees}
            cpu_us = {label: _median(found, (label, shape, threads, fsync, cpu), "cpu") for label, _ in trees}
            line: list[Any] = [f"{threads} {shape} fsync {'on' if fsync else 'off'}",
                               "all CPUs" if cpu is None else f"CPU {cpu}", medians["this"], cpu_us["this"]]
            if other is not None:
                line += [medians["other"], cpu_us["other"], f"{medians['this'] / medians['other']:.2f}x"]
            summary.append(line)
    heads = ["median of turns", "CPUs", "this appends/s", "this cpu us"]
    if other is not None:
        heads += ["other appends/s", "other cpu us", "this/other"]
    table(heads, summary)

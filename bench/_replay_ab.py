"""Replay into projections measured robustly, for bench/journal.py: best of N runs, wall clock and CPU time,
and this tree against another checkout (``--ab-tree``) taking turns on the same journal.

Each run replays the whole journal as startup does (``Journal.read_stored_lists`` into
``EventLog.apply_stored_lists``; a checkout older than those uses ``read_stored`` into ``apply_stored``, its
startup path) into a fresh catalog and tasks projection. The best run is the figure: on a machine other jobs
keep busy, a slower run measures the share of a core the bench got as much as the replay, and events per
CPU-second (process CPU time) moves less than the wall clock. Turns against another tree run in child
processes, one tree then the other, so both meet the same load; each child imports its own tree's ``kiln``
(and its compiled modules, when that tree was built).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# run in a child with PYTHONPATH=<tree>: argv = data dir, runs; prints one JSON line per run
CHILD = """
import json, sys, time
from pathlib import Path
from kiln import compiled
from kiln.eventlog import EventLog
from kiln.journal import Journal, NewRecord
from kiln.projections.catalog import CatalogProjection
from kiln.projections.tasks import TasksProjection

state = compiled.install().state
journal = Journal.open(Path(sys.argv[1]), fsync=False)
try:
    for _ in range(int(sys.argv[2])):
        log = EventLog(journal, NewRecord)
        log.add_projection(CatalogProjection())
        log.add_projection(TasksProjection())
        began, cpu = time.perf_counter(), time.process_time()
        if hasattr(journal, "read_stored_lists"):
            events = log.apply_stored_lists(journal.read_stored_lists(1))
        else:
            events = log.apply_stored(journal.read_stored(1))
        wall, used = time.perf_counter() - began, time.process_time() - cpu
        print(json.dumps({"events": events, "wall": wall, "cpu": used, "compiled": state}), flush=True)
finally:
    journal.close()
"""


def replay_runs(data_dir: Path, runs: int, tree: Path) -> list[dict[str, Any]]:
    """``runs`` full replays of ``data_dir``'s journal by the ``kiln`` of ``tree``, in one child process."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    child = subprocess.run([sys.executable, "-c", CHILD, str(data_dir), str(runs)], env=env, cwd=str(tree),
                           capture_output=True, text=True, timeout=3600, check=False)
    if child.returncode != 0:
        raise SystemExit(f"replay child for {tree} failed rc={child.returncode}: {child.stderr[-2000:]}")
    return [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]


def best(runs: list[dict[str, Any]]) -> dict[str, float]:
    """The best wall-clock and the best CPU figure among ``runs`` (events/s and events per CPU-second)."""
    return {"events": runs[0]["events"], "runs": len(runs),
            "rate": max(r["events"] / r["wall"] for r in runs), "cpu_rate": max(r["events"] / r["cpu"] for r in runs),
            "median_rate": sorted(r["events"] / r["wall"] for r in runs)[len(runs) // 2]}

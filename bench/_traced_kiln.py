"""``kiln`` with tracemalloc on: SIGUSR2 writes the biggest live allocation sites to $KILN_TRACEMALLOC_OUT.

Used by ``bench/memory.py --tracemalloc``; the report says which lines hold the Python memory that RSS
shows (memory PyAV/FFmpeg allocates in C is not seen by tracemalloc: the difference is the C side).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import tracemalloc
from pathlib import Path
from types import FrameType


def dump(_signum: int, _frame: FrameType | None) -> None:
    target = Path(os.environ.get("KILN_TRACEMALLOC_OUT", "tracemalloc.txt"))
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    current, peak = tracemalloc.get_traced_memory()
    lines = [f"== {time.strftime('%H:%M:%S')} traced {current / 1e6:.1f} MB (peak {peak / 1e6:.1f} MB)"]
    for stat in snapshot.statistics("lineno")[:15]:
        lines.append(f"{stat.size / 1e6:8.2f} MB {stat.count:8d} blocks  {stat.traceback[0]}")
    lines.append("-- by traceback (top 3)")
    for stat in snapshot.statistics("traceback")[:3]:
        lines.append(f"{stat.size / 1e6:8.2f} MB {stat.count:8d} blocks")
        lines.extend("    " + line for line in stat.traceback.format(limit=8))
    with target.open("a") as fh:
        fh.write("\n".join(lines) + "\n")


signal.signal(signal.SIGUSR2, dump)

from kiln.cli import main  # noqa: E402
from kiln.service import KilnService  # noqa: E402, F401 - imported before tracing starts (10x faster start)

tracemalloc.start(8)
sys.argv[0] = "kiln"
sys.exit(main())

"""What a running Kiln says about itself: ``GET /v1/status`` and the ``server.json`` file in the data dir.

``kiln status`` (another process) finds the running server through ``<data>/server.json`` (pid and
API address, written once the listeners are open, removed on a clean stop) and then asks its API,
so everything it prints comes from the live process, not from files it might read half-written.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln.journal.query import JournalQuery
from kiln.timefmt import format_time

SERVER_FILE = "server.json"


@dataclass
class RunningServer:
    version: str
    data_dir: Path
    config_name: str
    journal: JournalQuery
    pid: int = field(default_factory=os.getpid)
    started: float = field(default_factory=time.time)
    listeners: dict[str, tuple[str, int]] = field(default_factory=dict)  # filled when they open
    # why a failed write stopped the journal (Journal.failure): every command is refused until a restart
    journal_failure: Callable[[], str | None] = lambda: None
    # the records after the newest snapshot (what a restart would replay): {snapshotSeq, events, bytes}
    journal_tail: Callable[[], dict[str, int]] = lambda: {"snapshotSeq": 0, "events": 0, "bytes": 0}

    def status_json(self) -> dict[str, Any]:
        size = self.journal.size()
        return {
            "version": self.version,
            "pid": self.pid,
            "startTime": format_time(self.started),
            "uptimeSeconds": round(time.time() - self.started, 3),
            "dataDir": str(self.data_dir.resolve()),
            "config": self.config_name,
            "listeners": {name: {"host": host, "port": port} for name, (host, port) in self.listeners.items()},
            "journal": {"lastSeq": size.last_seq, "segments": size.segments, "bytes": size.bytes,
                        "inMemory": size.in_memory, "failure": self.journal_failure(),
                        "sinceSnapshot": self.journal_tail()},
        }

    def write_server_file(self) -> Path:
        """Atomically, so ``kiln status`` never reads half a file."""
        path = self.data_dir / SERVER_FILE
        api = self.listeners.get("api") or self.listeners.get("api_tls")
        body = {"pid": self.pid, "version": self.version, "startTime": format_time(self.started),
                "api": {"host": api[0], "port": api[1], "tls": "api" not in self.listeners} if api else None}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(body, sort_keys=True) + "\n")
        os.replace(tmp, path)
        return path

    def remove_server_file(self) -> None:
        path = self.data_dir / SERVER_FILE
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == self.pid:
                path.unlink()

"""Startup recovery of recordings a crash left unfinished (their sidecars say what they were)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from kiln.media.publish.record.session import FinishedFile, finish_inflight
from kiln.media.publish.record.writer import Inflight, inflight_dir

log = logging.getLogger(__name__)


def recover_inflight(data_dir: Path) -> list[tuple[Inflight, FinishedFile | None, str]]:
    """Finish every unfinished recording; returns (what it was, the finished file or None, problem)."""
    out: list[tuple[Inflight, FinishedFile | None, str]] = []
    folder = inflight_dir(data_dir)
    if not folder.is_dir():
        return out
    for sidecar in sorted(folder.glob("*.json")):
        try:
            inflight = Inflight(**json.loads(sidecar.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            log.error("unreadable recording sidecar path=%s error=%s", sidecar, exc)
            continue
        tmp = Path(inflight.tmp_path)
        if not tmp.exists() or tmp.stat().st_size == 0:
            inflight.remove()
            tmp.unlink(missing_ok=True)
            out.append((inflight, None, "nothing was written before the crash"))
            continue
        end = tmp.stat().st_mtime
        try:
            finished = finish_inflight(inflight, end, int(max(0.0, end - inflight.start_time) * 1000), False)
        except Exception as exc:  # one bad file must not stop the server from starting
            log.error("recording recovery failed id=%s tmp=%s error=%s", inflight.id, tmp, exc)
            out.append((inflight, None, f"could not be recovered: {exc}"))
            continue
        inflight.remove()
        out.append((inflight, finished, ""))
    return out

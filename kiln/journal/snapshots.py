"""Snapshots of the read models, so startup replays only the journal's tail.

A snapshot file is one journal-style frame (length, CRC, msgpack ``{"seq", "time", "state"}``)
written to a temporary name, fsynced and renamed, so a crash leaves either the old or the new
snapshot, never half of one. A damaged snapshot is skipped: the journal still has everything.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from pathlib import Path
from typing import Any

import msgpack

from kiln.journal.framing import HEADER
from kiln.journal.segments import fsync_dir

log = logging.getLogger(__name__)

SUFFIX = ".snap"


class SnapshotStore:
    def __init__(self, data_dir: str | Path, *, keep: int = 2) -> None:
        self.directory = Path(data_dir) / "snapshots"
        self.keep = keep

    def _files(self) -> list[tuple[int, Path]]:
        if not self.directory.is_dir():
            return []
        found = [(int(p.stem), p) for p in self.directory.iterdir() if p.suffix == SUFFIX and p.stem.isdigit()]
        return sorted(found)

    def save(self, seq: int, state: dict[str, Any]) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        body = msgpack.packb({"seq": seq, "time": time.time(), "state": state}, use_bin_type=True)
        path = self.directory / f"{seq:020d}{SUFFIX}"
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(HEADER.pack(len(body), zlib.crc32(body)) + body)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError:
            tmp.unlink(missing_ok=True)  # a full disk must not keep the half-written copy too
            raise
        os.replace(tmp, path)
        fsync_dir(self.directory)
        for _seq, old in self._files()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def load_latest(self) -> tuple[int, dict[str, Any]] | None:
        """(seq, state) of the newest readable snapshot, or None."""
        for seq, path in reversed(self._files()):
            try:
                data = path.read_bytes()
                length, crc = HEADER.unpack_from(data, 0)
                body = data[HEADER.size:HEADER.size + length]
                if len(body) != length or zlib.crc32(body) != crc:
                    raise ValueError("checksum mismatch")
                loaded = msgpack.unpackb(body, raw=False, strict_map_key=False)
                if loaded.get("seq") != seq or not isinstance(loaded.get("state"), dict):
                    raise ValueError("unexpected content")
                return seq, loaded["state"]
            except (OSError, ValueError, msgpack.UnpackException) as exc:
                log.warning("snapshot skipped file=%s error=%s", path, exc)
        return None

    def latest_seq(self) -> int:
        files = self._files()
        return files[-1][0] if files else 0

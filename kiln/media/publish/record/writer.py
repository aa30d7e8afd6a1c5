"""Writing one recorded file crash-safely (media-spec §8; issue: crash-safe recordings).

While recording, data goes to ``tmp_<random>`` in the target directory, muxed by PyAV into a
Python file Kiln owns: MP4 as fragmented MP4 with fragments of at most 0.5 s, MPEG-TS and WebM
as they are. Kiln fsyncs every half second, so a crash or power cut loses at most that much. A
sidecar in ``<data dir>/records-inflight/`` says what the temp file is, so startup can finish it.
Finishing an MP4 remuxes the fragments into a regular MP4 (moov up front); other containers are
renamed.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import string
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av

from kiln.media.model import Packet, Track
from kiln.media.publish.avbridge import Templates, to_av_packet

log = logging.getLogger(__name__)

SYNC_SECONDS = 0.5
_ALNUM = string.ascii_letters + string.digits
MP4_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "500000",
               "flush_packets": "1"}


@dataclass
class Inflight:
    """The sidecar describing an unfinished file (everything recovery needs)."""

    vhost: str
    app: str
    id: str
    transaction_id: str
    stream: str
    sequence: int
    tmp_path: str
    container: str
    file_template: str
    info_template: str
    root: str
    data_dir: str
    created_time: float
    start_time: float
    metadata: str
    interval: int
    schedule: str

    def sidecar_path(self) -> Path:
        return inflight_dir(Path(self.data_dir)) / f"{self.vhost}__{self.app}__{self.id}.json".replace("/", "_")

    def save(self) -> None:
        path = self.sidecar_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        with open(tmp, "w") as f:
            json.dump(asdict(self), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def remove(self) -> None:
        try:
            self.sidecar_path().unlink()
        except FileNotFoundError:
            pass


def inflight_dir(data_dir: Path) -> Path:
    return data_dir / "records-inflight"


def temp_name() -> str:
    return "tmp_" + "".join(secrets.choice(_ALNUM) for _ in range(32))


class FileWriter:
    def __init__(self, tmp_path: Path, container: str, tracks: list[Track]) -> None:
        self.tmp_path = tmp_path
        self.container_name = container
        self.templates = Templates(tracks)
        self.file = open(tmp_path, "w+b")  # noqa: SIM115 - closed in close()
        options = MP4_OPTIONS if container == "mp4" else {"flush_packets": "1"}
        fmt = {"mp4": "mp4", "mpegts": "mpegts", "webm": "webm"}[container]
        self.container = av.open(self.file, "w", format=fmt, options=options)
        self.streams = {t.id: self.container.add_stream_from_template(self.templates.by_track_id[t.id])
                        for t in tracks}
        self._last_sync = time.monotonic()
        self.bytes = 0

    def write(self, packet: Packet, offset: int) -> None:
        stream = self.streams.get(packet.track_id)
        if stream is None:
            return
        self.container.mux(to_av_packet(packet, stream, offset))
        self.bytes += len(packet.data)
        if time.monotonic() - self._last_sync >= SYNC_SECONDS:
            self.sync()

    def sync(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self._last_sync = time.monotonic()

    def close(self) -> int:
        """Write the trailer and close; returns the file size."""
        try:
            self.container.close()
        finally:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            self.templates.close()
        return self.tmp_path.stat().st_size


def finish_file(tmp_path: Path, final_path: Path, container: str) -> int:
    """Move a temp recording to its final name (remuxing fMP4 to a regular MP4); returns its size."""
    final_path.parent.mkdir(parents=True, exist_ok=True)
    if container != "mp4":
        os.replace(tmp_path, final_path)
        return final_path.stat().st_size
    staging = final_path.with_name(final_path.name + ".part")
    staging.unlink(missing_ok=True)  # the muxer opens it for writing: a FIFO left there would hold this thread
    remux_fragmented(tmp_path, staging)
    with open(staging, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(staging, final_path)
    tmp_path.unlink(missing_ok=True)
    return final_path.stat().st_size


def remux_fragmented(src: Path, dst: Path) -> int:
    """Copy every complete fragment of a fragmented MP4 into a regular MP4 (no decoding)."""
    count = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        mapping: dict[int, Any] = {}
        for s in inp.streams:
            if s.type in ("video", "audio"):
                mapping[s.index] = out.add_stream_from_template(s)
        try:
            for pkt in inp.demux(list(inp.streams)):
                if pkt.dts is None or pkt.stream.index not in mapping:
                    continue
                pkt.stream = mapping[pkt.stream.index]
                out.mux(pkt)
                count += 1
        except (av.error.InvalidDataError, av.error.EOFError, OSError) as exc:
            log.warning("recording tail unreadable (kept everything before it) src=%s error=%s", src, exc)
    return count

"""HLS dump: a VOD copy of a live LL-HLS output stream on disk (rest-spec §12, media-spec §2.9).

On start: the init segments, the newest segments, VOD chunklists and the requested masters are
written; then every completed segment, followed by its rewritten chunklist. The info file is
rewritten in full after every write. Files are written by one worker thread per dump, so the event
loop never waits on the disk. Beyond OME: a dump that is resumed (the stream came back, or Kiln
restarted) continues the same chunklists after an EXT-X-DISCONTINUITY, and a write failure is
reported as ``Error`` instead of silently stopping.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from kiln.control_cpu import free_thread
from kiln.media.publish.llhls.packager import Segment, TrackPackager
from kiln.media.publish.llhls.playlist import chunklist_name, init_name, segment_name
from kiln.media.publish.llhls.stream import LlhlsStream
from kiln.regular_files import read_regular, write_replacing
from kiln.timefmt import format_time, now

log = logging.getLogger(__name__)

_ITEM = re.compile(r"<Item>\s*<Seq>(\d+)</Seq>\s*<Time>([^<]*)</Time>\s*<File>([^<]*)</File>\s*</Item>")


@dataclass
class DumpItem:
    seq: int
    time: str
    file: str


@dataclass
class _TrackState:
    lines: list[str] = field(default_factory=list)   # the body of the VOD chunklist, without the header/ENDLIST
    target: int = 1


class HlsDump:
    def __init__(self, stream: LlhlsStream, *, dump_id: str, output_path: str, playlists: list[str],
                 info_file: str = "", user_data: str = "", stream_label: str = "",
                 on_written: Callable[[str, int], None] | None = None) -> None:
        self.stream = stream
        self.id = dump_id
        self.dir = Path(output_path)
        self.playlists = playlists
        self.info_file = Path(info_file) if info_file else None
        self.user_data = user_data
        self.stream_label = stream_label
        self.on_written = on_written
        self.items: list[DumpItem] = []
        self.status = "Running"
        self.error = ""
        self.enabled = True
        self._tracks: dict[int, _TrackState] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"dump-{dump_id}", initializer=free_thread)

    # -- loop side --
    def start(self) -> None:
        """Snapshot what to write now (on the loop), write it on the worker, then follow new segments."""
        first: dict[int, list[Segment]] = {}
        latest = [p.completed_segments()[-1].number for p in self.stream.packagers.values() if p.completed_segments()]
        start_at = min(latest) if latest else 0
        for track_id, pkg in self.stream.packagers.items():
            # a spilled (grace or DVR) segment's bytes are on disk, not in ``data``: a dump starts after them
            first[track_id] = [s for s in pkg.completed_segments() if s.number >= start_at and not s.spilled]
        masters = {}
        for name in self.playlists:
            base = name[:-5] if name.endswith(".m3u8") else name
            body = self.stream.master(base, "", "")
            if body is not None:
                masters[name] = body
        inits = {tid: (init_name(p.track, self.stream.key), p.init_segment) for tid, p in self.stream.packagers.items()}
        self._pool.submit(self._write_initial, inits, first, masters)
        self.stream.segment_listeners.append(self._on_segment)

    def _on_segment(self, pkg: TrackPackager, seg: Segment) -> None:
        if self.enabled:
            self._pool.submit(self._write_segment, pkg, seg)

    def stop(self) -> None:
        """stopHlsDump: no more writes; the info file says Completed."""
        self._detach()
        self._pool.submit(self._complete)

    def finish(self) -> None:
        """The live stream ended."""
        self.stop()

    def _detach(self) -> None:
        self.enabled = False
        if self._on_segment in self.stream.segment_listeners:
            self.stream.segment_listeners.remove(self._on_segment)

    # -- worker side --
    def _write(self, name: str, data: bytes) -> bool:
        path = self.dir / name
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            write_replacing(path, data)  # never opens what stands at path (a FIFO would hold this thread)
        except OSError as exc:
            self._fail(f"could not write {path}: {exc.strerror or exc}")
            return False
        self.items.append(DumpItem(len(self.items), format_time(now()), str(path)))
        if self.on_written is not None:
            self.on_written(str(path), len(self.items) - 1)
        self._write_info()
        return True

    def _fail(self, reason: str) -> None:
        self.enabled = False
        self.status = "Error"
        self.error = reason
        log.error("hls dump failed id=%s reason=%s", self.id, reason)
        self._write_info()

    def _resume_state(self, pkg: TrackPackager) -> _TrackState:
        """Continue an existing chunklist in the output directory (resumed dump)."""
        state = _TrackState()
        path = self.dir / chunklist_name(pkg.track, self.stream.key)
        existing = sorted(self.dir.glob(f"chunklist_{pkg.track.id}_*_llhls.m3u8")) if self.dir.exists() else []
        for old in existing:
            if old == path:
                continue
            try:
                body = read_regular(old).decode(errors="replace").splitlines()
            except OSError as exc:  # not a regular file (a FIFO), unreadable: not a chunklist to continue
                log.warning("hls dump ignores an old chunklist id=%s path=%s error=%s", self.id, old, exc)
                continue
            kept = [line for line in body if not line.startswith(("#EXTM3U", "#EXT-X-VERSION", "#EXT-X-TARGETDURATION",
                                                                 "#EXT-X-MEDIA-SEQUENCE", "#EXT-X-ENDLIST"))]
            if kept:
                state.lines = kept + ["#EXT-X-DISCONTINUITY"]
        state.lines.append(f'#EXT-X-MAP:URI="{init_name(pkg.track, self.stream.key)}"')
        return state

    def _write_initial(self, inits: dict[int, tuple[str, bytes]], first: dict[int, list[Segment]],
                       masters: dict[str, str]) -> None:
        if not self._load_info():
            return
        for track_id, (name, data) in inits.items():
            pkg = self.stream.packagers[track_id]
            self._tracks[track_id] = self._resume_state(pkg)
            if not self._write(name, data):
                return
        for track_id, segments in first.items():
            pkg = self.stream.packagers[track_id]
            for seg in segments:
                if not self._write_segment(pkg, seg, rewrite=False):
                    return
            self._write_chunklist(pkg)
        for name, body in masters.items():
            if not self._write(name, body.encode()):
                return

    def _write_segment(self, pkg: TrackPackager, seg: Segment, rewrite: bool = True) -> bool:
        if self.status == "Error":
            return False
        state = self._tracks.get(pkg.track.id)
        if state is None:
            return False
        name = segment_name(pkg.track, seg.number, self.stream.key)
        if not self._write(name, seg.data):
            return False
        state.lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_time(seg.wall_start)}")
        state.lines.append(f"#EXTINF:{seg.duration / pkg.timescale:.6f},")
        state.lines.append(name)
        state.target = max(state.target, round(seg.duration / pkg.timescale + 0.4999))
        return self._write_chunklist(pkg) if rewrite else True

    def _write_chunklist(self, pkg: TrackPackager) -> bool:
        state = self._tracks[pkg.track.id]
        target = max(state.target, round(self.stream.settings.segment_duration))
        body = ["#EXTM3U", "#EXT-X-VERSION:6", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-MEDIA-SEQUENCE:0",
                *state.lines, "#EXT-X-ENDLIST"]
        return self._write(chunklist_name(pkg.track, self.stream.key), ("\n".join(body) + "\n").encode())

    def _complete(self) -> None:
        if self.status == "Running":
            self.status = "Completed"
        self._write_info()
        self._pool.shutdown(wait=False)

    def _load_info(self) -> bool:
        """The items an earlier run of this dump listed; False (the dump failed) when the info file is there
        but cannot be read: not a regular file (a FIFO's open() would wait here for good), no permission."""
        if self.info_file is None:
            return True
        try:
            text = read_regular(self.info_file).decode(errors="replace")
        except FileNotFoundError:
            return True
        except OSError as exc:
            self.info_file = None  # nothing is written there either
            self._fail(f"could not read the info file: {exc.strerror or exc}")
            return False
        self.items = [DumpItem(int(m.group(1)), m.group(2), m.group(3)) for m in _ITEM.finditer(text)]
        return True

    def _write_info(self) -> None:
        if self.info_file is None:
            return
        items = "".join(f"\t\t<Item>\n\t\t\t<Seq>{i.seq}</Seq>\n\t\t\t<Time>{escape(i.time)}</Time>\n"
                        f"\t\t\t<File>{escape(i.file)}</File>\n\t\t</Item>\n" for i in self.items)
        xml = (f"<HLSDumpInfo>\n\t<UserData>{self.user_data}</UserData>\n"
               f"\t<Stream>{escape(self.stream_label)}</Stream>\n"
               f"\t<Status>{self.status}</Status>\n\t<Items>\n{items}\t</Items>\n</HLSDumpInfo>\n")
        try:
            self.info_file.parent.mkdir(parents=True, exist_ok=True)
            write_replacing(self.info_file, xml.encode())
        except OSError as exc:
            log.error("hls dump info file failed id=%s path=%s error=%s", self.id, self.info_file, exc)

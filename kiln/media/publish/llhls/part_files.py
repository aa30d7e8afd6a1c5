"""A stream's in-memory segments mirrored into unlinked files, so the player port can ``sendfile`` them.

Why: a 720p part is ~200 kB and, at a part boundary, a thousand viewers GET it at once. Written from
memory, each GET is a ~200 kB copy into the socket by the kernel on Kiln's single loop thread (about
40 µs of system time per send here); ``sendfile`` from a page-cache file hands the kernel page
references instead (about 20 µs), which is how nginx serves the same load. Each segment of each track
gets one anonymous in-memory file (``memfd_create``: no disk, no writeback, nothing left after a crash; a
page-cache file on ext4 measured the same here), its parts appended as they are cut; a part is an (offset,
length) span of it, the segment the whole file. A segment's file is made at the first request for one of
its parts or for itself (from the parts cut so far; later parts are appended as they are cut), so only
what viewers ask for is held twice (in the packager's segments and in these files: up to ~5 MB per watched
720p stream, outside the process's RSS). A file is closed when its segment leaves memory (dropped, or
spilled to the DVR store) or the stream ends. If a file cannot be made (no memory, no descriptors),
serving falls back to memory for good, logged once.
Descriptors: one per segment held in memory per track (about 7 per track with the default 3 segments), at most
a quarter of the process's descriptor limit in all, so that viewers' sockets never run out because of them;
beyond it a new segment is served from memory.
"""

from __future__ import annotations

import logging
import os
import resource

from kiln.media.publish.llhls.packager import Part, Segment, TrackPackager

log = logging.getLogger(__name__)


def _fd_budget() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 256 if soft == resource.RLIM_INFINITY else soft // 4


FD_BUDGET = _fd_budget()
# smaller answers are one write of header and body joined (kiln/http/media_protocol.py): no file for them
SENDFILE_MIN_BYTES = 16384
_open_files = [0]  # every PartFiles' open files, against FD_BUDGET


class _SegmentFile:
    __slots__ = ("fd", "spans", "size")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.spans: list[tuple[int, int]] = []  # per part index: (offset, length)
        self.size = 0


class PartFiles:
    """The files of one LlhlsStream's segments, keyed by (track id, segment number)."""

    def __init__(self) -> None:
        self._files: dict[tuple[int, int], _SegmentFile] = {}
        self._failed = False
        self.closed = False

    def add(self, pkg: TrackPackager, part: Part) -> None:
        """A part was just cut: appended to its segment's file if that segment has one (someone asked for it)."""
        if not self._files:
            return
        if part.index == 0:
            self._prune(pkg)  # a new segment: older ones may have left memory
        entry = self._files.get((pkg.track.id, part.segment))
        if entry is not None and len(entry.spans) == part.index:
            self._append(entry, part.data)

    def part(self, pkg: TrackPackager, seg: Segment, index: int) -> tuple[int, int, int] | None:
        """(fd, offset, length) of part ``index`` of ``seg``, or None (then its bytes come from memory)."""
        if len(seg.parts[index].data) <= SENDFILE_MIN_BYTES:
            return None
        entry = self._entry(pkg, seg)
        if entry is None or index >= len(entry.spans):
            return None
        offset, length = entry.spans[index]
        return (entry.fd, offset, length) if length == len(seg.parts[index].data) else None

    def segment(self, pkg: TrackPackager, seg: Segment) -> tuple[int, int, int] | None:
        """(fd, 0, length) of a complete segment, or None."""
        if not seg.complete or len(seg.data) <= SENDFILE_MIN_BYTES:
            return None
        entry = self._entry(pkg, seg)
        if entry is None or not seg.complete or entry.size != len(seg.data):
            return None
        return entry.fd, 0, entry.size

    def _entry(self, pkg: TrackPackager, seg: Segment) -> _SegmentFile | None:
        """``seg``'s file, made at its first request from the parts cut so far (later ones are appended)."""
        key = (pkg.track.id, seg.number)
        entry = self._files.get(key)
        if entry is not None or self._failed or self.closed or seg.spilled or not seg.parts:
            return entry
        self._prune(pkg)
        if _open_files[0] >= FD_BUDGET:
            return None
        try:
            entry = _SegmentFile(os.memfd_create("kiln-llhls-segment", os.MFD_CLOEXEC))
        except OSError as exc:
            self._fail(exc)
            return None
        self._files[key] = entry
        _open_files[0] += 1
        for part in seg.parts:
            if not self._append(entry, part.data):
                return None
        return entry

    def _append(self, entry: _SegmentFile, data: bytes | memoryview) -> bool:
        size = len(data)
        try:
            written = os.pwrite(entry.fd, data, entry.size)
            while written < size:
                written += os.pwrite(entry.fd, memoryview(data)[written:], entry.size + written)
        except OSError as exc:
            self._fail(exc)
            return False
        entry.spans.append((entry.size, size))
        entry.size += size
        return True

    def _fail(self, exc: OSError) -> None:
        self._failed = True
        self.close()
        log.warning("llhls part files off, parts are served from memory error=%s", exc)

    def _prune(self, pkg: TrackPackager) -> None:
        """Close the files of this track's segments no longer held in memory."""
        tid = pkg.track.id
        held = {seg.number for seg in pkg.segments if not seg.spilled}
        for key in [k for k in self._files if k[0] == tid and k[1] not in held]:
            os.close(self._files.pop(key).fd)
            _open_files[0] -= 1

    def close(self) -> None:
        self.closed = True
        for entry in self._files.values():
            os.close(entry.fd)
        _open_files[0] -= len(self._files)
        self._files.clear()

    def __len__(self) -> int:
        return len(self._files)

"""A stream's in-memory segments mirrored into unlinked files, so the player port can ``sendfile`` them.

Why: a 720p part is ~200 kB and, at a part boundary, a thousand viewers GET it at once. Written from
memory, each GET is a ~200 kB copy into the socket by the kernel on Kiln's single loop thread (about
40 µs of system time per send here); ``sendfile`` from a page-cache file hands the kernel page
references instead (about 20 µs), which is how nginx serves the same load. Each segment of each track
gets one anonymous in-memory file (``memfd_create``: no disk, no writeback, nothing left after a crash; a
page-cache file on ext4 measured the same here), its parts appended as they are cut; a part is an (offset,
length) span of it, the segment the whole file. The price: the live window's bytes are held twice (in the
packager's segments and in these files), about 5 MB per 720p stream, outside the process's RSS; so a track
gets a file for a new segment only if one of its parts or segments was asked for during the previous one (a
stream nobody plays over LL-HLS costs nothing; a new viewer's first segment is served from memory).
A file is closed when its segment leaves memory (dropped, or spilled to the DVR store) or the stream
ends. If the files cannot be made (no space, no descriptors), serving falls back to memory, logged once.
Descriptors: one per segment held in memory per track (about 7 per track with the default 3 segments), at most
a quarter of the process's descriptor limit in all, so that viewers' sockets never run out because of them;
beyond it a new segment is served from memory.
"""

from __future__ import annotations

import logging
import os
import resource

from kiln.media.publish.llhls.packager import Part, TrackPackager

log = logging.getLogger(__name__)


def _fd_budget() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 256 if soft == resource.RLIM_INFINITY else soft // 4


FD_BUDGET = _fd_budget()
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
        self._wanted: set[int] = set()  # tracks with a part or segment asked for since their segment began
        self._failed = False
        self.closed = False

    def add(self, pkg: TrackPackager, part: Part) -> None:
        """Append a part just cut (on the loop: a page-cache write of its bytes, twice a second per track)."""
        if self._failed or self.closed:
            return
        key = (pkg.track.id, part.segment)
        entry = self._files.get(key)
        try:
            if entry is None:
                self._prune(pkg)
                if part.index != 0 or _open_files[0] >= FD_BUDGET or pkg.track.id not in self._wanted:
                    return  # begun before its file could be made, no descriptor to spare, or no viewer: from memory
                self._wanted.discard(pkg.track.id)
                entry = self._files[key] = _SegmentFile(os.memfd_create("kiln-llhls-segment", os.MFD_CLOEXEC))
                _open_files[0] += 1
            if len(entry.spans) != part.index:
                return  # out of step (never expected): the spans would not match the parts
            data = part.data
            size = len(data)
            written = os.pwrite(entry.fd, data, entry.size)
            while written < size:
                written += os.pwrite(entry.fd, memoryview(data)[written:], entry.size + written)
        except OSError as exc:
            self._failed = True
            self.close()
            log.warning("llhls part files off, parts are served from memory error=%s", exc)
            return
        entry.spans.append((entry.size, size))
        entry.size += size

    def want(self, track_id: int) -> None:
        """A viewer asked for this track's media (part() and segment() say so themselves)."""
        self._wanted.add(track_id)

    def part(self, track_id: int, segment: int, index: int, size: int) -> tuple[int, int, int] | None:
        """(fd, offset, length) of a part, or None (then its bytes come from memory)."""
        self._wanted.add(track_id)
        entry = self._files.get((track_id, segment))
        if entry is None or index >= len(entry.spans):
            return None
        offset, length = entry.spans[index]
        return (entry.fd, offset, length) if length == size else None

    def segment(self, track_id: int, segment: int, size: int) -> tuple[int, int, int] | None:
        """(fd, 0, length) of a whole segment whose parts are all in its file, or None."""
        self._wanted.add(track_id)
        entry = self._files.get((track_id, segment))
        if entry is None or entry.size != size:
            return None
        return entry.fd, 0, size

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

"""A stream's in-memory segments mirrored into files for sendfile (kiln/media/publish/llhls/part_files.py): every
part and every complete segment in a file holds exactly the bytes served from memory, a segment's file is closed
when it leaves memory, and the stream's end closes them all."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from kiln.media.publish.llhls.part_files import PartFiles
from tests.unit.publish.test_llhls_fast_lane import AUDIO, Live


def _feed_watched(live: Live, seconds: float) -> None:
    """Feed the stream while a viewer keeps asking for its parts (so each new segment gets a file)."""
    for _ in range(round(seconds * 10)):
        live.stream.part_files.want(AUDIO.id)
        live.feed(0.1)


def _read(span: tuple[int, int, int] | None) -> bytes:
    assert span is not None
    fd, offset, length = span
    return os.pread(fd, length, offset)


def test_parts_and_segments_in_files_are_the_bytes_in_memory_and_leave_with_them() -> None:
    async def run() -> None:
        live = Live()
        _feed_watched(live, 9.0)
        pkg, files = live.audio, live.stream.part_files
        held = [seg for seg in pkg.segments if not seg.spilled]
        assert len(held) >= 4
        for seg in held:
            for part in seg.parts:
                span = files.part(AUDIO.id, seg.number, part.index, len(part.data))
                assert _read(span) == bytes(part.data), (seg.number, part.index)
            if seg.complete:
                assert _read(files.segment(AUDIO.id, seg.number, len(seg.data))) == seg.data
            else:  # the growing segment: not whole yet
                assert files.segment(AUDIO.id, seg.number, len(seg.data)) is None
        # only segments still held in memory (and at most the one that just left) have a file
        numbers = {seg.number for seg in held}
        assert len(files) <= len(numbers) + 1
        gone = pkg.segments[0].number - 1
        assert files.part(AUDIO.id, gone, 0, 1) is None
        # a size that does not match is not served from the file
        seg = held[-1]
        assert files.part(AUDIO.id, seg.number, 0, len(seg.parts[0].data) + 1) is None

        spans = [files.part(AUDIO.id, seg.number, 0, len(seg.parts[0].data)) for seg in held]
        live.stream.end("test")
        assert len(files) == 0 and files.part(AUDIO.id, held[-1].number, 0, len(held[-1].parts[0].data)) is None
        for span in spans:  # their descriptors are closed
            assert span is not None
            try:
                os.fstat(span[0])
            except OSError:
                continue
            raise AssertionError(f"descriptor {span[0]} still open after the stream ended")
        await live.client.aclose()

    asyncio.run(run())


def test_without_files_parts_are_served_from_memory(monkeypatch: Any) -> None:
    def no_file(name: str, flags: int = 0) -> int:
        raise OSError(24, "Too many open files")

    async def run() -> None:
        live = Live()
        live.stream.part_files = PartFiles()
        monkeypatch.setattr(os, "memfd_create", no_file)
        _feed_watched(live, 3.0)
        pkg = live.audio
        last = pkg.last_part()
        assert last is not None
        session = await live.session()
        answer = live.fast(f"/app/cam/part_1_{last[0]}_{last[1]}_audio_{live.stream.key}_llhls.m4s?session={session}")
        assert answer.file is None and answer.status == 200 and len(answer.body) > 0
        await live.client.aclose()

    asyncio.run(run())


def test_files_stay_within_their_share_of_descriptors(monkeypatch: Any) -> None:
    import kiln.media.publish.llhls.part_files as part_files

    async def run() -> None:
        monkeypatch.setattr(part_files, "FD_BUDGET", part_files._open_files[0] + 2)
        live = Live()
        _feed_watched(live, 9.0)
        files = live.stream.part_files
        assert len(files) == 2, "no more files than the budget"
        held = [seg for seg in live.audio.segments if not seg.spilled]
        session = await live.session()
        for seg in held:
            for part in seg.parts:
                answer = live.fast(f"/app/cam/part_1_{seg.number}_{part.index}_audio_{live.stream.key}_llhls.m4s"
                                   f"?session={session}")
                assert answer.status == 200 and bytes(answer.body) == bytes(part.data)
                if answer.file is not None:
                    assert _read(answer.file) == bytes(part.data)
        before = part_files._open_files[0]
        live.stream.end("test")
        assert part_files._open_files[0] == before - 2
        await live.client.aclose()

    asyncio.run(run())


def test_a_track_nobody_asks_for_gets_no_files() -> None:
    async def run() -> None:
        live = Live()
        live.feed(6.0)
        files = live.stream.part_files
        assert len(files) == 0, "no viewer: the segments stay in memory only"
        seg = live.audio.segments[-1]
        assert files.part(AUDIO.id, seg.number, 0, len(seg.parts[0].data)) is None  # asked: wanted from now
        live.feed(1.5)  # the next segment begins: it gets a file
        assert len(files) == 1
        await live.client.aclose()

    asyncio.run(run())

"""A stream's segments mirrored into files for sendfile (kiln/media/publish/llhls/part_files.py): a segment gets
its file at its first request, every part and complete segment the fast lane sends from a file holds exactly the
bytes the Starlette path serves from memory (parts cut later are appended), files leave with their segments and
the stream, stay within their descriptor budget, and serving falls back to memory when no file can be made."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import kiln.media.publish.llhls.part_files as part_files
from kiln.media.model import Packet
from tests.unit.publish.test_llhls_fast_lane import AUDIO, FRAME, Live

FRAME_BYTES = 2048  # ~23 frames a 0.5 s part: ~47 kB, above SENDFILE_MIN_BYTES


def feed(live: Live, seconds: float) -> None:
    n = int(seconds * 48000 / FRAME)
    for i in range(live.sent, live.sent + n):
        live.stream._on_packet(Packet(AUDIO.id, i * FRAME, i * FRAME, AUDIO.time_base,
                                      i.to_bytes(4, "big") * (FRAME_BYTES // 4), keyframe=True))
    live.sent += n


def read(span: tuple[int, int, int] | None) -> bytes:
    assert span is not None
    fd, offset, length = span
    return os.pread(fd, length, offset)


async def get_both(live: Live, session: str, name: str) -> tuple[Any, bytes]:
    """The fast lane's answer for ``name`` and the Starlette path's body for it."""
    path = f"/app/cam/{name}?session={session}"
    reference = await live.client.get(path)
    assert reference.status_code == 200, path
    return live.fast(path), reference.content


def test_files_are_made_on_request_hold_the_served_bytes_and_leave_with_their_segments() -> None:
    async def run() -> None:
        live = Live()
        feed(live, 4.2)
        session = await live.session()
        files, key = live.stream.part_files, live.stream.key
        assert len(files) == 0, "nobody asked yet: no file"
        pkg = live.audio
        growing = pkg.segments[-1]
        assert not growing.complete and len(growing.parts) >= 1
        answer, body = await get_both(live, session, f"part_1_{growing.number}_0_audio_{key}_llhls.m4s")
        assert len(files) == 1 and read(answer.file) == bytes(answer.body) == body
        feed(live, 0.5)  # a later part of the same segment is appended as it is cut
        index = len(growing.parts) - 1
        assert index >= 1
        answer, body = await get_both(live, session, f"part_1_{growing.number}_{index}_audio_{key}_llhls.m4s")
        assert len(files) == 1 and read(answer.file) == body
        done = [seg for seg in pkg.segments if seg.complete and not seg.spilled][-1]
        answer, body = await get_both(live, session, f"seg_1_{done.number}_audio_{key}_llhls.m4s")
        assert read(answer.file) == body == done.data
        head = live.fast(f"/app/cam/seg_1_{done.number}_audio_{key}_llhls.m4s?session={session}", "HEAD")
        assert head.file == answer.file  # the same file

        feed(live, 8.0)  # both segments leave memory: their files are closed when the next ones begin
        assert len(files) == 0
        for span in (answer.file,):
            assert span is not None
            try:
                os.fstat(span[0])
            except OSError:
                continue
            raise AssertionError(f"descriptor {span[0]} still open after its segment left")

        newest = pkg.segments[-1]
        answer, _ = await get_both(live, session, f"part_1_{newest.number}_0_audio_{key}_llhls.m4s")
        assert answer.file is not None
        live.stream.end("test")
        assert len(files) == 0
        await live.client.aclose()

    asyncio.run(run())


def test_small_answers_get_no_file() -> None:
    async def run() -> None:
        live = Live()
        live.feed(3.0)  # the harness's 32-byte frames: parts of under 1 kB, written with their header
        session = await live.session()
        last = live.audio.last_part()
        assert last is not None
        answer, body = await get_both(live, session, f"part_1_{last[0]}_{last[1]}_audio_{live.stream.key}_llhls.m4s")
        assert answer.file is None and bytes(answer.body) == body
        assert len(live.stream.part_files) == 0
        await live.client.aclose()

    asyncio.run(run())


def test_files_stay_within_their_share_of_descriptors(monkeypatch: Any) -> None:
    async def run() -> None:
        monkeypatch.setattr(part_files, "FD_BUDGET", part_files._open_files[0] + 2)
        live = Live()
        feed(live, 6.0)
        session = await live.session()
        files, key = live.stream.part_files, live.stream.key
        segs = [seg for seg in live.audio.segments if seg.complete and not seg.spilled][-3:]
        assert len(segs) == 3
        answers = [await get_both(live, session, f"seg_1_{seg.number}_audio_{key}_llhls.m4s") for seg in segs]
        assert len(files) == 2, "no more files than the budget"
        assert [a.file is not None for a, _ in answers] == [True, True, False]
        assert all(bytes(a.body) == body for a, body in answers), "beyond the budget: served from memory"
        live.stream.end("test")
        await live.client.aclose()

    asyncio.run(run())


def test_without_files_parts_are_served_from_memory(monkeypatch: Any) -> None:
    def no_file(name: str, flags: int = 0) -> int:
        raise OSError(24, "Too many open files")

    async def run() -> None:
        live = Live()
        feed(live, 3.0)
        monkeypatch.setattr(os, "memfd_create", no_file)
        session = await live.session()
        last = live.audio.last_part()
        assert last is not None
        answer, body = await get_both(live, session, f"part_1_{last[0]}_{last[1]}_audio_{live.stream.key}_llhls.m4s")
        assert answer.file is None and answer.status == 200 and bytes(answer.body) == body
        monkeypatch.undo()
        answer, _ = await get_both(live, session, f"part_1_{last[0]}_{last[1]}_audio_{live.stream.key}_llhls.m4s")
        assert answer.file is None, "off for good after a failure (logged once)"
        await live.client.aclose()

    asyncio.run(run())

"""LL-HLS memory: a completed segment's bytes are held once (its parts are views into them), and without
DVR the grace segments live on disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kiln.media.publish.llhls.dvr import DvrStore
from kiln.media.publish.llhls.packager import GRACE_SEGMENTS, Segment, TrackPackager
from kiln.media.publish.llhls.playlist import segment_name
from tests.unit.publish.test_llhls_dvr import AUDIO, Recorder, feed, packager


def test_a_completed_segment_holds_its_bytes_once_and_its_parts_still_answer() -> None:
    rec = Recorder()
    pkg = packager(rec, dvr_window=0.0)
    feed(pkg, 3.5)
    done = pkg.completed_segments()
    assert len(done) >= 2
    for seg in done:
        whole = seg.data
        assert whole == b"".join(rec.parts[(seg.number, p.index)] for p in seg.parts)  # the bytes handed out
        for part in seg.parts:
            assert isinstance(part.data, memoryview) and part.data.obj is whole  # a view, not a copy
            assert bytes(part.data) == rec.parts[(seg.number, part.index)]
    growing = pkg.segments[-1]
    assert not growing.complete and all(isinstance(p.data, bytes) for p in growing.parts)


def test_without_dvr_the_grace_segments_spill_and_still_answer(tmp_path: Path) -> None:
    """OME keeps 3 unlisted "grace" segments downloadable; Kiln keeps their bytes on disk, not in memory,
    and deletes the files as they leave retention."""
    async def run() -> None:
        store = DvrStore(asyncio.get_running_loop(), tmp_path / "s")
        rec = Recorder()

        def spill(pkg: TrackPackager, seg: Segment, data: bytes) -> None:
            rec.on_spill(pkg, seg, data)
            store.put(segment_name(pkg.track, seg.number, "K"), data)

        def drop(pkg: TrackPackager, seg: Segment) -> None:
            rec.on_drop(pkg, seg)
            store.delete(segment_name(pkg.track, seg.number, "K"))

        pkg = TrackPackager(AUDIO, chunk_duration=0.5, segment_duration=1.0, segment_count=3, on_part=rec.on_part,
                            on_spill=spill, on_drop=drop, spill_grace=True)
        feed(pkg, 30.0)
        await asyncio.to_thread(store.flush)
        await asyncio.sleep(0)  # the write-done callbacks run on the loop
        listed = pkg.live_segments()
        in_memory = [s for s in pkg.segments if not s.spilled]
        assert in_memory == listed and len(listed) == 3 + 1  # SegmentCount completed + the growing one
        grace = [s for s in pkg.segments if s.spilled]
        assert len(grace) == GRACE_SEGMENTS and [s.number for s in grace + listed] == \
            list(range(grace[0].number, listed[-1].number + 1))
        for seg in grace:
            bytes_handed = b"".join(v for k, v in sorted(rec.parts.items()) if k[0] == seg.number)
            assert await store.read(segment_name(AUDIO, seg.number, "K")) == bytes_handed
        on_disk = sorted(int(p.name.split("_")[2]) for p in (tmp_path / "s").iterdir())
        assert on_disk == [s.number for s in grace]  # older ones were deleted as they left retention
        assert rec.dropped and all(spilled for _, spilled in rec.dropped)
        assert pkg.listed_segments() == listed  # the playlist is unchanged: grace segments stay unlisted

    asyncio.run(run())

"""LL-HLS memory: a completed segment's bytes are held once, its parts being views into them."""

from __future__ import annotations

from tests.unit.publish.test_llhls_dvr import Recorder, feed, packager


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

"""LL-HLS DVR: the window MaxDuration long, segments beyond the live window spilled to disk and
still listed, their files deleted when they leave the window and when the stream ends."""

from __future__ import annotations

import asyncio
import logging
import re
from fractions import Fraction
from pathlib import Path

import pytest

from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.publish.llhls.dvr import DvrSettings, DvrStore, stream_directory
from kiln.media.publish.llhls.packager import GRACE_SEGMENTS, Part, Segment, TrackPackager
from kiln.media.publish.llhls.playlist import ChunklistOptions, render_chunklist, segment_name
from kiln.media.publish.llhls.publisher import settings_from

RATE = 48000
FRAME = 1024                      # AAC samples per frame
AUDIO = Track(0, MediaKind.AUDIO, Codec.AAC, Fraction(1, RATE), config=b"\x11\x90", sample_rate=RATE, channels=2,
              samples_per_frame=FRAME, codec_string="mp4a.40.2")


class Recorder:
    """What the packager hands out: every part's bytes, spilled segments' bytes, dropped segments."""

    def __init__(self) -> None:
        self.parts: dict[tuple[int, int], bytes] = {}
        self.spilled: dict[int, bytes] = {}
        self.dropped: list[tuple[int, bool]] = []

    def on_part(self, _pkg: TrackPackager, part: Part) -> None:
        self.parts[(part.segment, part.index)] = part.data

    def on_spill(self, _pkg: TrackPackager, seg: Segment, data: bytes) -> None:
        self.spilled[seg.number] = data

    def on_drop(self, _pkg: TrackPackager, seg: Segment) -> None:
        self.dropped.append((seg.number, seg.spilled))


def packager(rec: Recorder, *, dvr_window: float, segment_count: int = 3) -> TrackPackager:
    return TrackPackager(AUDIO, chunk_duration=0.5, segment_duration=1.0, segment_count=segment_count,
                         on_part=rec.on_part, on_spill=rec.on_spill, on_drop=rec.on_drop, dvr_window=dvr_window)


def feed(pkg: TrackPackager, seconds: float) -> None:
    """``seconds`` of AAC frames with distinct payloads (so bytes can be told apart)."""
    start = 0 if pkg.last is None else pkg.last.dts // FRAME + 1  # after what the packager holds
    frames = int(seconds * RATE / FRAME)
    for i in range(start, start + frames):
        pkg.push(Packet(0, i * FRAME, i * FRAME, AUDIO.time_base, i.to_bytes(4, "big") * 8, keyframe=True),
                 1_700_000_000.0 + i * FRAME / RATE)


def seconds(segs: list[Segment]) -> float:
    return sum(s.duration for s in segs) / RATE


def test_dvr_window_lists_max_duration_and_keeps_grace_segments_beyond_it() -> None:
    rec = Recorder()
    pkg = packager(rec, dvr_window=10.0)
    feed(pkg, 40.0)
    window = pkg.dvr_segments()
    # segments last 1.472 s here (three 0.49 s parts): the window holds as many as fit in 10 s
    assert len(window) == 6 and seconds(window) <= 10.0
    assert seconds(window) + window[0].duration / RATE > 10.0  # one more would not fit
    assert window[-1] is pkg.completed_segments()[-1]
    assert [s.number for s in window] == list(range(window[0].number, window[-1].number + 1))
    # retained: the window plus OME's 3 grace segments (downloadable, no longer listed)
    older = [s for s in pkg.completed_segments() if s.number < window[0].number]
    assert len(older) == GRACE_SEGMENTS
    assert rec.dropped and all(spilled for _, spilled in rec.dropped)
    assert rec.dropped[0][0] == 0 and rec.dropped[-1][0] == older[0].number - 1


def test_window_never_shorter_than_segment_count() -> None:
    rec = Recorder()
    pkg = packager(rec, dvr_window=2.0, segment_count=6)
    feed(pkg, 20.0)
    assert len(pkg.dvr_segments()) == 6


def test_segments_beyond_the_live_window_are_spilled_and_leave_memory() -> None:
    rec = Recorder()
    pkg = packager(rec, dvr_window=3600.0)
    feed(pkg, 30.0)
    in_memory = [s for s in pkg.segments if not s.spilled]
    assert len(in_memory) <= pkg.memory_segments == 3 + GRACE_SEGMENTS + 1
    spilled = [s for s in pkg.segments if s.spilled]
    assert len(spilled) >= 12 and all(s.parts == [] and s.complete for s in spilled)
    for seg in spilled:
        # the bytes handed over are exactly the segment: its parts, concatenated
        parts = sorted((k, v) for k, v in rec.parts.items() if k[0] == seg.number)
        assert rec.spilled[seg.number] == b"".join(v for _, v in parts)
        assert seg.duration > 0  # still listable: the duration outlives the bytes
    assert not rec.dropped  # an hour of window: nothing left it yet


def test_without_dvr_nothing_spills_and_retention_is_the_live_window() -> None:
    rec = Recorder()
    pkg = packager(rec, dvr_window=0.0)
    feed(pkg, 30.0)
    assert not rec.spilled and not any(s.spilled for s in pkg.segments)
    assert len(pkg.segments) <= pkg.memory_segments
    assert pkg.listed_segments() == pkg.live_segments()


def test_chunklist_lists_the_dvr_window_beyond_segment_count() -> None:
    rec = Recorder()
    pkg = packager(rec, dvr_window=20.0)
    feed(pkg, 40.0)
    text = render_chunklist(pkg, ChunklistOptions("KEY", "session=1_abc"))
    window = pkg.dvr_segments()
    assert text.count("#EXTINF") == len(window) > 3 * 4
    assert f"#EXT-X-MEDIA-SEQUENCE:{window[0].number}\n" in text
    listed = [int(n) for n in re.findall(r"seg_0_(\d+)_audio_KEY_llhls.m4s\?session=1_abc", text)]
    assert listed == [s.number for s in window]
    # parts stay listed for the last three segments only, as without DVR
    with_parts = {int(n) for n in re.findall(r"#EXT-X-PART:.*part_0_(\d+)_", text)}
    assert with_parts and with_parts <= {s.number for s in pkg.listed_segments()[-3:]}
    # _HLS_rewind=NO: the live edge only
    live = render_chunklist(pkg, ChunklistOptions("KEY", rewind=False))
    assert live.count("#EXTINF") <= 4


def test_dvr_settings_parse_with_ome_defaults() -> None:
    assert settings_from({}).dvr == DvrSettings(False, "/tmp/ll_hls_dvr", 3600.0)
    on = settings_from({"dvr": {"enable": "true", "tempStoragePath": "/var/dvr", "maxDuration": "120"}}).dvr
    assert on == DvrSettings(True, "/var/dvr", 120.0)
    assert settings_from({"dvr": {"enable": True}}).dvr == DvrSettings(True, "/tmp/ll_hls_dvr", 3600.0)


def test_store_writes_serves_and_deletes_files(tmp_path: Path) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        directory = stream_directory(str(tmp_path), "default", "app/x", "live", "KEY")
        assert directory == tmp_path / "default" / "app%2Fx" / "live" / "KEY"
        store = DvrStore(loop, directory)
        store.put("seg_0_1_audio_KEY_llhls.m4s", b"one")
        store.put("seg_0_2_audio_KEY_llhls.m4s", b"two")
        assert await store.read("seg_0_1_audio_KEY_llhls.m4s") == b"one"  # served while (or after) writing
        await asyncio.to_thread(store.flush)
        await asyncio.sleep(0)  # the write-done callbacks run on the loop
        assert store.memory_bytes() == 0  # written: no longer held in memory
        assert (directory / "seg_0_2_audio_KEY_llhls.m4s").read_bytes() == b"two"
        assert await store.read("seg_0_2_audio_KEY_llhls.m4s") == b"two"
        store.delete("seg_0_1_audio_KEY_llhls.m4s")
        await asyncio.to_thread(store.flush)
        assert not (directory / "seg_0_1_audio_KEY_llhls.m4s").exists()
        assert await store.read("seg_0_1_audio_KEY_llhls.m4s") is None
        store.close()
        await asyncio.to_thread(store.flush)
        assert not directory.exists()
        assert (tmp_path / "default").exists()  # only this stream's directory goes

    asyncio.run(run())


def test_a_stream_s_directory_is_made_as_it_starts_and_a_bad_one_is_logged_then(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        good = DvrStore(loop, tmp_path / "default" / "app" / "live" / "K")
        blocker = tmp_path / "a-file"
        blocker.write_bytes(b"")
        bad = DvrStore(loop, blocker / "live" / "K")  # a TempStoragePath below a regular file
        await asyncio.to_thread(good.flush)
        await asyncio.to_thread(bad.flush)
        assert (tmp_path / "default" / "app" / "live" / "K").is_dir()  # before any segment spilled

    with caplog.at_level(logging.ERROR, logger="kiln.media.publish.llhls.dvr"):
        asyncio.run(run())
    made = [r.getMessage() for r in caplog.records if "directory could not be made" in r.getMessage()]
    assert len(made) == 1 and str(tmp_path / "a-file" / "live" / "K") in made[0]


def test_segments_leaving_the_window_lose_their_files(tmp_path: Path) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        store = DvrStore(loop, tmp_path / "s")

        def spill(pkg: TrackPackager, seg: Segment, data: bytes) -> None:
            store.put(segment_name(pkg.track, seg.number, "K"), data)

        def drop(pkg: TrackPackager, seg: Segment) -> None:
            store.delete(segment_name(pkg.track, seg.number, "K"))

        pkg = TrackPackager(AUDIO, chunk_duration=0.5, segment_duration=1.0, segment_count=3, dvr_window=15.0,
                            on_spill=spill, on_drop=drop)
        feed(pkg, 40.0)
        await asyncio.to_thread(store.flush)
        await asyncio.sleep(0)
        on_disk = sorted(int(p.name.split("_")[2]) for p in (tmp_path / "s").iterdir())
        assert on_disk == sorted(s.number for s in pkg.segments if s.spilled)
        assert on_disk[0] == pkg.segments[0].number  # nothing older than the retained segments
        assert len(on_disk) >= 4 and store.memory_bytes() == 0
        first = pkg.segments[0]
        assert await store.read(segment_name(AUDIO, first.number, "K")) is not None

    asyncio.run(run())

"""A scheduled channel's worker against real files: where items are, how long they play, what counts as failed."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from kiln.events.schedules import ChannelStream, Item, Schedule
from kiln.media.ingest.schedule.plan import Slot
from kiln.media.ingest.schedule.worker import ScheduleHooks, ScheduleWorker, _Lengths
from kiln.media.stream.live import LiveStream


@pytest.fixture(scope="module")
def one_second(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 s of 160x90 H.264 at 20 fps in MP4."""
    root = tmp_path_factory.mktemp("media")
    with av.open(str(root / "a.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=20)
        stream.width, stream.height, stream.pix_fmt = 160, 90, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 20)
        source = av.open("testsrc2=size=160x90:rate=20", format="lavfi")
        for index, frame in enumerate(source.decode(video=0)):
            if index == 20:
                break
            frame.pts = index
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
        source.close()
    return root


def test_an_absolute_file_url_names_a_file_under_the_media_root(tmp_path: Path) -> None:
    lengths = _Lengths(tmp_path / "media")
    assert lengths.path(Item("file://a/b.mp4")) == tmp_path / "media" / "a" / "b.mp4"
    # OME appends the URL's path to MediaRootDir: file:///etc/passwd is <root>/etc/passwd, never /etc/passwd
    assert lengths.path(Item("file:///etc/passwd")) == tmp_path / "media" / "etc" / "passwd"
    (tmp_path / "outside.mp4").write_bytes(b"not media")
    assert lengths(Item(f"file://{tmp_path}/outside.mp4")) == 0  # looked for under the root: not there


def test_an_item_plays_for_its_duration_or_to_the_end_of_its_file(one_second: Path) -> None:
    lengths = _Lengths(one_second)
    assert lengths(Item("file://a.mp4")) == 1000
    assert lengths(Item("file://a.mp4", 200)) == 800
    # a duration past the file's end would leave the schedule's clock inside an item with nothing left to play
    assert lengths(Item("file://a.mp4", 0, 5000)) == 1000
    assert lengths(Item("file://a.mp4", 0, 1000)) == 1000
    assert lengths(Item("file://a.mp4", 2000)) == 0
    assert lengths(Item("file://missing.mp4", 0, 5000)) == 0


def test_an_item_cut_short_by_a_new_schedule_is_not_a_failed_file(one_second: Path) -> None:
    item = Item("file://a.mp4")
    video_only = Schedule(ChannelStream("ch", audio_track=False), (item,))
    stream = LiveStream("default", "tv", "ch", source_type="Scheduled", source_url="", profiles=[])
    worker = ScheduleWorker("default/tv", video_only, one_second, ScheduleHooks(lambda close: stream, lambda r: None))
    worker.replace(video_only)  # a PATCH came before the item's first packet went out
    assert worker._play(stream, Slot(None, 0, item, 0, 1000))
    worker._replaced = False
    assert worker._play(stream, Slot(None, 0, item, 0, 1000)) and worker.items_played == 1

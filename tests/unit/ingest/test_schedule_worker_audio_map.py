"""A scheduled channel with an AudioMap against a real file: the worker carries the file's first N audio tracks,
each labelled by its item, both with all their packets; a file with fewer audio tracks than the map fails."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kiln.events.schedules import AudioMapItem, ChannelStream, Item, Schedule
from kiln.media.ingest.schedule.plan import Slot
from kiln.media.ingest.schedule.worker import ScheduleHooks, ScheduleWorker
from kiln.media.model import MediaKind, Packet
from kiln.media.stream.hub import CallbackSubscriber
from kiln.media.stream.live import LiveStream

MAP = (AudioMapItem("English", "en", "public.accessibility.describes-video"), AudioMapItem("Korean", "ko"))


@pytest.fixture(scope="module")
def two_tones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Half a second of 160x90 video and two AAC tracks (440 Hz, then 2000 Hz) in MP4."""
    root = tmp_path_factory.mktemp("media")
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=20",
                    "-f", "lavfi", "-i", "sine=f=440:r=48000", "-f", "lavfi", "-i", "sine=f=2000:r=48000",
                    "-map", "0:v", "-map", "1:a", "-map", "2:a", "-t", "0.5", "-c:v", "libx264", "-g", "10",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k", str(root / "two.mp4")],
                   check=True, timeout=60)
    return root


def _play(root: Path, audio_map: tuple[AudioMapItem, ...]) -> tuple[bool, LiveStream, list[Packet]]:
    item = Item("file://two.mp4")
    schedule = Schedule(ChannelStream("ch", audio_map=audio_map), (item,))
    stream = LiveStream("default", "tv", "ch", source_type="Scheduled", source_url="", profiles=[])
    seen: list[Packet] = []
    stream.input.subscribe(CallbackSubscriber("test", seen.append), from_keyframe=False)
    worker = ScheduleWorker("default/tv", schedule, root, ScheduleHooks(lambda close: stream, lambda r: None))
    worker._describe(stream)  # as when the channel's stream opens
    played = worker._play(stream, Slot(None, 0, item, 0, 500))
    stream.end("test over")
    return played, stream, seen


def test_each_of_the_maps_tracks_is_carried_with_its_packets(two_tones: Path) -> None:
    played, stream, seen = _play(two_tones, MAP)
    assert played
    audios = [t for t in stream.tracks.values() if t.kind is MediaKind.AUDIO]
    assert [(t.label, t.language, t.characteristics) for t in audios] == [
        ("English", "en", "public.accessibility.describes-video"), ("Korean", "ko", "")]
    audio_ids = [t.id for t in audios]
    counts = {i: sum(p.track_id == i for p in seen) for i in audio_ids}
    assert min(counts.values()) >= 20, counts  # ~23 AAC frames each in 0.5 s: none dropped as "not forward"


def test_without_a_map_one_audio_track_is_carried(two_tones: Path) -> None:
    played, stream, _ = _play(two_tones, ())
    assert played and sum(t.kind is MediaKind.AUDIO for t in stream.tracks.values()) == 1


def test_a_file_with_fewer_audio_tracks_than_the_map_cannot_play(two_tones: Path) -> None:
    played, stream, _ = _play(two_tones, (*MAP, AudioMapItem("Japanese", "ja")))
    assert not played and not stream.tracks

"""A scheduled channel's worker against real files: where items are, how long they play, what counts as failed."""

from __future__ import annotations

import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest

from kiln.config.values import AudioLabel
from kiln.events.schedules import AudioMapItem, ChannelStream, Item, Program, Schedule
from kiln.media.ingest.demux.convert import AvConverter
from kiln.media.ingest.schedule.board import ScheduleBoard
from kiln.media.ingest.schedule.plan import LIVE_FOREVER_MS, Slot
from kiln.media.ingest.schedule.worker import ScheduleHooks, ScheduleWorker, _Lengths
from kiln.media.model import MediaKind, Packet, Track
from kiln.media.stream.hub import Subscriber
from kiln.media.stream.live import LiveStream
from kiln.media.stream.loops import ChannelFeeds
from kiln.media.stream.registry import StreamRegistry
from tests.unit.ingest.test_multiplex_worker import wait_until


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


# -- stream:// items: a real source stream, its real output hub, the channel's own stream -------------------------

CAM = "stream://default/app/cam"
BYPASS = {"name": "bypass", "outputStreamName": "${OriginStreamName}", "encodes": {
    "videos": [{"name": "bypass_video", "bypass": True}], "audios": [{"name": "bypass_audio", "bypass": True}]}}


def make_av(path: Path, video: str, audio: str, seconds: int) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio,
                    "-t", str(seconds), "-c:v", "libx264", "-g", "10", "-bf", "0",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k", str(path)], check=True, timeout=60)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """red.mp4 (a file item, 2 s) and cam.mp4 (what the camera sends, 10 s of moving pictures and noise: no two
    packets alike, so each tells where it came from), H.264 and AAC."""
    root = tmp_path_factory.mktemp("live")
    make_av(root / "red.mp4", "color=red:s=160x90:r=20", "sine=f=440:r=48000", 2)
    make_av(root / "cam.mp4", "testsrc2=s=192x108:r=20", "anoisesrc=r=48000:a=0.3", 10)
    make_av(root / "cam44.mp4", "testsrc2=s=192x108:r=20", "anoisesrc=r=44100:a=0.3", 10)
    return root


def demuxed(path: Path) -> tuple[list[Track], list[Packet]]:
    converter = AvConverter()
    tracks: list[Track] = []
    packets: list[Packet] = []
    with av.open(str(path)) as container:
        for stream in container.streams:
            converter.add_stream(stream)
        for packet in container.demux():
            track, out = converter.convert(packet)
            if track is not None:
                tracks.append(track)
            packets.extend(out)
    return tracks, sorted(packets, key=lambda p: p.dts * p.time_base)


class Camera:
    """A live source stream fed in real time, looping its file with timestamps going forward, from its own clock
    (the tests are over before it loops)."""

    def __init__(self, media: Path, registry: StreamRegistry, file: str = "cam.mp4",
                 audio_labels: tuple[AudioLabel, ...] = ()) -> None:
        self.tracks, self.packets = demuxed(media / file)
        self.live = LiveStream("default", "app", "cam", source_type="Rtmp", source_url="", profiles=[BYPASS])
        self.live.expected = {MediaKind.VIDEO, MediaKind.AUDIO}
        if audio_labels:  # an input with an AudioMap (SRT, MPEG-TS): its output carries every audio track
            self.live.audio_map = audio_labels
            self.live.expected_audio_tracks = len(audio_labels)
        for track in self.tracks:
            self.live.on_track(track)
        self.sent: dict[bytes, Fraction] = {}  # payload -> source time (s), to find them in the channel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        registry.add(self.live)
        self.registry = registry

    def start(self) -> Camera:
        self._thread.start()
        return self

    def _run(self) -> None:
        start, loop_s, laps = time.monotonic(), Fraction(10), 0
        while not self._stop.is_set():
            for p in self.packets:
                shift = round(laps * loop_s / p.time_base) + round(1000 / p.time_base)  # its clock is not ours
                at = (p.dts + shift) * p.time_base
                delay = float(at - 1000) - (time.monotonic() - start)
                if delay > 0 and self._stop.wait(delay):
                    return
                self.sent[p.data] = at
                self.live.ingest(Packet(p.track_id, p.pts + shift, p.dts + shift, p.time_base, p.data, p.keyframe,
                                        p.duration, p.config))
            laps += 1

    def hub(self) -> Any:
        return self.live.outputs["cam"].hub

    def stop(self, reason: str = "unpublished") -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.live.end(reason)
        self.registry.remove(self.live)


def channel_packets(channel: LiveStream) -> list[Packet]:
    sub = Subscriber("test", max_packets=100_000)
    channel.input.subscribe(sub, from_keyframe=False)
    got: list[Packet] = []

    def drain() -> None:
        while (p := sub.get(1.0)) is not None or not sub.ended:
            if p is not None:
                got.append(p)

    threading.Thread(target=drain, daemon=True).start()
    return got


def live_worker(schedule: Schedule, media: Path, registry: StreamRegistry,
                board: ScheduleBoard | None = None) -> tuple[ScheduleWorker, LiveStream]:
    channel = LiveStream("default", "tv", "ch", source_type="Scheduled", source_url="", profiles=[])
    return ScheduleWorker("default/tv", schedule, media, ScheduleHooks(lambda close: channel, lambda r: None),
                          board, registry), channel


def from_camera(camera: Camera, p: Packet) -> Fraction | None:
    """The source time of a channel packet the camera sent (its payload, maybe after in-band parameter sets)."""
    found = camera.sent.get(p.data)
    if found is None and p.keyframe:
        found = next((t for d, t in list(camera.sent.items()) if p.data.endswith(d)), None)
    return found


@pytest.mark.parametrize("cached", [True, False], ids=["from-the-gop-cache", "no-cache"])
def test_a_live_item_starts_at_a_keyframe_where_the_file_ended_with_its_tracks_in_sync(
        media: Path, cached: bool) -> None:
    registry = StreamRegistry()
    camera = Camera(media, registry).start()
    wait_until(lambda: camera.live.started and camera.hub().gop_snapshot(), "the camera live")
    camera.hub().keep_gop = cached  # without its cache, a hub's new subscriber starts with whatever comes next
    program = Program("p", "", int(time.time() * 1000), True, (Item("file://red.mp4", 0, 1000), Item(CAM, 0, 1500)))
    worker, channel = live_worker(Schedule(ChannelStream("ch"), None, (program,)), media, registry)
    got = channel_packets(channel)
    subscribers = len(camera.hub().subscribers)
    worker.start()
    try:
        wait_until(lambda: sum(1 for p in list(got) if from_camera(camera, p) is None and p.dts > 2 * 90000),
                   "file, live, then the file again", timeout=10)
        assert len(camera.hub().subscribers) == subscribers  # the live item over: its callback left the hub
    finally:
        worker.close("test over")
        assert worker.join(5)
        camera.stop()
    for kind in (MediaKind.VIDEO, MediaKind.AUDIO):
        ids = {t.id for t in channel.tracks.values() if t.kind is kind}
        dts = [p.dts for p in got if p.track_id in ids]
        assert dts and all(b > a for a, b in zip(dts, dts[1:], strict=False)), f"{kind} goes forward"
    live = [(p, t) for p in got if (t := from_camera(camera, p)) is not None]
    assert live, "the live item played"
    first_video = next(p for p, _ in live if channel.tracks[p.track_id].kind is MediaKind.VIDEO)
    assert first_video.keyframe and first_video.dts <= min(p.dts for p, _ in live)
    file_before = [p for p in got if p.dts < first_video.dts and from_camera(camera, p) is None]
    assert file_before and first_video.dts - max(p.dts for p in file_before) <= 90000 // 20  # no gap, no overlap
    # one offset for all its tracks: channel time - source time is the same for audio and video
    offsets = {round(Fraction(p.dts, 90000) - t, 3) for p, t in live}
    assert len(offsets) == 1, offsets
    played = max(p.dts for p, _ in live) - first_video.dts
    assert 1.3 * 90000 < played < 1.5 * 90000  # its duration, by its own timestamps
    assert not camera.hub().subscribers and worker.items_played >= 2


def test_a_live_source_that_ends_mid_item_hands_over_to_the_fallback_and_is_let_go_of(media: Path) -> None:
    registry = StreamRegistry()
    camera = Camera(media, registry).start()
    wait_until(lambda: camera.live.started and camera.hub().gop_snapshot(), "the camera live")
    program = Program("p", "", 946684800000, True, (Item(CAM, 0, -1),))
    board = ScheduleBoard()
    worker, channel = live_worker(Schedule(ChannelStream("ch"), (Item("file://red.mp4"),), (program,)), media,
                                  registry, board)
    got = channel_packets(channel)
    worker.start()
    try:
        wait_until(lambda: any(from_camera(camera, p) is not None for p in list(got)), "the live item")
        assert len(camera.hub().subscribers) == 1
        hub = camera.hub()
        camera.stop()
        assert not hub.subscribers
        wait_until(lambda: (on := board.get(worker.key)) is not None and on.slot.program is None, "the fallback")
        last_live = max(p.dts for p in list(got) if from_camera(camera, p) is not None)
        wait_until(lambda: any(p.dts > last_live and from_camera(camera, p) is None for p in list(got)),
                   "the fallback's packets")
    finally:
        worker.close("test over")
        assert worker.join(5)
    dts = [p.dts for p in got if channel.tracks[p.track_id].kind is MediaKind.VIDEO]
    assert all(b > a for a, b in zip(dts, dts[1:], strict=False))


def test_a_live_item_is_as_long_as_its_duration_while_live_and_nothing_while_not(media: Path) -> None:
    registry = StreamRegistry()
    lengths = _Lengths(media, lambda item: registry.get(*item.stream_target or ("", "", "")) is not None)
    assert lengths(Item(CAM, 0, 5000)) == 0
    camera = Camera(media, registry)
    assert lengths(Item(CAM, 0, 5000)) == 5000 and lengths(Item(CAM, 0, -1)) == LIVE_FOREVER_MS
    lengths.failed(Item(CAM, 0, 5000))  # it sent nothing: not tried again at once (the fallback plays meanwhile)
    assert lengths(Item(CAM, 0, 5000)) == 0
    camera.stop()


def test_a_live_source_silent_for_the_error_tolerance_hands_over_to_the_fallback(media: Path) -> None:
    registry = StreamRegistry()
    camera = Camera(media, registry).start()
    wait_until(lambda: camera.live.started and camera.hub().gop_snapshot(), "the camera live")
    program = Program("p", "", 946684800000, True, (Item(CAM, 0, -1),))
    board = ScheduleBoard()
    worker, channel = live_worker(Schedule(ChannelStream("ch", error_tolerance_ms=200), (Item("file://red.mp4"),),
                                           (program,)), media, registry, board)
    got = channel_packets(channel)
    worker.start()
    try:
        wait_until(lambda: any(from_camera(camera, p) is not None for p in list(got)), "the live item")
        camera._stop.set()  # the camera sends nothing more, its stream still open
        wait_until(lambda: (on := board.get(worker.key)) is not None and on.slot.program is None, "the fallback",
                   timeout=3)
        assert not camera.hub().subscribers
        deadline = time.monotonic() + 2.5  # its stream open but silent: not tried again while it stays so
        while time.monotonic() < deadline:
            on_air = board.get(worker.key)
            assert on_air is not None and on_air.slot.program is None
            time.sleep(0.05)
    finally:
        worker.close("test over")
        assert worker.join(5)
        camera.stop()


def test_the_fallback_gives_way_as_soon_as_the_live_item_can_play(media: Path) -> None:
    registry = StreamRegistry()
    program = Program("p", "", 946684800000, True, (Item(CAM, 0, -1),))
    board = ScheduleBoard()
    # a fallback item of 10 s: the camera comes back long before it ends
    worker, channel = live_worker(Schedule(ChannelStream("ch"), (Item("file://cam.mp4"),), (program,)), media,
                                  registry, board)
    worker.start()
    camera = None
    try:
        wait_until(lambda: (on := board.get(worker.key)) is not None and on.slot.program is None, "the fallback")
        camera = Camera(media, registry).start()
        back = time.monotonic()
        wait_until(lambda: (on := board.get(worker.key)) is not None and on.slot.program is not None,
                   "the live item again", timeout=4)
        assert time.monotonic() - back < 3
    finally:
        worker.close("test over")
        assert worker.join(5)
        if camera is not None:
            camera.stop()


def test_a_live_item_whose_audio_differs_from_the_channels_is_warned_about(
        media: Path, caplog: pytest.LogCaptureFixture) -> None:
    registry = StreamRegistry()
    camera = Camera(media, registry, "cam44.mp4").start()  # 44.1 kHz between files at 48 kHz
    wait_until(lambda: camera.live.started and camera.hub().gop_snapshot(), "the camera live")
    program = Program("p", "", int(time.time() * 1000), True, (Item("file://red.mp4", 0, 1000), Item(CAM, 0, 1500)))
    worker, channel = live_worker(Schedule(ChannelStream("ch"), None, (program,)), media, registry)
    got = channel_packets(channel)
    worker.start()
    try:
        wait_until(lambda: any(from_camera(camera, p) is not None for p in list(got)), "the live item", timeout=5)
        wait_until(lambda: "schedule item audio differs" in caplog.text, "the warning")
    finally:
        worker.close("test over")
        assert worker.join(5)
        camera.stop()
    assert "url=stream://default/app/cam audio=AAC/44100Hz/1ch channel=AAC/48000Hz/1ch" in caplog.text


def test_an_item_naming_the_channel_itself_cannot_play(media: Path, caplog: pytest.LogCaptureFixture) -> None:
    registry = StreamRegistry()
    channel = LiveStream("default", "tv", "ch", source_type="Scheduled", source_url="", profiles=[BYPASS])
    registry.add(channel)  # as the control plane lists it: its output "ch" is a live stream of the server
    program = Program("p", "", 946684800000, True, (Item("stream://default/tv/ch", 0, -1),))
    board = ScheduleBoard()
    worker = ScheduleWorker("default/tv", Schedule(ChannelStream("ch"), (Item("file://red.mp4"),), (program,)), media,
                            ScheduleHooks(lambda close: channel, lambda r: None), board, registry)
    worker.start()
    try:
        wait_until(lambda: "ch" in channel.outputs, "the channel's output", timeout=5)
        deadline = time.monotonic() + 1.5  # the fallback plays on: the channel never takes its own output
        while time.monotonic() < deadline:
            on_air = board.get(worker.key)
            assert on_air is None or on_air.slot.program is None
            assert not channel.outputs["ch"].hub.subscribers
            time.sleep(0.05)
    finally:
        worker.close("test over")
        assert worker.join(5)
    assert caplog.text.count("schedule item names the channel itself") == 1


def test_a_live_item_carries_as_many_audio_tracks_as_the_audio_map_or_cannot_play(
        media: Path, caplog: pytest.LogCaptureFixture) -> None:
    """With an AudioMap the channel has one audio track per item; a live item gives its source's first N audio
    tracks, as a file item does, and a source with fewer cannot play (as such a file: fallbackOnErr)."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=192x108:r=20",
                    "-f", "lavfi", "-i", "anoisesrc=r=48000:a=0.3", "-f", "lavfi", "-i", "sine=f=440:r=48000",
                    "-map", "0", "-map", "1", "-map", "2", "-t", "10", "-c:v", "libx264", "-g", "10", "-bf", "0",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k", str(media / "cam2a.mp4")],
                   check=True, timeout=60)
    mapped = ChannelStream("ch", audio_map=(AudioMapItem("English", "en"), AudioMapItem("Korean", "ko")))
    for file, plays in (("cam2a.mp4", True), ("cam.mp4", False)):
        registry = StreamRegistry()
        labels = (AudioLabel("a", "", ""), AudioLabel("b", "", "")) if plays else ()
        camera = Camera(media, registry, file, labels).start()
        worker, channel = live_worker(Schedule(mapped, None, (Program("p", "", int(time.time() * 1000), True,
                                                                      (Item(CAM, 0, 1000),)),)), media, registry)
        _audio_map_item(camera, worker, channel, plays, caplog)


def _audio_map_item(camera: Camera, worker: ScheduleWorker, channel: LiveStream, plays: bool,
                    caplog: pytest.LogCaptureFixture) -> None:
    wait_until(lambda: camera.live.started and camera.hub().gop_snapshot(), "the camera live")
    got = channel_packets(channel)
    worker.start()
    try:
        if plays:
            wait_until(lambda: len({p.track_id for p in list(got) if from_camera(camera, p) is not None}) == 3,
                       "video and both audio tracks of the camera")
            assert len({t.id for t in channel.tracks.values() if t.kind is MediaKind.AUDIO}) == 2
        else:
            wait_until(lambda: "fewer audio tracks than its AudioMap" in caplog.text, "the item refused")
            assert not any(from_camera(camera, p) is not None for p in list(got))
    finally:
        worker.close("test over")
        assert worker.join(5)
        camera.stop()


@pytest.mark.parametrize("names", [("a", "b"), ("a", "b", "c")], ids=["a-b-a", "a-b-c-a"])
def test_channels_playing_each_other_in_a_loop_never_close_it(
        media: Path, names: tuple[str, ...], caplog: pytest.LogCaptureFixture) -> None:
    """Each channel's program plays the next channel (the last plays the first), each with a file fallback. Closing
    the loop would feed each its own echo (the GOP they last had, for ever): the item that would close it counts as
    failing and its channel plays its fallback, while the others play their items."""
    registry, board, feeds = StreamRegistry(), ScheduleBoard(), ChannelFeeds()
    workers = []
    for index, name in enumerate(names):
        channel = LiveStream("default", "tv", name, source_type="Scheduled", source_url="", profiles=[BYPASS])
        registry.add(channel)
        following = names[(index + 1) % len(names)]
        program = Program("p", "", 946684800000, True, (Item(f"stream://default/tv/{following}", 0, -1),))
        workers.append(ScheduleWorker("default/tv", Schedule(ChannelStream(name), (Item("file://red.mp4"),),
                                                             (program,)), media,
                                      ScheduleHooks(lambda close, c=channel: c, lambda r: None), board, registry,
                                      feeds))

    def on_program() -> list[bool]:
        return [(on := board.get(w.key)) is not None and on.slot.program is not None for w in workers]

    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: sum(on_program()) == len(names) - 1, "all but one channel playing its item", timeout=8)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            assert not all(on_program()), "the loop closed: every channel plays the next"
            time.sleep(0.05)
    finally:
        for worker in workers:
            worker.close("test over")
        for worker in workers:
            assert worker.join(5)
    assert "schedule item plays a channel that plays this one" in caplog.text
    # the loop is named from the channel that refused, whichever it was: "a -> b -> a", "b -> a -> b", ...
    loops = [" -> ".join(f"default/tv/{n}" for n in (*names[i:], *names[:i], names[i])) for i in range(len(names))]
    assert any(f"loop={loop}:" in caplog.text for loop in loops), caplog.text

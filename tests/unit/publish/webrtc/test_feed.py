"""A feed's conversion (AVCC to Annex B with parameter sets) and its send loop: where each viewer starts, a
rendition change, NACKs from the cache, a viewer whose socket is full skipped without slowing the others."""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from fractions import Fraction

from aiortc.rtp import RtpPacket

from kiln.media.formats.codecs.h264 import AvcConfig
from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.publish.webrtc.feed import CHUNK, MAX_LAG_S, MAX_QUEUED, AnnexB, Feed, Viewer
from kiln.media.rtc.rtp_out import Negotiated, TrackOut
from kiln.media.stream.hub import StreamHub
from kiln.media.stream.live import OutputStream, OutputTrack

SPS = bytes([0x67, 0x42, 0xC0, 0x1E, 0xDA])
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])
IDR = bytes([0x65, 0x88, 0x84])
SLICE = bytes([0x41, 0x9A, 0x02])
TB = Fraction(1, 1000)


def _avcc(*nals: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(n)) + n for n in nals)


def test_keyframes_get_sps_pps_in_front_and_other_frames_do_not() -> None:
    config = AvcConfig(0x42, 0xC0, 0x1E, 4, (SPS,), (PPS,)).to_bytes()
    conv = AnnexB(Track(0, MediaKind.VIDEO, Codec.H264, TB, config=config))
    key = conv.convert(Packet(0, 0, 0, TB, _avcc(IDR), keyframe=True))
    assert key == b"\0\0\0\1" + SPS + b"\0\0\0\1" + PPS + b"\0\0\0\1" + IDR
    assert conv.convert(Packet(0, 33, 33, TB, _avcc(SLICE))) == b"\0\0\0\1" + SLICE
    # a keyframe that carries its own SPS is not given a second one
    inband = conv.convert(Packet(0, 66, 66, TB, _avcc(SPS, PPS, IDR), keyframe=True))
    assert inband.count(SPS) == 1


OPUS_TB = Fraction(1, 48000)
ADDRESS = ("192.0.2.9", 50000)


class Wire:
    """The shared UDP socket as a viewer's route sees it; ``full`` refuses as a full non-blocking socket does."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.full = False

    def sendto(self, data: bytes, address: tuple[str, int], /) -> int:
        if self.full:
            raise BlockingIOError
        self.sent.append(data)
        return len(data)

    def read(self) -> list[RtpPacket]:
        packets = [RtpPacket.parse(d) for d in self.sent]
        self.sent.clear()
        return packets


def _output(keyframes: list[str]) -> OutputStream:
    tracks = [OutputTrack(0, MediaKind.VIDEO, "high", {}, True, 0, Track(0, MediaKind.VIDEO, Codec.H264, TB)),
              OutputTrack(5, MediaKind.VIDEO, "low", {}, False, 0, Track(5, MediaKind.VIDEO, Codec.H264, TB)),
              OutputTrack(1, MediaKind.AUDIO, "opus", {}, False, 1, Track(1, MediaKind.AUDIO, Codec.OPUS, OPUS_TB))]
    return OutputStream("cam", {}, tracks, StreamHub("default/app/cam"),
                        keyframe_wanted=lambda reason: keyframes.append(reason) is None)


def _clear(header: bytes | bytearray, payload: bytes) -> bytes:
    """No SRTP here (test_rtp_out.py checks it): the packets are read as sent."""
    return bytes(header) + payload


def _viewer(wire: Wire, video_track: int = 0) -> tuple[Viewer, list[tuple[str, int, float]]]:
    sent: list[tuple[str, int, float]] = []
    outs = {"video": TrackOut(Negotiated(ssrc=1, payload_type=102), _clear, clock_origin=0, first_seq=100),
            "audio": TrackOut(Negotiated(ssrc=2, payload_type=111), _clear, clock_origin=0, first_seq=900)}
    viewer = Viewer({video_track: "video", 1: "audio"}, outs, lambda: (wire, ADDRESS),
                    lambda kind, out, size, arrival: sent.append((kind, size, arrival)))
    return viewer, sent


def _video(track: int, pts: int, keyframe: bool = False, size: int = 3000) -> Packet:
    nal = bytes([0x65 if keyframe else 0x41]) + bytes(size)  # FU-A cut: several packets per frame
    return Packet(track, pts, pts, TB, _avcc(nal), keyframe=keyframe, arrival=time.monotonic())


def _audio(pts: int) -> Packet:
    return Packet(1, pts, pts, OPUS_TB, b"\xfc" + bytes(80), keyframe=True, arrival=time.monotonic())


def _run(test: object) -> None:
    async def main() -> None:
        keyframes: list[str] = []
        feed = Feed(_output(keyframes), asyncio.get_running_loop(), lambda feed, reason: None)
        feed.start()
        try:
            await test(feed, keyframes)  # type: ignore[operator]
        finally:
            feed.close("test over")
    asyncio.run(main())


async def _publish(feed: Feed, *packets: Packet) -> None:
    for packet in packets:
        feed.output.hub.publish(packet)
    _settle(feed)


def _settle(feed: Feed) -> None:
    """Everything queued for the feed's send thread has run."""
    assert feed.sender.flush(10)


def test_a_new_viewer_starts_at_the_held_keyframe_then_goes_live_and_asks_for_a_keyframe() -> None:
    async def test(feed: Feed, keyframes: list[str]) -> None:
        await _publish(feed, _video(0, 0), _audio(0), _video(0, 33, keyframe=True), _audio(960), _video(0, 66))
        wire = Wire()
        viewer, sent = _viewer(wire)
        feed.add(viewer)
        _settle(feed)
        assert keyframes == ["webrtc viewer"]
        replay = wire.read()
        video = [p for p in replay if p.ssrc == 1]
        assert video[0].timestamp == 33 * 90 and {p.timestamp for p in video} == {33 * 90, 66 * 90}
        assert [p.sequence_number for p in video] == list(range(100, 100 + len(video)))
        assert [p.timestamp for p in replay if p.ssrc == 2] == [960]  # audio from the keyframe on
        assert all(arrival == 0.0 for _, _, arrival in sent)  # a replay is kept out of latency figures
        await _publish(feed, _video(0, 99), _audio(1920))
        live = wire.read()
        assert live[0].sequence_number == video[-1].sequence_number + 1 and live[-1].marker
        assert sent[-1][2] > 0 and feed.first_out.count == 2
    _run(test)


def test_a_rendition_change_moves_at_the_new_tracks_keyframe_with_the_numbering_continuous() -> None:
    async def test(feed: Feed, keyframes: list[str]) -> None:
        wire = Wire()
        viewer, _ = _viewer(wire)
        await _publish(feed, _video(0, 0, keyframe=True))
        feed.add(viewer)
        feed.retarget(viewer, {5: "video", 1: "audio"})
        await _publish(feed, _video(5, 33), _video(0, 33))  # the low track has no keyframe yet: high goes on
        await _publish(feed, _video(5, 66, keyframe=True, size=10), _video(0, 66), _video(5, 99, size=10))
        packets = wire.read()
        assert [p.sequence_number for p in packets] == list(range(100, 100 + len(packets)))
        assert [p.timestamp // 90 for p in packets if p.marker] == [0, 33, 66, 99]
        assert all(len(p.payload) < 100 for p in packets if p.timestamp >= 66 * 90)  # the low track's frames
        assert viewer.kinds == {5: "video", 1: "audio"}
    _run(test)


def test_a_nack_is_answered_from_the_feeds_cache() -> None:
    async def test(feed: Feed, keyframes: list[str]) -> None:
        wire = Wire()
        viewer, _ = _viewer(wire)
        feed.add(viewer)
        await _publish(feed, _video(0, 0, keyframe=True), _video(0, 33))
        packets = {p.sequence_number: p for p in wire.read()}
        lost = sorted(packets)[2]
        resent: list[int] = []
        feed.nack(viewer, "video", [lost, 5000], resent.append)
        _settle(feed)
        assert resent == [1]  # 5000 was never sent: nothing
        (again,) = wire.read()
        assert (again.sequence_number, again.payload, again.timestamp) == (
            lost, packets[lost].payload, packets[lost].timestamp)
    _run(test)


def test_a_viewer_whose_socket_is_full_is_skipped_and_the_other_gets_every_packet() -> None:
    async def test(feed: Feed, keyframes: list[str]) -> None:
        slow_wire, healthy_wire = Wire(), Wire()
        slow, _ = _viewer(slow_wire)
        healthy, _ = _viewer(healthy_wire)
        feed.add(slow)
        feed.add(healthy)
        await _publish(feed, _video(0, 0, keyframe=True))
        slow_wire.full = True
        await _publish(feed, _video(0, 33), _video(0, 66))
        slow_wire.full = False
        await _publish(feed, _video(0, 99), _video(0, 133, keyframe=True), _video(0, 166))
        assert [p.timestamp // 90 for p in healthy_wire.read() if p.marker] == [0, 33, 66, 99, 133, 166]
        got = slow_wire.read()
        assert slow.skips == 1 and [p.timestamp // 90 for p in got if p.marker] == [0, 133, 166]  # resumed at a key
        assert [p.sequence_number for p in got] == list(range(100, 100 + len(got)))  # no gap to NACK
    _run(test)


def test_frames_that_reach_the_send_loop_late_are_shed_and_viewers_resume_at_a_keyframe() -> None:
    async def test(feed: Feed, keyframes: list[str]) -> None:
        wire = Wire()
        viewer, _ = _viewer(wire)
        feed.add(viewer)
        await _publish(feed, _video(0, 0, keyframe=True))
        late = Packet(0, 33, 33, TB, _avcc(bytes([0x41, 0])), arrival=time.monotonic() - 2.0)  # an overloaded loop
        await _publish(feed, late, _video(0, 66))
        await _publish(feed, _video(0, 99, keyframe=True))
        packets = wire.read()
        assert feed.shed == 1 and viewer.skips == 1
        assert [p.timestamp // 90 for p in packets if p.marker] == [0, 99]  # not the shed frame, nor one after it
        assert [p.sequence_number for p in packets] == list(range(100, 100 + len(packets)))
    _run(test)


def test_frames_refused_while_the_send_thread_is_behind_are_shed_and_viewers_resume_at_a_keyframe() -> None:
    async def test(feed: Feed, keyframes: list[str]) -> None:
        wire = Wire()
        viewer, _ = _viewer(wire)
        feed.add(viewer)
        await _publish(feed, _video(0, 0, keyframe=True))
        gate = threading.Event()
        feed.sender.command(gate.wait)  # the thread is held up (a machine without the CPU for it)
        frames = [_video(0, 33 * (i + 1), size=10) for i in range(MAX_QUEUED + 2)]
        for packet in frames:
            feed.output.hub.publish(packet)  # never blocks the producer: the last two are refused
        assert feed.sender.queued_frames == MAX_QUEUED and feed.refused == 2
        gate.set()
        _settle(feed)
        after = 33 * (MAX_QUEUED + 3)
        await _publish(feed, _video(0, after), _video(0, after + 33, keyframe=True), _video(0, after + 66))
        packets = wire.read()
        sent = [p.timestamp // 90 for p in packets if p.marker]
        # everything queued before the gap, nothing after it until the keyframe, numbering without a hole
        assert sent == [0, *(33 * (i + 1) for i in range(MAX_QUEUED)), after + 33, after + 66]
        assert [p.sequence_number for p in packets] == list(range(100, 100 + len(packets)))
        assert viewer.skips == 1 and feed.gops[0][0].keyframe and len(feed.gops[0]) == 2  # a GOP without the gap
    _run(test)


def test_closing_the_feed_ends_its_send_thread_and_a_failing_command_does_not() -> None:
    async def test(feed: Feed, keyframes: list[str]) -> None:
        wire = Wire()
        viewer, _ = _viewer(wire)
        feed.sender.command(lambda: 1 / 0)  # a bug in one command is logged; the thread goes on
        feed.add(viewer)
        await _publish(feed, _video(0, 0, keyframe=True))
        assert len(wire.read()) > 0
        feed.close("test over")
        assert feed.sender.join(10) and not feed.sender.alive
        assert not feed.sender.put(object()) and not feed.sender.command(lambda: None)
    _run(test)


def test_a_frame_arriving_during_a_long_send_reaches_the_first_viewers_before_the_last_get_the_older_one() -> None:
    async def test(feed: Feed, keyframes: list[str]) -> None:
        order: list[tuple[int, int]] = []   # (viewer, frame timestamp in ms) as the packets left

        class Logged(Wire):
            def __init__(self, index: int) -> None:
                super().__init__()
                self.index = index

            def sendto(self, data: bytes, address: tuple[str, int], /) -> int:
                packet = RtpPacket.parse(data)
                if packet.marker and packet.payload_type == 102:
                    order.append((self.index, packet.timestamp // 90))
                return super().sendto(data, address)

        later: list[Packet] = [_video(0, 33)]

        def arrives(kind: str, out: TrackOut, size: int, arrival: float) -> None:
            if later:  # while the keyframe goes out, the next frame arrives (published from the send thread)
                feed.output.hub.publish(later.pop())

        viewers = []
        for i in range(CHUNK * 3):
            viewer, sent = _viewer(Logged(i))
            viewer.on_sent = arrives  # the first viewer served publishes it, from the send thread
            viewers.append(viewer)
            feed.add(viewer)
        feed.output.hub.publish(_video(0, 0, keyframe=True))
        deadline = time.monotonic() + 10
        while later and time.monotonic() < deadline:  # queued before the flush below, so it can join the burst
            await asyncio.sleep(0.001)
        _settle(feed)
        n = len(viewers)
        assert sorted(order) == sorted([(i, 0) for i in range(n)] + [(i, 33) for i in range(n)])
        position = {sent: at for at, sent in enumerate(order)}
        # every viewer gets the keyframe before the frame after it
        assert all(position[(i, 0)] < position[(i, 33)] for i in range(n))
        # the new frame did not wait for the keyframe's last viewer: it went out two steps after the one it arrived
        # in (one step moves the keyframe on, the next the newest frame)
        newest_first = min(position[(i, 33)] for i in range(n))
        assert newest_first == 2 * CHUNK < max(position[(i, 0)] for i in range(n))
    _run(test)


def test_a_frame_not_sent_to_every_viewer_in_time_is_shed_for_the_rest_who_resume_at_a_keyframe() -> None:
    async def test(feed: Feed, keyframes: list[str]) -> None:
        wires = [Wire() for _ in range(CHUNK * 2)]
        stall: list[bool] = [True]

        def slow(kind: str, out: TrackOut, size: int, arrival: float) -> None:
            if stall and arrival:  # the first viewers' step takes longer than MAX_LAG_S (a starved thread)
                stall.clear()
                time.sleep(MAX_LAG_S + 0.1)

        viewers = []
        for wire in wires:
            viewer, _ = _viewer(wire)
            viewer.on_sent = slow
            viewers.append(viewer)
            feed.add(viewer)
        await _publish(feed, _video(0, 0, keyframe=True))
        got = [[p.timestamp // 90 for p in wire.read() if p.marker] for wire in wires]
        assert feed.shed == 1 and sorted(got) == [[]] * CHUNK + [[0]] * CHUNK  # one step had it, then it was shed
        await _publish(feed, _video(0, 33), _video(0, 66, keyframe=True))
        after = [[p.timestamp // 90 for p in wire.read() if p.marker] for wire in wires]
        # the first step's viewers go on; the rest resume at the keyframe
        assert all(a == ([33, 66] if g else [66]) for g, a in zip(got, after, strict=True))
    _run(test)

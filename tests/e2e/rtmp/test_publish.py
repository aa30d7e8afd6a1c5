"""Real ffmpeg publishers against Kiln's RTMP server: tracks, packets, URL forms, rejection, kicking."""

from __future__ import annotations

import threading

import pytest

from kiln.media.ingest.rtmp.server import RtmpServer
from kiln.media.model import Codec
from tests.e2e.rtmp.peers import Peers, RecordingHandler, ffmpeg_publish, pyav_hevc_publish, run

pytestmark = pytest.mark.e2e


def _monotonic(values: list[int]) -> bool:
    return all(b > a for a, b in zip(values, values[1:], strict=False))


def test_h264_aac_publish() -> None:
    async def scenario() -> None:
        handler = RecordingHandler()
        server = RtmpServer(handler, host="127.0.0.1", port=0)
        await server.start()
        try:
            async with Peers() as peers:
                ff = await peers.start(ffmpeg_publish(f"rtmp://127.0.0.1:{server.port}/app/stream", 3))
                assert await ff.wait(60) == 0, ff.stderr
                sink = (await handler.wait_accepted())[0]
                await sink.closed.wait()
        finally:
            await server.close()
        assert sink.closes == ["unpublished"]
        video, audio = sink.tracks
        assert (video.codec, video.width, video.height, video.profile) == (Codec.H264, 320, 180, "High")
        assert video.codec_string.startswith("avc1.64")
        assert (audio.codec, audio.sample_rate, audio.channels, audio.codec_string) == (Codec.AAC, 48000, 2,
                                                                                        "mp4a.40.2")
        assert sink.meta and sink.meta[0]["width"] == 320
        v, a = sink.video(), sink.audio()
        assert 85 <= len(v) <= 92            # 3 s at 30 fps
        assert 135 <= len(a) <= 145          # 3 s of 1024-sample frames at 48 kHz
        assert _monotonic([p.dts for p in v]) and _monotonic([p.dts for p in a])
        assert all(p.pts == p.dts for p in v)  # zerolatency: no B-frames
        assert [i for i, p in enumerate(v) if p.keyframe] == list(range(0, len(v), 30))  # -g 30
        assert v[0].config == video.config and a[0].config == audio.config
        assert v[-1].dts - v[0].dts == pytest.approx(3000, abs=100)
    run(scenario)


def test_bframes_give_pts_after_dts() -> None:
    async def scenario() -> None:
        handler = RecordingHandler()
        server = RtmpServer(handler, host="127.0.0.1", port=0)
        await server.start()
        try:
            async with Peers() as peers:
                ff = await peers.start(ffmpeg_publish(f"rtmp://127.0.0.1:{server.port}/app/bf", 2, bframes=True))
                assert await ff.wait(60) == 0, ff.stderr
                sink = (await handler.wait_accepted())[0]
                await sink.closed.wait()
        finally:
            await server.close()
        v = sink.video()
        assert any(p.pts != p.dts for p in v)
        assert all(p.pts >= p.dts for p in v)
        assert _monotonic([p.dts for p in v])
        assert sorted(p.pts for p in v) == sorted({p.pts for p in v})  # presentation times stay distinct
    run(scenario)


@pytest.mark.parametrize("form", ["key-in-publish-name", "stream-in-app-path"])
def test_url_forms_and_query_string(form: str) -> None:
    async def scenario() -> None:
        handler = RecordingHandler()
        server = RtmpServer(handler, host="127.0.0.1", port=0)
        await server.start()
        url = f"rtmp://127.0.0.1:{server.port}/app/stream?token=abc"
        # OBS-style: the whole URL as the server, an empty key -> connect app "app/stream?token=abc"
        extra = ["-rtmp_app", "app/stream?token=abc", "-rtmp_playpath", ""] if form == "stream-in-app-path" else []
        try:
            async with Peers() as peers:
                ff = await peers.start(ffmpeg_publish(url, 1, extra=extra))
                assert await ff.wait(60) == 0, ff.stderr
                sink = (await handler.wait_accepted())[0]
                await sink.closed.wait()
        finally:
            await server.close()
        request = handler.requests[0]
        assert (request.app, request.stream, request.query, request.host) == ("app", "stream", "token=abc",
                                                                              "127.0.0.1")
        assert request.tc_url.startswith(f"rtmp://127.0.0.1:{server.port}/app")
        assert request.peer[0] == "127.0.0.1"
        assert len(sink.video()) >= 25
    run(scenario)


def test_two_publishers_at_once() -> None:
    async def scenario() -> None:
        handler = RecordingHandler()
        server = RtmpServer(handler, host="127.0.0.1", port=0)
        await server.start()
        try:
            async with Peers() as peers:
                first = await peers.start(ffmpeg_publish(f"rtmp://127.0.0.1:{server.port}/app/one", 2, realtime=True))
                second = await peers.start(ffmpeg_publish(f"rtmp://127.0.0.1:{server.port}/live/two", 2,
                                                          realtime=True))
                sinks = await handler.wait_accepted(2)
                await sinks[0].wait_packets(20)
                await sinks[1].wait_packets(20)
                assert len(server.sessions) == 2
                assert await first.wait(60) == 0 and await second.wait(60) == 0
                for sink in sinks:
                    await sink.closed.wait()
        finally:
            await server.close()
        names = sorted((s.request.app, s.request.stream) for s in sinks)
        assert names == [("app", "one"), ("live", "two")]
        for sink in sinks:
            assert sink.closes == ["unpublished"]
            assert 55 <= len(sink.video()) <= 62
    run(scenario)


def test_rejected_publish_makes_ffmpeg_fail() -> None:
    async def scenario() -> None:
        handler = RecordingHandler(reject="stream name is taken")
        server = RtmpServer(handler, host="127.0.0.1", port=0)
        await server.start()
        try:
            async with Peers() as peers:
                ff = await peers.start(ffmpeg_publish(f"rtmp://127.0.0.1:{server.port}/app/taken", 5))
                assert await ff.wait(60) != 0
        finally:
            await server.close()
        assert b"stream name is taken" in ff.stderr
        assert handler.sinks == [] and len(handler.requests) == 1
    run(scenario)


def test_session_close_makes_a_running_publisher_exit() -> None:
    async def scenario() -> None:
        handler = RecordingHandler()
        server = RtmpServer(handler, host="127.0.0.1", port=0)
        await server.start()
        try:
            async with Peers() as peers:
                ff = await peers.start(ffmpeg_publish(f"rtmp://127.0.0.1:{server.port}/app/kick", 20, realtime=True))
                sink = (await handler.wait_accepted())[0]
                await sink.wait_packets(30)
                # the contract: close() is callable from any thread
                kicker = threading.Thread(target=sink.request.session.close, args=("kicked by admin",))
                kicker.start()
                kicker.join()
                await sink.closed.wait()
                assert await ff.wait(15) != 0  # ffmpeg saw the connection drop long before its 20 s
        finally:
            await server.close()
        assert sink.closes == ["closed: kicked by admin"]
        assert sink.request.session.bytes_received > 0
    run(scenario)


@pytest.mark.parametrize("enhanced", [True, False])
def test_enhanced_rtmp_hevc(enhanced: bool) -> None:
    async def scenario() -> None:
        handler = RecordingHandler()
        server = RtmpServer(handler, host="127.0.0.1", port=0, enhanced_rtmp=enhanced)
        await server.start()
        try:
            async with Peers() as peers:
                pub = await peers.start(pyav_hevc_publish(f"rtmp://127.0.0.1:{server.port}/app/hevc"))
                rc = await pub.wait(90)
                sink = (await handler.wait_accepted())[0]
                await sink.closed.wait()
        finally:
            await server.close()
        if enhanced:
            assert rc == 0, pub.stderr
            assert (sink.tracks[0].codec, sink.tracks[0].width, sink.tracks[0].height) == (Codec.H265, 320, 180)
            assert sink.tracks[0].codec_string.startswith("hvc1.1.6.")
            assert len(sink.video()) == 60 and sink.video()[0].keyframe
            assert sink.closes == ["unpublished"]
        else:
            assert rc != 0
            assert sink.closes[0].startswith("protocol error: Enhanced RTMP video (hvc1) received")
            assert sink.tracks == []
    run(scenario)

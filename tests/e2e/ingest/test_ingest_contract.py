"""The ingest contract (tests/e2e/ingest/contract.py) run for RTMP, SRT and MPEG-TS over UDP."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

import pytest

from kiln.media.ingest.mpegts.ingest import MpegtsIngest
from kiln.media.ingest.rtmp.ingest import RtmpIngest
from kiln.media.ingest.rtmp.server import RtmpServer
from kiln.media.ingest.srt.ingest import SrtIngest
from tests.e2e.ingest.contract import APP, IngestContract, LoopThread, RecordingOpener
from tests.peers.ffmpeg import publish_mpegts_udp, publish_rtmp, publish_srt
from tests.peers.fixtures import require
from tests.peers.ports import free_udp_port, wait_until
from tests.peers.process import Peer

DROP_WAIT_S = 15.0


def _connection_closed(peer: Peer) -> None:
    """A publisher that would send forever exits: the ingest closed its connection."""
    peer.wait(DROP_WAIT_S)


class TestRtmpIngest(IngestContract):
    provider, source_type, url_scheme = "rtmp", "Rtmp", "rtmp"
    rejected_log = "rtmp publish rejected"
    stream_name = "contract"

    @pytest.fixture(autouse=True)
    def _media(self, test_flv: Path) -> None:
        self.media = test_flv

    def start_ingest(self, opener: RecordingOpener, loop: LoopThread) -> None:
        self.server = RtmpServer(RtmpIngest(opener, opener, 0), host="127.0.0.1", port=0)
        loop.run(self.server.start())

    def stop_ingest(self, loop: LoopThread) -> None:
        loop.run(self.server.close())

    def expected_stream_name(self) -> str:
        return self.stream_name

    def publish(self, peer_dir: Path, *, loop: bool) -> Peer:
        url = f"rtmp://127.0.0.1:{self.server.port}/{APP}/{self.stream_name}"
        return publish_rtmp(url, self.media, loop=loop, log_dir=peer_dir)

    def assert_source_dropped(self, peer: Peer, caplog: pytest.LogCaptureFixture, reason: str) -> None:
        _connection_closed(peer)

    def test_a_host_no_vhost_serves_is_refused_without_asking_the_opener(
            self, loop_thread: LoopThread, peer_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
        """The vhost comes from the tcUrl's host; the opener only ever sees a resolved vhost."""
        caplog.set_level(logging.INFO)
        opener = RecordingOpener()
        self.start_ingest(opener, loop_thread)
        url = f"rtmp://127.0.0.1:{self.server.port}/{APP}/{self.stream_name}"
        tc_url = f"rtmp://elsewhere.test:{self.server.port}/{APP}"
        peer = publish_rtmp(url, self.media, loop=True, log_dir=peer_dir, extra_args=["-rtmp_tcurl", tc_url])
        try:
            _connection_closed(peer)
            assert opener.hosts == ["elsewhere.test"] and opener.requests == []
            assert any("rtmp publish rejected" in r.getMessage() and "no virtual host matches host" in r.getMessage()
                       for r in caplog.records)
        finally:
            peer.stop()
            self.stop_ingest(loop_thread)


class TestSrtIngest(IngestContract):
    provider, source_type, url_scheme = "srt", "SRT", "srt"
    rejected_log = "srt publish rejected"
    stream_name = "contract"

    @pytest.fixture(autouse=True)
    def _media(self, test_ts: Path) -> None:
        require("ffmpeg")
        self.media = test_ts

    def start_ingest(self, opener: RecordingOpener, loop: LoopThread) -> None:
        self.opener = opener
        self.ingest = SrtIngest(opener, opener, opener, loop.loop, host="127.0.0.1", port=free_udp_port())
        self.ingest.start()

    def stop_ingest(self, loop: LoopThread) -> None:
        self.ingest.close()

    def expected_stream_name(self) -> str:
        return self.stream_name

    def publish(self, peer_dir: Path, *, loop: bool) -> Peer:
        streamid = quote(f"srt://127.0.0.1:{self.ingest.port}/{APP}/{self.stream_name}", safe="")
        url = f"srt://127.0.0.1:{self.ingest.port}?mode=caller&latency=200000&pkt_size=1316&streamid={streamid}"
        return publish_srt(url, self.media, loop=loop, log_dir=peer_dir)

    def assert_source_dropped(self, peer: Peer, caplog: pytest.LogCaptureFixture, reason: str) -> None:
        _connection_closed(peer)

    def test_handshake_asks_the_screen_first(self, loop_thread: LoopThread, peer_dir: Path) -> None:
        """SRT vets a caller in the handshake (vhost by name or host, then app/provider/name)."""
        opener = RecordingOpener()
        self.start_ingest(opener, loop_thread)
        peer = self.publish(peer_dir, loop=True)
        try:
            wait_until(lambda: opener.streams, 20.0, "the stream opened", proc=peer)
            assert opener.hosts == ["127.0.0.1"]
            assert opener.screened == [("default", APP, self.stream_name, "srt")]
        finally:
            peer.stop()
            opener.end_all()
            self.stop_ingest(loop_thread)


class TestMpegtsIngest(IngestContract):
    provider, source_type, url_scheme = "mpegts", "MPEGTS", "udp"
    rejected_log = "mpegts publish rejected"

    @pytest.fixture(autouse=True)
    def _media(self, test_ts: Path) -> None:
        self.media = test_ts

    def start_ingest(self, opener: RecordingOpener, loop: LoopThread) -> None:
        self.ingest = MpegtsIngest(opener, opener, loop.loop, host="127.0.0.1", ports=[free_udp_port()])
        loop.run(self.ingest.start())
        [self.port] = self.ingest.channels

    def stop_ingest(self, loop: LoopThread) -> None:
        loop.run(self.ingest.close())

    def expected_stream_name(self) -> str:
        return f"stream_{self.port}"

    def publish(self, peer_dir: Path, *, loop: bool) -> Peer:
        return publish_mpegts_udp("127.0.0.1", self.port, self.media, loop=loop, log_dir=peer_dir)

    def assert_source_dropped(self, peer: Peer, caplog: pytest.LogCaptureFixture, reason: str) -> None:
        """UDP cannot tell the sender; the ingest lets its input go (and says why)."""
        wait_until(lambda: any("mpegts input ended" in r.getMessage() and reason in r.getMessage()
                               for r in caplog.records), DROP_WAIT_S, "the input let go with its reason")

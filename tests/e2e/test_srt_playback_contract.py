"""The publisher contract (tests/unit/publish/contract.py) run for an SRT playback session: ffmpeg
connects as an SRT caller to a Kiln SrtListener, the session sends it the live output as MPEG-TS."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiln.media.net.srt.listener import SrtListener, SrtReceiver
from kiln.media.net.srt.socket import SrtSocket
from kiln.media.publish.contract import Publisher
from kiln.media.publish.srt.session import SessionHooks, SrtPlaySession
from kiln.media.publish.srt.target import playback_tracks
from tests.peers.ffmpeg import FFMPEG, QUIET, ffprobe_json
from tests.peers.process import Peer
from tests.unit.publish.contract import LiveFeed, PublisherContract, wait_until

pytestmark = pytest.mark.e2e


class TestSrtPlaybackToFfmpeg(PublisherContract):
    session: SrtPlaySession | None
    player: Peer | None

    @pytest.fixture(autouse=True)
    def srt_port(self, peer_dir: Path) -> Iterator[SrtListener]:
        self.peer_dir = peer_dir
        self.session, self.player = None, None
        self.connected = threading.Event()
        self.listener = SrtListener("127.0.0.1", 0, on_accept=self._accept, on_connected=self._connected)
        self.listener.start()
        yield self.listener
        if self.player is not None:
            self.player.stop()
        self.listener.close()

    def _accept(self, streamid: str, peer: tuple[str, int]) -> SrtReceiver | None:
        return self.session if streamid == "contract" else None

    def _connected(self, receiver: SrtReceiver, sock: SrtSocket) -> None:
        assert receiver is self.session
        self.session.connected(sock)
        self.connected.set()

    def make(self, feed: LiveFeed, tmp_path: Path) -> Publisher:
        tracks = playback_tracks(feed.output.track_list(), feed.output.playlists(), None).tracks
        assert len(tracks) == 2
        self.received = tmp_path / "played.ts"
        hooks = SessionHooks(on_bytes=lambda n: None, disconnect=self.listener.disconnect, closed=lambda s: None)
        self.session = SrtPlaySession("contract", feed.output, tracks, hooks)
        url = f"srt://127.0.0.1:{self.listener.port}?mode=caller&streamid=contract"
        self.player = Peer.spawn("ffmpeg-srt-play", [FFMPEG, *QUIET, "-y", "-i", url, "-c", "copy", "-f", "mpegts",
                                                     str(self.received)], self.peer_dir)
        wait_until(self.connected.is_set, "the player connected")
        return self.session

    def assert_let_go(self, publisher: Any, tmp_path: Path) -> None:
        """The caller sees its connection closed (ffmpeg's input ends, so it exits) and the port holds
        no connection. The suite detaches at the first bytes, before ffmpeg has probed enough to write
        a file; what a player receives is checked in test_srt_playback.py."""
        assert self.player is not None
        self.player.wait(15)
        wait_until(lambda: self.listener.connections() == [], "the listener to let go of the caller")
        assert publisher.counters.bytes_out > 0


    def test_the_caller_receives_h264_and_aac(self, feed: LiveFeed, tmp_path: Path) -> None:
        """The contract's session and caller, left to play for a while: ffprobe reads what came."""
        session = self.make(feed, tmp_path)
        session.attach(feed.output)
        wait_until(lambda: session.counters.bytes_out > 400_000, "a few seconds of media sent", timeout=30)
        session.detach("enough")
        assert self.player is not None
        assert self.player.wait(15) == 0
        streams = ffprobe_json(self.received, timeout=30)["streams"]
        assert {s["codec_type"]: s["codec_name"] for s in streams} == {"video": "h264", "audio": "aac"}

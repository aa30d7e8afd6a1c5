"""The ingest contract, written once and run for every ingest protocol.

Each protocol's ingest runs in-process on 127.0.0.1 with its control plane replaced by a recording
stream opener: the opener is the seam under test, so it is the one fake here; the publishers on the
other side are real ffmpeg processes. A subclass says how to start its ingest, how ffmpeg publishes
to it, what the request must say, and how a dropped source looks from outside.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest

from kiln.media.ingest.contract import PublishRejected, PublishRequest
from kiln.media.model import MediaKind
from kiln.media.stream.live import LiveStream
from tests.peers.ports import wait_until
from tests.peers.process import Peer

T = TypeVar("T")
VHOST, APP = "default", "app"
OPEN_WAIT_S = 20.0
END_WAIT_S = 20.0


class LoopThread:
    """An asyncio loop on its own thread, as in ``kiln serve`` (ingest callbacks land on it)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ingest-contract-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class RecordingOpener:
    """A control plane that records every request and answers with a real LiveStream (or refuses).

    It also stands in for the companions some ingests need: host routing, the SRT handshake screen
    and the MPEG-TS port map, each recorded so a test can see what was asked.
    """

    def __init__(self, reject: str | None = None) -> None:
        self.reject = reject
        self.requests: list[PublishRequest] = []
        self.streams: list[LiveStream] = []
        self.hosts: list[str] = []
        self.screened: list[tuple[str, str, str, str]] = []

    async def open_stream(self, request: PublishRequest) -> LiveStream:
        self.requests.append(request)
        if self.reject is not None:
            raise PublishRejected(self.reject)
        stream = LiveStream(request.vhost, request.app, request.stream, source_type=request.source_type,
                            source_url=request.source_url, profiles=[], close_ingest=request.close_source)
        self.streams.append(stream)
        return stream

    def vhost_for_host(self, host: str, *, allow_vhost_name: bool = False) -> str | None:
        self.hosts.append(host)
        return VHOST if host in ("127.0.0.1", VHOST) else None

    def screen(self, vhost: str, app: str, stream: str, provider: str) -> None:
        self.screened.append((vhost, app, stream, provider))

    def stream_for_port(self, port: int) -> tuple[str, str, str] | None:
        return VHOST, APP, f"stream_{port}"

    def end_all(self) -> None:
        for stream in self.streams:
            stream.end("test over")


class IngestContract:
    """What every ingest protocol promises the control plane (subclass per protocol)."""

    provider: ClassVar[str]
    source_type: ClassVar[str]
    url_scheme: ClassVar[str]
    rejected_log: ClassVar[str]  # the ingest's own log line for a refused publish

    # -- what a protocol's subclass provides ------------------------------------------------------
    def start_ingest(self, opener: RecordingOpener, loop: LoopThread) -> None:
        raise NotImplementedError

    def stop_ingest(self, loop: LoopThread) -> None:
        raise NotImplementedError

    def expected_stream_name(self) -> str:
        raise NotImplementedError

    def publish(self, peer_dir: Path, *, loop: bool) -> Peer:
        """A real ffmpeg publisher (``loop``: it sends until stopped; else it sends a 4 s file once)."""
        raise NotImplementedError

    def assert_source_dropped(self, peer: Peer, caplog: pytest.LogCaptureFixture, reason: str) -> None:
        """The publisher was let go (for connection protocols: its connection closed)."""
        raise NotImplementedError

    # -- harness ----------------------------------------------------------------------------------
    @pytest.fixture
    def loop_thread(self) -> Iterator[LoopThread]:
        loop = LoopThread()
        yield loop
        loop.close()

    # -- the contract -----------------------------------------------------------------------------
    def test_publish_asks_the_opener_with_the_request(self, loop_thread: LoopThread, peer_dir: Path) -> None:
        opener = RecordingOpener()
        self.start_ingest(opener, loop_thread)
        peer = self.publish(peer_dir, loop=True)
        try:
            wait_until(lambda: opener.streams, OPEN_WAIT_S, "the ingest to ask the opener", proc=peer)
            [request] = opener.requests
            assert (request.vhost, request.app, request.stream) == (VHOST, APP, self.expected_stream_name())
            assert (request.provider, request.source_type) == (self.provider, self.source_type)
            assert request.source_url.startswith(f"{self.url_scheme}://")
            stream = opener.streams[0]
            wait_until(lambda: stream.bytes_in > 0 and {t.kind for t in stream.tracks.values()}
                       == {MediaKind.VIDEO, MediaKind.AUDIO}, OPEN_WAIT_S, "video and audio fed to the stream")
        finally:
            peer.stop()
            opener.end_all()
            self.stop_ingest(loop_thread)

    def test_rejection_drops_the_source_with_a_logged_reason(self, loop_thread: LoopThread, peer_dir: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.INFO)
        reason = "Stream already exists: [default/app/contract]"
        opener = RecordingOpener(reject=reason)
        self.start_ingest(opener, loop_thread)
        peer = self.publish(peer_dir, loop=True)
        try:
            wait_until(lambda: opener.requests, OPEN_WAIT_S, "the ingest to ask the opener", proc=peer)
            wait_until(lambda: any(self.rejected_log in r.getMessage() and reason in r.getMessage()
                                   for r in caplog.records), OPEN_WAIT_S, "the rejection logged with its reason")
            self.assert_source_dropped(peer, caplog, reason)
            assert opener.streams == []
        finally:
            peer.stop()
            self.stop_ingest(loop_thread)

    def test_source_end_ends_the_stream(self, loop_thread: LoopThread, peer_dir: Path) -> None:
        opener = RecordingOpener()
        self.start_ingest(opener, loop_thread)
        peer = self.publish(peer_dir, loop=False)
        try:
            wait_until(lambda: opener.streams, OPEN_WAIT_S, "the ingest to ask the opener", proc=peer)
            stream = opener.streams[0]
            peer.wait(END_WAIT_S)
            wait_until(lambda: stream.ended_reason is not None, END_WAIT_S, "the stream to end with its source")
            assert stream.ended_reason != "test over" and stream.bytes_in > 0
        finally:
            peer.stop()
            opener.end_all()
            self.stop_ingest(loop_thread)

    def test_closing_the_source_ends_the_stream(self, loop_thread: LoopThread, peer_dir: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
        """What DELETE stream (or a newer publisher) does through ``close_source``."""
        caplog.set_level(logging.INFO)
        opener = RecordingOpener()
        self.start_ingest(opener, loop_thread)
        peer = self.publish(peer_dir, loop=True)
        try:
            wait_until(lambda: opener.streams, OPEN_WAIT_S, "the ingest to ask the opener", proc=peer)
            stream = opener.streams[0]
            wait_until(lambda: stream.bytes_in > 0, OPEN_WAIT_S, "media fed to the stream")
            opener.requests[0].close_source("deleted by the API")
            wait_until(lambda: stream.ended_reason is not None, END_WAIT_S, "the stream to end")
            assert "deleted by the API" in (stream.ended_reason or "")
            self.assert_source_dropped(peer, caplog, "deleted by the API")
        finally:
            peer.stop()
            opener.end_all()
            self.stop_ingest(loop_thread)

"""The publisher contract (tests/unit/publish/contract.py) run for every publisher that needs no
external program: MPEG-TS push over UDP and TCP to sockets of the test, a recording into tmp_path,
and the thumbnail publisher."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kiln.media.model import Codec
from kiln.media.publish.contract import Publisher
from kiln.media.publish.record.session import FinishedFile, RecordCounters, RecordPlan, RecordSession
from kiln.media.publish.thumbnail.publisher import ThumbnailPublisher
from kiln.media.publish.thumbnail.store import Still
from tests.unit.publish.contract import TS_SYNC, LiveFeed, PublisherContract, PushContract, wait_until


class TestPushOverUdp(PushContract):
    @pytest.fixture(autouse=True)
    def listener(self) -> Any:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.3)
        yield self.sock
        self.sock.close()

    def destination(self) -> str:
        return f"udp://127.0.0.1:{self.sock.getsockname()[1]}"

    def assert_let_go(self, publisher: Publisher, tmp_path: Path) -> None:
        self.assert_states()
        datagrams = []
        try:
            while True:
                datagrams.append(self.sock.recv(65536))
        except TimeoutError:
            pass
        assert datagrams and all(len(d) % 188 == 0 and d[0] == TS_SYNC for d in datagrams)
        try:
            late = self.sock.recv(65536)
        except TimeoutError:
            late = b""
        assert late == b"", "datagrams still arrive after detach"


class TestPushOverTcp(PushContract):
    @pytest.fixture(autouse=True)
    def listener(self) -> Any:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.received = bytearray()
        self.closed_by_kiln = threading.Event()
        reader = threading.Thread(target=self._read, daemon=True)
        reader.start()
        yield self.server
        self.server.close()
        reader.join(5)

    def _read(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn:
            while chunk := conn.recv(65536):
                self.received += chunk
        self.closed_by_kiln.set()

    def destination(self) -> str:
        return f"tcp://127.0.0.1:{self.server.getsockname()[1]}"

    def assert_let_go(self, publisher: Publisher, tmp_path: Path) -> None:
        self.assert_states()
        assert self.closed_by_kiln.wait(5), "the TCP connection is still open after detach"
        assert self.received[0] == TS_SYNC and len(self.received) % 188 == 0
        assert len(self.received) >= publisher.counters.bytes_out > 0


class TestRecordTs(PublisherContract):
    extension = "ts"
    finished: list[FinishedFile]
    errors: list[str]

    def make(self, feed: LiveFeed, tmp_path: Path) -> Publisher:
        self.finished, self.errors = [], []
        plan = RecordPlan("default", "app", "r1", "tx1", feed.output.name, f"${{Id}}_${{Sequence}}.{self.extension}",
                          "${Id}.xml", str(tmp_path / "root"), tmp_path / "data", 0, "", False, "", time.time())
        session = RecordSession("contract", plan, feed.output, 0, RecordCounters(), self.finished.append,
                                self.errors.append)
        session.prepare()
        return session

    def assert_container(self, data: bytes) -> None:
        assert data[0] == TS_SYNC and len(data) % 188 == 0

    def assert_let_go(self, publisher: Publisher, tmp_path: Path) -> None:
        assert self.errors == []
        assert [f.last_sequence for f in self.finished] == [False]
        done = self.finished[0]
        name = f"r1_0.{self.extension}"
        assert Path(done.real_path) == tmp_path / "root" / name
        data = Path(done.real_path).read_bytes()
        assert len(data) == done.record_bytes >= publisher.counters.bytes_out > 0
        self.assert_container(data)
        assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["r1.xml", name]  # no temp file
        assert list((tmp_path / "data" / "records-inflight").iterdir()) == []


class TestRecordMp4(TestRecordTs):
    extension = "mp4"

    def assert_container(self, data: bytes) -> None:
        assert data[4:8] == b"ftyp" and b"moov" in data


class TestThumbnail(PublisherContract):
    profile = {"name": "thumbs", "outputStreamName": "${OriginStreamName}", "encodes": {
        "videos": [{"bypass": "true"}], "images": [{"codec": "jpeg", "width": "160", "framerate": "2"}]}}
    has_worker = False

    def make(self, feed: LiveFeed, tmp_path: Path) -> Publisher:
        holder = feed.output.images[Codec.JPEG]
        wait_until(lambda: holder.still is not None, "the first image")
        return ThumbnailPublisher("contract")

    def use(self, publisher: Publisher) -> None:
        assert isinstance(publisher, ThumbnailPublisher)
        publisher.serve(Codec.JPEG)

    def assert_let_go(self, publisher: Publisher, tmp_path: Path) -> None:
        assert isinstance(publisher, ThumbnailPublisher)
        assert publisher.serve(Codec.JPEG) is None and publisher.holder(Codec.JPEG) is None

    def test_serves_the_newest_still_as_jpeg(self, feed: LiveFeed, tmp_path: Path) -> None:
        publisher = self.make(feed, tmp_path)
        publisher.attach(feed.output)
        assert isinstance(publisher, ThumbnailPublisher)
        first = publisher.serve(Codec.JPEG)
        assert first is not None and first.content_type == "image/jpeg"
        assert first.still.data[:3] == b"\xff\xd8\xff"
        newer: list[Still] = []

        def a_newer_still() -> bool:
            served = publisher.peek(Codec.JPEG)
            if served is not None and served.still.sequence > first.still.sequence:
                newer.append(served.still)
            return bool(newer)
        wait_until(a_newer_still, "a newer image")
        assert publisher.counters.images_served == 1  # peeking (HEAD) is not serving
        assert publisher.serve(Codec.PNG) is None  # no PNG encode in this profile
        publisher.detach("test over")

"""A durable HLS dump resumes when its output stream is live again: the task supervisor, which owns
the app's dumps, starts its writer on StreamLive (no media module reads the tasks read model).

The pieces are real: a live stream fed with a generated clip, the LL-HLS publisher on its own event
loop, the task supervisor actor. Only the journal and the counters are stand-ins.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pykka
import pytest

from kiln.actors.base import ask_blocking
from kiln.actors.commands import StreamLive
from kiln.actors.tasks import TasksActor
from kiln.domain.app_tasks import AppTasks
from kiln.domain.dumps import DumpStatus
from kiln.events.tasks import DumpSpec
from kiln.media.publish.llhls.publisher import LlhlsPublisher
from kiln.media.publish.llhls.stream import LlhlsStream
from tests.unit.actors.fakes import Journal, Stats
from tests.unit.publish.contract import LiveFeed, wait_until

LLHLS_APP = {"publishers": {"llhls": {"segmentDuration": 1, "chunkDuration": 0.5}}}


@dataclass
class Media:
    llhls: LlhlsPublisher
    task_counters: None = None


@dataclass
class Setup:
    events: Journal
    stats: Stats
    data_dir: Path
    media: Media


class LoopThread:
    """The LL-HLS publisher's event loop, running on a thread as in the server."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.publisher = LlhlsPublisher(stats=Stats())
        self.publisher.attach(self.loop)
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-llhls-loop", daemon=True)
        self.thread.start()

    def stream(self, name: str) -> LlhlsStream | None:
        return self.publisher.find("default", "app", name)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.publisher.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def llhls() -> Iterator[LoopThread]:
    running = LoopThread()
    yield running
    running.close()


def dump(tmp_path: Path, output_stream: str, dump_id: str, enabled: bool = True) -> DumpStatus:
    spec = DumpSpec("default", "app", "cam", output_stream, dump_id, str(tmp_path / dump_id), ["llhls.m3u8"],
                    str(tmp_path / f"{dump_id}.xml"), "kept")
    return DumpStatus(spec, created_time=1.0, enabled=enabled, files_written=3)


def supervisor(tmp_path: Path, llhls: LoopThread, config: dict[str, Any],
               dumps: tuple[DumpStatus, ...]) -> pykka.ActorRef[Any]:
    setup = Setup(Journal(), Stats(), tmp_path, Media(llhls.publisher))
    return TasksActor.start(setup, "default", "app", config, AppTasks(dumps=dumps))


def info_items(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    root = ElementTree.parse(path).getroot()
    return [(int(i.findtext("Seq") or -1), i.findtext("File") or "") for i in root.findall("Items/Item")]


def test_an_enabled_dump_resumes_into_its_directory_continuing_its_info_file(
        tmp_path: Path, feed: LiveFeed, llhls: LoopThread) -> None:
    resumed, stopped, elsewhere = dump(tmp_path, "cam", "d1"), dump(tmp_path, "cam", "d2", False), \
        dump(tmp_path, "other", "d3")
    earlier = "".join(f"<Item><Seq>{n}</Seq><Time>t{n}</Time><File>{tmp_path}/d1/old_{n}.m4s</File></Item>"
                      for n in range(3))  # what the dump wrote before the stream went away
    Path(resumed.info_file).write_text(f"<HLSDumpInfo><Items>{earlier}</Items></HLSDumpInfo>")
    ref = supervisor(tmp_path, llhls, LLHLS_APP, (resumed, stopped, elsewhere))
    try:
        llhls.publisher.stream_started(feed.live, LLHLS_APP)  # the stream supervisor's order
        ask_blocking(ref, StreamLive(feed.live), timeout=5)
        ask_blocking(ref, StreamLive(feed.live), timeout=5)  # told twice (tracks described again): one writer
        wait_until(lambda: len(list((tmp_path / "d1").glob("seg_*_video_*.m4s"))) >= 2, "resumed segments")
        stream = llhls.stream("cam")
        assert stream is not None and [d.id for d in stream.dumps] == ["d1"]
        assert not (tmp_path / "d2").exists() and not (tmp_path / "d3").exists()
        items = info_items(Path(resumed.info_file))
        assert [seq for seq, _ in items] == list(range(len(items)))
        assert items[:3] == [(n, f"{tmp_path}/d1/old_{n}.m4s") for n in range(3)]
        assert all(Path(f).parent == tmp_path / "d1" for _, f in items[3:]) and len(items) > 3
    finally:
        ref.stop()
        llhls.publisher.stream_ended(feed.live)


def test_no_dump_resumes_where_the_app_does_not_publish_llhls(
        tmp_path: Path, feed: LiveFeed, llhls: LoopThread, caplog: pytest.LogCaptureFixture) -> None:
    ref = supervisor(tmp_path, llhls, {"publishers": {}}, (dump(tmp_path, "cam", "d1"),))
    try:
        with caplog.at_level(logging.INFO):
            ask_blocking(ref, StreamLive(feed.live), timeout=5)
            done: Future[None] = Future()
            llhls.loop.call_soon_threadsafe(done.set_result, None)  # after anything the supervisor scheduled
            done.result(5)
        assert llhls.stream("cam") is None and not (tmp_path / "d1").exists()
        assert "hls dump" not in caplog.text  # not even tried: there is no LL-HLS stream to write from
    finally:
        ref.stop()

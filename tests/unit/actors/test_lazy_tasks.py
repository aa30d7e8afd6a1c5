"""Recovered push and record tasks get their actor on their first command, not at startup.

A restart with thousands of standing tasks must not start a thread per task before it answers
(issue 16). A recovered task waits in its supervisor until its output stream goes live, or until it is
stopped; then it is the same actor, seeded with what recovery found, that acts for it. The pieces are
real (a live stream fed with a generated clip, the task supervisor, record actors writing files); the
journal is a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pykka
import pytest

from kiln.actors.base import ask_blocking
from kiln.actors.commands import StartPush, StopPush, StopRecord, StreamGone, StreamLive
from kiln.actors.push import PushActor
from kiln.actors.record import RecordActor, StoppedRecord
from kiln.actors.tasks import TasksActor
from kiln.domain.app_tasks import AppTasks
from kiln.domain.push import PushStatus
from kiln.domain.record import RecordStatus
from kiln.events import tasks as te
from kiln.metrics.sessions import SessionCounters
from tests.unit.actors.fakes import Journal, Stats
from tests.unit.publish.contract import LiveFeed, wait_until

CONFIG = {"publishers": {"push": {}, "file": {}}}


@dataclass
class Media:
    task_counters: SessionCounters


@dataclass
class Setup:
    events: Journal
    stats: Stats
    data_dir: Path
    media: Media


def push(task_id: str, stream: str) -> PushStatus:
    return PushStatus.created(te.PushCreated("default", "app", task_id, stream, [], [], "rtmp",
                                             "rtmp://push.invalid/live", "key", 1.0))


def record(tmp_path: Path, task_id: str, stream: str) -> RecordStatus:
    return RecordStatus.created(te.RecordCreated("default", "app", task_id, f"tx-{task_id}", stream, [], [],
                                                 str(tmp_path / f"{task_id}_${{Sequence}}.ts"), "", 0, "",
                                                 "discontinuity", "", 1.0))


def actors(cls: type[pykka.Actor]) -> int:
    return len(pykka.ActorRegistry.get_by_class(cls))


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(Journal(), Stats(), tmp_path, Media(SessionCounters()))


def test_recovered_tasks_start_no_actor_until_their_stream_is_live(tmp_path: Path, feed: LiveFeed,
                                                                    setup: Setup) -> None:
    recovered = AppTasks(pushes=tuple(push(f"p{i}", "elsewhere") for i in range(50)),
                         records=(record(tmp_path, "r-cam", "cam"), record(tmp_path, "r-other", "elsewhere")))
    before_push, before_record = actors(PushActor), actors(RecordActor)
    ref = TasksActor.start(setup, "default", "app", CONFIG, recovered)
    try:
        ask_blocking(ref, StreamGone(feed.live, "nothing was live"), timeout=5)  # a first command, answered
        assert (actors(PushActor), actors(RecordActor)) == (before_push, before_record)
        assert setup.media.task_counters.get(("record", "default", "app", "r-cam")) is None

        ask_blocking(ref, StreamLive(feed.live), timeout=5)
        # the record task on "cam" now has its actor, which records; nothing else started
        wait_until(lambda: any(isinstance(e, te.RecordStateChanged) and e.id == "r-cam" and e.state == "recording"
                               for e in setup.events.events), "the recovered record task recording")
        assert (actors(PushActor), actors(RecordActor)) == (before_push, before_record + 1)
        assert setup.media.task_counters.get(("record", "default", "app", "r-cam")) is not None
        assert not [e for e in setup.events.events if getattr(e, "id", "") != "r-cam"]
    finally:
        ref.stop()
    assert actors(RecordActor) == before_record


def test_stopping_a_waiting_task_answers_as_its_actor_would(tmp_path: Path, setup: Setup) -> None:
    recovered = AppTasks(pushes=(push("p1", "cam"),), records=(record(tmp_path, "r1", "cam"),))
    ref = TasksActor.start(setup, "default", "app", CONFIG, recovered)
    try:
        assert ask_blocking(ref, StopPush({"id": "p1"}), timeout=5) is None
        answer = ask_blocking(ref, StopRecord({"id": "r1"}), timeout=5)
        stopped = answer.result(5)
        assert isinstance(stopped, StoppedRecord)
        assert (stopped.task.spec.id, stopped.task.state, stopped.live.record_bytes) == ("r1", "stopping", 0)
        assert [(type(e).__name__, e.id) for e in setup.events.events] == [("PushRemoved", "p1"),
                                                                          ("RecordRemoved", "r1")]
        with pytest.raises(Exception, match="p1"):  # gone: a second stop is refused as for any unknown id
            ask_blocking(ref, StopPush({"id": "p1"}), timeout=5)
    finally:
        ref.stop()


def test_a_push_created_before_its_stream_is_live_waits_without_an_actor(feed: LiveFeed, setup: Setup) -> None:
    body = {"id": "early", "stream": {"name": "cam"}, "protocol": "rtmp", "url": "rtmp://127.0.0.1:9/live",
            "streamKey": "k"}
    ref = TasksActor.start(setup, "default", "app", CONFIG, AppTasks())
    before = actors(PushActor)
    try:
        created = ask_blocking(ref, StartPush(body), timeout=5)
        assert created.id == "early"
        assert [(type(e).__name__, e.id) for e in setup.events.events] == [("PushCreated", "early")]
        assert actors(PushActor) == before  # no thread for a push with nothing to push

        ask_blocking(ref, StreamLive(feed.live), timeout=5)
        assert actors(PushActor) == before + 1  # its stream is live: its actor runs it
        wait_until(lambda: setup.media.task_counters.get(("push", "default", "app", "early")) is not None,
                   "the push's counters on the board")
        assert ask_blocking(ref, StopPush({"id": "early"}), timeout=5) is None
        wait_until(lambda: actors(PushActor) == before, "the push actor stopped")
    finally:
        ref.stop()

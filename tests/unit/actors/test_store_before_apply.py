"""Every aggregate an actor owns is changed only by events the journal can store: ``decide_and_apply`` has the
event log encode them (``encode_events``, the journal's own encoding) before it applies them, so a refusal leaves
the aggregate exactly as it was, and the same aggregate then takes a storable command.

The actors whose commands come from media (a stream's instance, an app's streams and pulls, push and record
tasks) are reached here, as the HTTP contract (tests/unit/http/test_never_ahead.py) reaches the others. One
contract, subclassed per aggregate; the unstorable value is a lone surrogate, which msgpack cannot encode."""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

import pytest

import kiln.actors
from kiln.domain import pulls as dp
from kiln.domain import schedule as ds
from kiln.domain import stream_directory as dd
from kiln.domain.aggregate import decide_and_apply
from kiln.domain.errors import NotJournaled
from kiln.domain.push import OutputAttached, PushStatus, PushTask, SessionConnecting, SessionFailed
from kiln.domain.record import RecordingFailed, RecordStatus, RecordTask
from kiln.domain.settings import AppSettings
from kiln.domain.stream_instance import EndInstance, StreamInstance
from kiln.eventlog import encode_events
from kiln.events.streams import StreamStarted
from kiln.events.tasks import PushCreated, PushSpec, RecordCreated, RecordSpec

BAD = "\ud800"
NOW = 100.0


class StoreBeforeApplyContract:
    def aggregate(self) -> Any:
        raise NotImplementedError

    def command(self, value: str) -> Any:
        raise NotImplementedError

    def test_an_event_the_journal_cannot_store_leaves_the_aggregate_as_it_was(self) -> None:
        aggregate = self.aggregate()
        before = copy.deepcopy(vars(aggregate))
        with pytest.raises(NotJournaled, match="surrogates not allowed; nothing was changed"):
            decide_and_apply(aggregate, self.command("bad" + BAD), NOW, encode_events)
        assert vars(aggregate) == before
        stored = decide_and_apply(aggregate, self.command("good"), NOW, encode_events)
        assert stored.records and vars(aggregate) != before


class TestStreamInstance(StoreBeforeApplyContract):
    def aggregate(self) -> Any:
        return StreamInstance(StreamStarted("vh", "app", "cam", "i1", "Rtmp", "rtmp://h/app/cam", 1.0))

    def command(self, value: str) -> Any:
        return EndInstance(value, 10)


class TestStreamDirectory(StoreBeforeApplyContract):
    def aggregate(self) -> Any:
        return dd.StreamDirectory("vh", "app", AppSettings.parse({"providers": {"rtmp": {}}}))

    def command(self, value: str) -> Any:
        return dd.OpenStream("cam", "rtmp", "Rtmp", f"rtmp://h/app/{value}", "i1")


class TestAppPulls(StoreBeforeApplyContract):
    def aggregate(self) -> Any:
        return dp.AppPulls("vh", "app")

    def command(self, value: str) -> Any:
        return dp.PullConnected("cam", (f"rtsp://h/{value}",), {}, True)


class TestPushTask(StoreBeforeApplyContract):
    def aggregate(self) -> Any:
        spec = PushSpec("vh", "app", "p1", "cam", [], [], "rtmp", "rtmp://h/live", "k")
        task = PushTask(PushStatus.created(PushCreated.of(spec, 10.0)))
        for command in (OutputAttached(), SessionConnecting()):
            decide_and_apply(task, command, NOW, encode_events)
        return task

    def command(self, value: str) -> Any:
        return SessionFailed(value)


class TestRecordTask(StoreBeforeApplyContract):
    def aggregate(self) -> Any:
        spec = RecordSpec("vh", "app", "r1", "tx", "cam", [], [1], "/x.mp4", "", 60000, "", "continuity", "m")
        return RecordTask(RecordStatus.created(RecordCreated.of(spec, 10.0)))

    def command(self, value: str) -> Any:
        return RecordingFailed(value, None)


class TestAppSchedules(StoreBeforeApplyContract):
    def aggregate(self) -> Any:
        return ds.AppSchedules("vh", "app", True)

    def command(self, value: str) -> Any:
        return ds.CreateChannel({"stream": {"name": "tv1"}, "programs": [
            {"name": value, "scheduled": "2023-11-14T22:00:00.000Z", "items": [{"url": "file://a.mp4"}]}]})


def test_actors_change_their_aggregates_only_through_decide_and_apply() -> None:
    """An ``apply`` call in an actor would change its aggregate with no encoding before it (this contract's gap):
    the only one is a supervisor seeding the pulls recovery found, which the journal already holds."""
    seeding = {("streams.py", "__init__")}
    found = set()
    for path in Path(kiln.actors.__file__).parent.glob("*.py"):
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "apply":
                    found.add((path.name, function.name))
    assert found == seeding

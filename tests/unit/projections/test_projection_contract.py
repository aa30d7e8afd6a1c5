"""The projection contract, written once and run for every read model fed by events.

Hypothesis draws an event history over small name pools (so creates, deletes, re-creates and
cascades meet) from every event type the projection handles (found from its ``_on_<TYPE>``
handlers, so an event added later is drawn too, its fields drawn from its type hints). Then:
restoring a snapshot gives the same reads; replaying the journal gives what applying live gave;
a snapshot plus the journal's tail gives the full replay. All through the real Journal,
EventLog and SnapshotStore, so what is compared is what a restart would show.
"""

from __future__ import annotations

import dataclasses
import tempfile
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiln.eventlog import EventLog
from kiln.events.base import Event, registered_types
from kiln.journal import Journal, NewRecord, SnapshotStore
from kiln.projections.catalog import CatalogProjection
from kiln.projections.tasks import TasksProjection


class Projection(Protocol):
    def apply(self, ev: Event) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


# --- drawing events --------------------------------------------------------------------------------

NAMES = {  # identity fields draw from small pools, so events meet each other
    "vhost": ["v1", "v1", "v2", "cfg"], "app": ["a1", "a1", "a2"], "name": ["a1", "v1", "s", "p1"],
    "id": ["t1", "t2"], "instance": ["i1", "i2"], "stream": ["s", "cam"], "output_stream": ["s", "cam"],
    "stream_name": ["s", "cam"],
}
text = st.text(st.characters(codec="utf-8"), max_size=6)  # no lone surrogates: msgpack cannot carry them
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-2**31, 2**31) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=6)
profile = st.fixed_dictionaries({"name": st.sampled_from(["p1", "p2", "p3"])},
                                optional={"outputStreamName": text, "encodes": json_value})
app_config = st.fixed_dictionaries(
    {}, optional={"type": st.just("live"), "outputProfiles": st.builds(lambda ps: {"outputProfile": ps},
                                                                       st.lists(profile, max_size=3)),
                  "providers": st.dictionaries(text, json_value, max_size=2)})
BY_FIELD = {"config": app_config, "profiles": st.lists(profile, max_size=2), "profile": profile}


def value_of(hint: Any) -> st.SearchStrategy[Any]:
    """A strategy for a field's type hint, with values the journal's msgpack carries unchanged."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return json_value
    if origin in (types.UnionType, typing.Union):
        return st.one_of(*(value_of(a) for a in args))
    if origin is list:
        return st.lists(value_of(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(text, value_of(args[1]), max_size=3)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: text, bool: st.booleans(), int: st.integers(0, 2**53), type(None): st.none(),
        float: st.floats(0, 4e9, allow_nan=False, allow_infinity=False)}
    return simple[hint]


def field_values(name: str, hint: Any) -> st.SearchStrategy[Any]:
    if name in NAMES:
        return st.sampled_from(NAMES[name])
    return BY_FIELD[name] if name in BY_FIELD else value_of(hint)


def events_of(cls: type[Event]) -> st.SearchStrategy[Event]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: field_values(f.name, hints[f.name]) for f in dataclasses.fields(cls)})


def histories(projection: type) -> st.SearchStrategy[list[Event]]:
    handled = [cls for name, cls in sorted(registered_types().items()) if hasattr(projection, "_on_" + name)]
    assert handled, f"{projection.__name__} handles no event"
    return st.lists(st.one_of(*(events_of(cls) for cls in handled)), max_size=40)


# --- the contract ----------------------------------------------------------------------------------

# differing_executors: the properties are written once here and run by each subclass, each drawing
# from its own projection's events (what the contract is for)
CONTRACT = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])


# journals and snapshots fsync; in memory when the machine has a tmpfs, so 150 examples stay quick
SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() else None


@contextmanager
def journal_in(data_dir: Path) -> Iterator[Journal]:
    journal = Journal.open(data_dir, fsync=False)
    try:
        yield journal
    finally:
        journal.close()


class ProjectionContract(ABC):
    projection: type

    @abstractmethod
    def new(self) -> Projection:
        """A fresh read model, as a starting Kiln makes it (configuration seeded, nothing journaled)."""

    @abstractmethod
    def reads(self, projection: Any) -> Any:
        """Everything its read methods show, comparable with ``==`` (order kept: listings show it)."""

    def applied_live(self, data_dir: Path, history: list[Event], snapshot_after: int | None = None) -> Any:
        """Emit ``history``, the projection fed by the journal as in production; with
        ``snapshot_after``, a snapshot is saved once that many events are durable."""
        live = self.new()
        cut = len(history) if snapshot_after is None else snapshot_after
        with journal_in(data_dir) as journal:
            log = EventLog(journal, NewRecord)
            log.add_projection(live)
            log.emit(history[:cut]).result(5)
            if snapshot_after is not None:
                SnapshotStore(data_dir).save(journal.last_seq, live.snapshot())
            log.emit(history[cut:]).result(5)
            assert log.projection_failures == 0
        return live

    def replayed(self, data_dir: Path, *, from_snapshot: bool, stored: bool = True) -> Any:
        """What a restart rebuilds: the latest snapshot (if asked) then the journal after it, read as the
        service reads it (``read_stored_lists`` into ``apply_stored_lists``) or, with ``stored=False``, as Records."""
        fresh = self.new()
        after = 0
        if from_snapshot:
            loaded = SnapshotStore(data_dir).load_latest()
            assert loaded is not None
            after, state = loaded
            fresh.restore(state)
        with journal_in(data_dir) as journal:
            log = EventLog(journal, NewRecord)
            log.add_projection(fresh)
            if stored:
                log.apply_stored_lists(journal.read_stored_lists(after + 1))
            else:
                log.apply_replayed(journal.read(after + 1))
            assert log.projection_failures == 0
        return fresh

    @CONTRACT
    @given(data=st.data())
    def test_restoring_a_snapshot_gives_the_same_reads(self, data: st.DataObject) -> None:
        history = data.draw(histories(self.projection))
        with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
            live = self.applied_live(Path(tmp), history, snapshot_after=len(history))
            restored = self.replayed(Path(tmp), from_snapshot=True)  # the journal's tail is empty here
            assert self.reads(restored) == self.reads(live)
            assert restored.snapshot() == live.snapshot()

    @CONTRACT
    @given(data=st.data())
    def test_replaying_the_journal_gives_what_applying_live_gave(self, data: st.DataObject) -> None:
        history = data.draw(histories(self.projection))
        with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
            live = self.applied_live(Path(tmp), history)
            assert self.reads(self.replayed(Path(tmp), from_snapshot=False)) == self.reads(live)
            assert self.reads(self.replayed(Path(tmp), from_snapshot=False, stored=False)) == self.reads(live)

    @CONTRACT
    @given(data=st.data())
    def test_a_snapshot_and_the_journal_tail_give_the_full_replay(self, data: st.DataObject) -> None:
        history = data.draw(histories(self.projection))
        cut = data.draw(st.integers(0, len(history)))
        with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
            live = self.applied_live(Path(tmp), history, snapshot_after=cut)
            from_snapshot = self.replayed(Path(tmp), from_snapshot=True)
            full = self.replayed(Path(tmp), from_snapshot=False)
            assert self.reads(from_snapshot) == self.reads(full) == self.reads(live)


# --- the read models -------------------------------------------------------------------------------

CONFIG_VHOST = {"name": "cfg", "applications": {"application": [{"name": "a1", "type": "live"}]}}


class TestCatalogProjection(ProjectionContract):
    projection = CatalogProjection

    def new(self) -> CatalogProjection:
        catalog = CatalogProjection()
        catalog.seed_config_vhost(CONFIG_VHOST, 1.0)  # a Server.xml vhost shadows a journaled one of that name
        return catalog

    def reads(self, projection: Any) -> Any:
        catalog: CatalogProjection = projection
        names = catalog.vhost_names()
        return {"vhosts": [catalog.vhost(n) for n in names],
                "apps": {(v, a): catalog.app(v, a) for v in names for a in catalog.app_names(v) or []},
                "pulls": catalog.pull_list(), "live": catalog.live_streams(),
                "schedules": catalog.schedule_definitions(),
                "channels": {(v, a): catalog.schedule_names(v, a) for v in NAMES["vhost"] for a in NAMES["app"]},
                "multiplexes": catalog.multiplex_definitions(),
                "muxChannels": {(v, a): catalog.multiplex_names(v, a) for v in NAMES["vhost"] for a in NAMES["app"]}}


class TestTasksProjection(ProjectionContract):
    projection = TasksProjection

    def new(self) -> TasksProjection:
        return TasksProjection()

    def reads(self, projection: Any) -> Any:
        tasks: TasksProjection = projection
        return {"pushes": tasks.all_pushes(), "records": tasks.all_records(), "dumps": tasks.all_dumps(),
                "listed": [(tasks.push_list(v, a), tasks.record_list(v, a)) for v in NAMES["vhost"]
                           for a in NAMES["app"]]}

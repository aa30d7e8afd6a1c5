"""The actors' GIL-bound threads run on one CPU (kiln/control_cpu.py); the threads that asked them, the
journal's standby committer, the media threads an actor starts and everything else stay free."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from kiln import control_cpu
from kiln.actors.base import CommandActor, Outcome, tell
from kiln.journal import Journal, NewRecord, Record
from kiln.media.worker import WorkerThread

ALLOWED = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
several_cpus = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs a process that may run on 2 CPUs or more")


@pytest.fixture(autouse=True)
def fresh_choice(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test decides the CPU again (the module decides once per process)."""
    monkeypatch.setattr(control_cpu, "_choice", control_cpu._UNSET)
    monkeypatch.delenv(control_cpu.ENV, raising=False)
    yield


class WhereAmI:
    pass


class Appender(CommandActor):
    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    def handle_WhereAmI(self, _cmd: WhereAmI) -> Outcome:
        return Outcome(os.sched_getaffinity(0), [self.journal.append([NewRecord("thing:x", "Thing", 1, {})])])


def _committed_on(journal: Journal) -> list[tuple[str, set[int]]]:
    """Who committed each batch: thread name and CPU set (the listener runs on the committing thread)."""
    seen: list[tuple[str, set[int]]] = []

    def listener(_records: list[Record]) -> None:
        seen.append((threading.current_thread().name, os.sched_getaffinity(0)))

    journal.add_listener(listener)
    return seen


def test_unset_chooses_the_last_cpu_of_the_process_and_off_or_one_cpu_chooses_none() -> None:
    assert control_cpu.control_cpu({}) == (max(ALLOWED) if len(ALLOWED) > 1 else None)
    assert control_cpu.control_cpu({control_cpu.ENV: "off"}) is None
    assert control_cpu.control_cpu({control_cpu.ENV: " OFF "}) is None
    some = min(ALLOWED)
    assert control_cpu.control_cpu({control_cpu.ENV: str(some)}) == some


def test_a_cpu_that_is_not_a_number_or_not_the_process_s_is_refused_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kiln.control_cpu"):
        assert control_cpu.control_cpu({control_cpu.ENV: "fast"}) is None
        assert control_cpu.control_cpu({control_cpu.ENV: str(max(ALLOWED) + 1)}) is None
    text = caplog.text
    assert "KILN_CONTROL_CPU='fast' is not a CPU number or 'off'" in text
    assert f"KILN_CONTROL_CPU={max(ALLOWED) + 1} is not among the CPUs this process may use" in text


@several_cpus
def test_actor_threads_share_the_control_cpu_and_the_rest_stay_free(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = min(ALLOWED)  # not the default, so the test sees the setting obeyed
    monkeypatch.setenv(control_cpu.ENV, str(cpu))
    journal = Journal.open(tmp_path, fsync=False)
    committed = _committed_on(journal)
    first, second = Appender.start(journal), Appender.start(journal)
    try:
        for ref in (first, second):
            outcome = tell(ref, WhereAmI()).result(10)
            assert outcome.value == {cpu}  # the actor's own thread
            for fut in outcome.durable:
                fut.result(10)
        # an appender that hands off (as an event loop's thread does) is committed by the standby thread
        monkeypatch.setattr("kiln.journal.journal._hands_off", lambda: True)
        journal.append([NewRecord("thing:y", "Thing", 1, {})]).result(10)
        by_actors = [cpus for name, cpus in committed if name != "kiln-journal"]
        by_standby = [cpus for name, cpus in committed if name == "kiln-journal"]
        assert by_actors and all(cpus == {cpu} for cpus in by_actors)
        assert by_standby == [ALLOWED]  # the committer stays free
        assert os.sched_getaffinity(0) == ALLOWED  # and so does the thread that asked
    finally:
        first.stop()
        second.stop()
        journal.close()


@several_cpus
def test_off_pins_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(control_cpu.ENV, "off")
    journal = Journal.open(tmp_path, fsync=False)
    committed = _committed_on(journal)
    ref = Appender.start(journal)
    try:
        outcome = tell(ref, WhereAmI()).result(10)
        assert outcome.value == ALLOWED
        for fut in outcome.durable:
            fut.result(10)
        assert [cpus for _name, cpus in committed] == [ALLOWED]
    finally:
        ref.stop()
        journal.close()


class StartWorker:
    pass


class Starter(CommandActor):
    """Starts a media worker thread from its own (pinned) thread, as the push, record and streams actors do."""

    def handle_StartWorker(self, _cmd: StartWorker) -> Outcome:
        seen: Future[set[int]] = Future()
        WorkerThread("probe", lambda: seen.set_result(os.sched_getaffinity(0))).start()
        return Outcome((os.sched_getaffinity(0), seen))


@several_cpus
def test_a_media_thread_an_actor_starts_runs_on_the_process_s_cpus_not_the_actor_s(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Linux gives a new thread its creator's CPUs: a pull, push or recording started by an actor would
    otherwise run on the actors' CPU only."""
    cpu = min(ALLOWED)
    monkeypatch.setenv(control_cpu.ENV, str(cpu))
    ref = Starter.start()
    try:
        actor_side, worker_side = tell(ref, StartWorker()).result(10).value
        assert actor_side == {cpu}
        assert worker_side.result(10) == ALLOWED
    finally:
        ref.stop()

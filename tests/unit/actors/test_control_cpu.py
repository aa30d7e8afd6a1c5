"""The actors' GIL-bound threads run on one CPU in SCHED_BATCH (kiln/actors/control_cpu.py); the threads that
asked them, the journal's standby committer and everything else stay as they were."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.actors import control_cpu
from kiln.actors.base import CommandActor, Outcome, tell
from kiln.journal import Journal, NewRecord, Record

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
        here = (os.sched_getaffinity(0), os.sched_getscheduler(0))
        return Outcome(here, [self.journal.append([NewRecord("thing:x", "Thing", 1, {})])])


def _committed_on(journal: Journal) -> list[tuple[str, set[int], int]]:
    """Who committed each batch: thread name, CPU set, policy (the listener runs on the committing thread)."""
    seen: list[tuple[str, set[int], int]] = []

    def listener(_records: list[Record]) -> None:
        seen.append((threading.current_thread().name, os.sched_getaffinity(0), os.sched_getscheduler(0)))

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
    with caplog.at_level(logging.WARNING, logger="kiln.actors.control_cpu"):
        assert control_cpu.control_cpu({control_cpu.ENV: "fast"}) is None
        assert control_cpu.control_cpu({control_cpu.ENV: str(max(ALLOWED) + 1)}) is None
    text = caplog.text
    assert "KILN_CONTROL_CPU='fast' is not a CPU number or 'off'" in text
    assert f"KILN_CONTROL_CPU={max(ALLOWED) + 1} is not among the CPUs this process may use" in text


@several_cpus
def test_actor_threads_share_the_control_cpu_in_sched_batch_and_the_rest_stay_free(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = min(ALLOWED)  # not the default, so the test sees the setting obeyed
    monkeypatch.setenv(control_cpu.ENV, str(cpu))
    journal = Journal.open(tmp_path, fsync=False)
    committed = _committed_on(journal)
    first, second = Appender.start(journal), Appender.start(journal)
    try:
        for ref in (first, second):
            outcome = tell(ref, WhereAmI()).result(10)
            assert outcome.value == ({cpu}, os.SCHED_BATCH)  # the actor's own thread
            for fut in outcome.durable:
                fut.result(10)
        # an appender that hands off (as an event loop's thread does) is committed by the standby thread
        monkeypatch.setattr("kiln.journal.journal._hands_off", lambda: True)
        journal.append([NewRecord("thing:y", "Thing", 1, {})]).result(10)
        by_actors = [(cpus, policy) for name, cpus, policy in committed if name != "kiln-journal"]
        by_standby = [(cpus, policy) for name, cpus, policy in committed if name == "kiln-journal"]
        assert by_actors and all(seen == ({cpu}, os.SCHED_BATCH) for seen in by_actors)
        assert by_standby == [(ALLOWED, os.SCHED_OTHER)]  # the committer stays free
        assert (os.sched_getaffinity(0), os.sched_getscheduler(0)) == (ALLOWED, os.SCHED_OTHER)  # the asker too
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
        assert outcome.value == (ALLOWED, os.SCHED_OTHER)
        for fut in outcome.durable:
            fut.result(10)
        assert [(cpus, policy) for _name, cpus, policy in committed] == [(ALLOWED, os.SCHED_OTHER)]
    finally:
        ref.stop()
        journal.close()

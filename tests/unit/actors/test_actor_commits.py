"""An actor with commands waiting in its mailbox does not wait for the disk: its emits go to the journal's
standby thread, so a burst of commands (streams connecting at once) is not held up one fsync per command."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from kiln.actors.base import CommandActor, Outcome, tell
from kiln.journal import Journal, NewRecord, Record


class Append:
    pass


class Appender(CommandActor):
    def __init__(self, journal: Journal, gate: threading.Event) -> None:
        super().__init__()
        self.journal = journal
        self.gate = gate

    def handle_Append(self, _cmd: Append) -> Outcome:
        assert self.gate.wait(10)  # the first command waits until the burst is queued
        return Outcome(None, [self.journal.append([NewRecord("thing:x", "Thing", 1, {})])])


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal.open(tmp_path, fsync=True)
    yield j
    j.close()


def test_a_burst_of_commands_is_committed_by_the_standby_until_the_mailbox_is_empty(journal: Journal) -> None:
    committers: list[tuple[int, str]] = []

    def seen(records: list[Record]) -> None:
        committers.extend((r.seq, threading.current_thread().name) for r in records)

    journal.add_listener(seen)
    gate = threading.Event()
    ref = Appender.start(journal, gate)
    try:
        replies = [tell(ref, Append()) for _ in range(5)]
        gate.set()
        durable: list[Future[Any]] = [f for reply in replies for f in reply.result(10).durable]
        for f in durable:
            f.result(10)
        actor_thread = {name for _seq, name in committers} - {"kiln-journal"}
        # the first four had commands behind them: the standby committed them; the last may commit itself
        assert [name for seq, name in committers if seq <= 4] == ["kiln-journal"] * 4
        assert len(committers) == 5 and len(actor_thread) <= 1
    finally:
        ref.stop()

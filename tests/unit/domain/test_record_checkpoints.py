"""Record totals never go back: checkpoints of the file in flight every few seconds while it grows
(decided by the aggregate with time passed in); a finished or recovered file counts at least its
checkpoint, once; between a file's end and its event reaching the read model the checkpoint holds
the totals up."""

from __future__ import annotations

from kiln.domain.record import (
    CHECKPOINT_EVERY_S,
    Checkpointed,
    CountersSampled,
    RecordStatus,
    RecordTask,
    lost_after_restart,
)
from kiln.events.tasks import (
    RecordCreated,
    RecordFileFinished,
    RecordFileLost,
    RecordProgress,
    RecordSpec,
    RecordStateChanged,
)
from kiln.projections.tasks import TasksProjection
from tests.unit.domain.given import given

SPEC = RecordSpec("vh", "app", "r1", "tx", "cam", [], [], "/x.mp4", "", 0, "", "", "")
CREATED = RecordCreated.of(SPEC, 10.0)
RECORDING = RecordStateChanged("vh", "app", "r1", "recording", "", 11.0, "/x.mp4", "")


def progress(sequence: int, record_bytes: int, record_time_ms: int) -> RecordProgress:
    return RecordProgress("vh", "app", "r1", sequence, record_bytes, record_time_ms)


def finished(sequence: int, record_bytes: int, record_time_ms: int, recovered: bool = False) -> RecordFileFinished:
    return RecordFileFinished("vh", "app", "r1", sequence, "/x.mp4", "", record_bytes, record_time_ms, 11.0, 20.0,
                              False, recovered)


def task() -> RecordTask:
    return RecordTask(RecordStatus.created(CREATED))


def status(*history: RecordFileFinished | RecordFileLost | RecordProgress | RecordStateChanged) -> RecordStatus:
    out = RecordStatus.created(CREATED)
    for ev in history:
        out.fold(ev)
    return out


def test_a_growing_file_is_checkpointed_at_most_once_per_interval() -> None:
    outcome = given(task(), RECORDING).when(CountersSampled(0, 500, 1000), now=100.0).then(
        progress(0, 500, 1000), Checkpointed(100.0))
    outcome = outcome.when(CountersSampled(0, 900, 1500), now=100.0 + CHECKPOINT_EVERY_S - 0.01).then()
    outcome.when(CountersSampled(0, 1200, 3000), now=100.0 + CHECKPOINT_EVERY_S).then(
        progress(0, 1200, 3000), Checkpointed(100.0 + CHECKPOINT_EVERY_S))


def test_no_checkpoint_without_growth_or_for_a_file_already_finished() -> None:
    given(task(), RECORDING).when(CountersSampled(0, 0, 1000), now=100.0).then()
    given(task(), RECORDING, progress(0, 500, 1000)).when(CountersSampled(0, 500, 3000), now=100.0).then()
    given(task(), RECORDING, finished(0, 800, 2000)).when(CountersSampled(0, 900, 3000), now=100.0).then()


def test_the_next_files_first_bytes_are_checkpointed_even_below_the_last_files_checkpoint() -> None:
    given(task(), RECORDING, progress(0, 5000, 5000), finished(0, 5200, 5100)).when(
        CountersSampled(1, 100, 100), now=100.0).then(progress(1, 100, 100), Checkpointed(100.0))


def test_a_finished_file_counts_once_and_clears_its_checkpoint() -> None:
    s = status(RECORDING, progress(0, 500, 1000), finished(0, 800, 1600))
    assert (s.total_record_bytes, s.total_record_time_ms, s.file_record_bytes, s.sequence) == (800, 1600, 0, 1)
    assert s.shown_totals(0, 0) == (800, 1600)


def test_a_recovered_file_counts_at_least_its_checkpoint() -> None:
    """kill -9: the recovered file may hold less than was counted (a fragment still in memory)."""
    s = status(RECORDING, finished(0, 1000, 1000), progress(1, 700, 7000))
    before = s.shown_totals(0, 0)
    s.fold(finished(1, 650, 6500, recovered=True))
    assert s.shown_totals(0, 0) == before == (1700, 8000)


def test_between_a_files_end_and_its_event_the_checkpoint_holds_the_totals() -> None:
    """The writer resets the live counters when a file closes; its RecordFileFinished is still on
    its way to the journal: the totals shown must not drop by the whole file."""
    s = status(RECORDING, progress(0, 700, 7000))
    assert s.shown_totals(750, 7500) == (750, 7500)  # live counters past the checkpoint
    assert s.shown_totals(0, 0) == (700, 7000)  # counters reset, event not applied yet
    s.fold(finished(0, 760, 7600))
    assert s.shown_totals(0, 0) == (760, 7600)


def test_a_checkpoint_of_the_next_file_arriving_early_is_kept() -> None:
    s = status(RECORDING, progress(1, 100, 100))
    s.fold(finished(0, 800, 1600))
    assert (s.total_record_bytes, s.file_sequence, s.file_record_bytes) == (800, 1, 100)
    assert s.shown_totals(0, 0) == (900, 1700)


def test_read_model_applies_checkpoints_and_snapshots_them() -> None:
    projection = TasksProjection()
    for ev in (CREATED, RECORDING, progress(0, 300, 3000), progress(0, 700, 7000)):
        projection.apply(ev)
    record = projection.record("vh", "app", "r1")
    assert record is not None and record.shown_totals(0, 0) == (700, 7000)
    restored = TasksProjection()
    restored.restore(projection.snapshot())
    assert restored.record("vh", "app", "r1") == record


def test_a_file_recovery_could_not_finish_keeps_its_checkpoint_in_the_totals() -> None:
    s = status(RECORDING, finished(0, 1000, 1000), progress(1, 700, 7000))
    before = s.shown_totals(0, 0)
    events = lost_after_restart(s, 1, "nothing was written before the crash")
    assert events == [RecordFileLost("vh", "app", "r1", 1, 700, 7000, "nothing was written before the crash")]
    for ev in events:
        s.fold(ev)
    assert s.shown_totals(0, 0) == before == (1700, 8000)
    # the next file reuses the sequence and counts from zero, on top
    s.fold(progress(1, 100, 100))
    assert s.shown_totals(0, 0) == (1800, 8100)
    s.fold(finished(1, 120, 120))
    assert (s.total_record_bytes, s.sequence) == (1820, 2)


def test_nothing_is_lost_without_a_checkpoint_of_that_file() -> None:
    assert lost_after_restart(status(RECORDING), 0, "x") == []
    assert lost_after_restart(status(RECORDING, progress(0, 5, 5)), 1, "x") == []


def test_a_file_the_session_finished_counts_in_full_before_its_event_arrives() -> None:
    """The live counters carry the finished file's final figures (the session sets them as it resets
    the file in flight): the totals move from the live count to the final size, never back to the
    last checkpoint, and do not move when the event is applied."""
    s = status(RECORDING, progress(0, 700, 7000))
    assert s.shown_totals(750, 7500) == (750, 7500)
    done = (0, 760, 7600)
    assert s.shown_totals(0, 0, done) == (760, 7600)  # reset, event on its way
    assert s.shown_totals(30, 300, done) == (790, 7900)  # the next file grows
    s.fold(finished(0, 760, 7600))
    assert s.shown_totals(30, 300, done) == (790, 7900)
    s.fold(progress(1, 40, 400))
    assert s.shown_totals(45, 450, done) == (805, 8050)  # an older finished file is not counted twice

"""Push totals survive a crash: checkpoints every few seconds while bytes move (decided by the
aggregate with time passed in), totals shown never fall below one, and recovery adds a dead
session's last checkpoint exactly once."""

from __future__ import annotations

from kiln.domain.aggregate import decide_and_apply
from kiln.domain.push import (
    CHECKPOINT_EVERY_S,
    Checkpointed,
    CountersSampled,
    OutputDetached,
    PushStatus,
    PushTask,
    closed_after_restart,
)
from kiln.events.tasks import PushCreated, PushProgress, PushSessionEnded, PushSpec, PushStateChanged
from kiln.projections.tasks import TasksProjection
from tests.unit.domain.given import given

SPEC = PushSpec("vh", "app", "p1", "cam", [], [], "rtmp", "rtmp://h/live", "k")
CREATED = PushCreated.of(SPEC, 10.0)
PUSHING = PushStateChanged("vh", "app", "p1", "pushing")


def progress(sent_bytes: int, sent_time_ms: int) -> PushProgress:
    return PushProgress("vh", "app", "p1", sent_bytes, sent_time_ms)


def task() -> PushTask:
    return PushTask(PushStatus.created(CREATED))


def test_the_first_sample_with_bytes_is_checkpointed() -> None:
    given(task(), PUSHING).when(CountersSampled(500, 1000), now=100.0).then(progress(500, 1000), Checkpointed(100.0))


def test_no_checkpoint_while_no_bytes_moved() -> None:
    given(task(), PUSHING).when(CountersSampled(0, 1000), now=100.0).then()
    outcome = given(task(), PUSHING, progress(500, 1000)).when(CountersSampled(500, 3000), now=100.0).then()
    assert outcome.aggregate.status.session_sent_bytes == 500


def test_at_most_one_checkpoint_per_interval() -> None:
    outcome = given(task(), PUSHING).when(CountersSampled(500, 1000), now=100.0).then(
        progress(500, 1000), Checkpointed(100.0))
    outcome = outcome.when(CountersSampled(900, 1500), now=100.0 + CHECKPOINT_EVERY_S - 0.01).then()
    outcome.when(CountersSampled(1200, 3000), now=100.0 + CHECKPOINT_EVERY_S).then(
        progress(1200, 3000), Checkpointed(100.0 + CHECKPOINT_EVERY_S))


def test_a_sampled_stream_journals_about_one_checkpoint_per_interval() -> None:
    """Samples every 0.1 s for a minute: the journal gets one checkpoint per interval, not per sample."""
    push = task()
    given(push, PUSHING)
    journaled = []
    for tick in range(600):
        decided = decide_and_apply(push, CountersSampled(1000 * (tick + 1), tick * 100), 100.0 + tick * 0.1,
                                   list)
        journaled += [ev for ev in decided if isinstance(ev, PushProgress)]
    assert 60 / CHECKPOINT_EVERY_S - 1 <= len(journaled) <= 60 / CHECKPOINT_EVERY_S + 1


def test_session_end_adds_the_whole_session_once_and_clears_the_checkpoint() -> None:
    outcome = given(task(), PUSHING, progress(500, 1000)).when(OutputDetached("stream ended", True, 800, 1600))
    outcome.then(PushSessionEnded("vh", "app", "p1", 800, 1600, "stream ended"),
                 PushStateChanged("vh", "app", "p1", "ready", "stream ended", 0.0))
    status = outcome.aggregate.status
    assert (status.total_sent_bytes, status.session_sent_bytes, status.sequence) == (800, 0, 1)
    # the next session checkpoints from zero again, at once
    outcome.when(CountersSampled(10, 100), now=1_000.5).then(progress(10, 100), Checkpointed(1_000.5))


def test_session_end_never_reports_less_than_the_checkpoint() -> None:
    given(task(), PUSHING, progress(500, 1000)).when(OutputDetached("stream ended", False, 0, 0)).then(
        PushSessionEnded("vh", "app", "p1", 500, 1000, "stream ended"),
        PushStateChanged("vh", "app", "p1", "ready", "stream ended", 0.0))


def test_shown_totals_are_ended_sessions_plus_the_further_of_live_and_checkpoint() -> None:
    status = PushStatus.created(CREATED)
    for ev in (PushSessionEnded("vh", "app", "p1", 1000, 10, ""), progress(400, 4)):
        status.fold(ev)
    assert status.shown_totals(0, 0) == (1400, 14)  # after a restart: nothing live yet
    assert status.shown_totals(450, 5) == (1450, 15)  # live counters ran past the checkpoint


def test_recovery_ends_a_dead_session_with_its_checkpoint() -> None:
    status = PushStatus.created(CREATED)
    for ev in (PushSessionEnded("vh", "app", "p1", 1000, 10, ""), PUSHING, progress(400, 4)):
        status.fold(ev)
    before = status.shown_totals(0, 0)
    events = closed_after_restart(status)
    assert events == [PushSessionEnded("vh", "app", "p1", 400, 4, "server restart"),
                      PushStateChanged("vh", "app", "p1", "ready", "server restart", 0.0)]
    for ev in events:
        status.fold(ev)
    assert status.shown_totals(0, 0) == before == (1400, 14)
    assert (status.sequence, status.session_sent_bytes) == (2, 0)


def test_recovery_of_an_erroring_task_with_a_checkpoint_keeps_its_bytes() -> None:
    status = PushStatus.created(CREATED)
    for ev in (PUSHING, progress(400, 4), PushStateChanged("vh", "app", "p1", "error", "refused")):
        status.fold(ev)
    assert closed_after_restart(status)[0] == PushSessionEnded("vh", "app", "p1", 400, 4, "server restart")


def test_recovery_leaves_a_ready_task_without_checkpoint_alone() -> None:
    assert closed_after_restart(PushStatus.created(CREATED)) == []


def test_an_old_journal_without_checkpoints_recovers_as_before() -> None:
    status = PushStatus.created(CREATED)
    status.fold(PUSHING)
    assert closed_after_restart(status)[0] == PushSessionEnded("vh", "app", "p1", 0, 0, "server restart")


def test_read_model_applies_checkpoints_and_replays_them() -> None:
    history = [CREATED, PUSHING, progress(300, 3), progress(700, 7)]
    projection = TasksProjection()
    for ev in history:
        projection.apply(ev)
    push = projection.push("vh", "app", "p1")
    assert push is not None and push.shown_totals(0, 0) == (700, 7)
    restored = TasksProjection()
    restored.restore(projection.snapshot())
    assert restored.push("vh", "app", "p1") == push
    for ev in closed_after_restart(push):
        projection.apply(ev)
    after = projection.push("vh", "app", "p1")
    assert after is not None and (after.total_sent_bytes, after.session_sent_bytes, after.state) == (700, 0, "ready")

"""Push tasks decided without a clock: create/stop refusals, states, backoff, flaps, quiet repeats."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.domain.errors import Conflict, Invalid, NotFound
from kiln.domain.push import (
    CreatePush,
    NoTracks,
    OutputAttached,
    OutputDetached,
    PushAttempts,
    PushStatus,
    PushTask,
    PushTasks,
    RemovePush,
    RetryAfter,
    SessionConnecting,
    SessionFailed,
    SessionPushing,
)
from kiln.domain.settings import AppSettings
from kiln.events.base import decode_event
from kiln.events.tasks import PushCreated, PushRemoved, PushSessionEnded, PushSpec, PushStateChanged
from tests.unit.domain.given import given

PUSH_APP = AppSettings.parse({"publishers": {"push": {}}})
BODY = {"id": "p1", "stream": {"name": "cam", "variantNames": ["v"], "tracks": [1, "x"]},
        "protocol": " RTMP ", "url": "rtmp://h/live/ ", "streamKey": " k "}
SPEC = PushSpec("vh", "app", "p1", "cam", ["v"], [1], "rtmp", "rtmp://h/live", "k")
CREATED = PushCreated.of(SPEC, 10.0)


def state(name: str, reason: str = "", start_time: float | None = None) -> PushStateChanged:
    return PushStateChanged("vh", "app", "p1", name, reason, start_time)


def tasks(settings: AppSettings = PUSH_APP) -> PushTasks:
    return PushTasks("vh", "app", settings)


def task() -> PushTask:
    return PushTask(PushStatus.created(CREATED))


# -- the app's set --
def test_start_push_creates_the_task_from_the_body() -> None:
    given(tasks()).when(CreatePush(BODY), now=10.0).then(CREATED)


def test_duplicate_id_is_a_conflict_until_the_task_is_removed() -> None:
    outcome = given(tasks(), CREATED).when(CreatePush(BODY)).refused(Conflict, "Duplicate ID")
    outcome.when(RemovePush({"id": "p1"})).then(PushRemoved("vh", "app", "p1"))
    given(outcome.aggregate).when(CreatePush(BODY), now=11.0).then(PushCreated.of(SPEC, 11.0))


def test_stop_unknown_id_is_not_found() -> None:
    given(tasks()).when(RemovePush({"id": "zz"})).refused(NotFound, "Could not find id 'zz': [vh/app]")
    given(tasks()).when(RemovePush({})).refused(Invalid, "There is no required parameter [ id]")


def test_without_the_push_publisher_the_app_is_not_found_after_the_protocol_check() -> None:
    bare = AppSettings.parse({})
    given(tasks(bare)).when(CreatePush({"protocol": "hls"})).refused(Invalid, "Could not find protocol 'hls': [vh/app]")
    given(tasks(bare)).when(CreatePush(BODY)).refused(NotFound, "Could not find application: [vh/app]")
    given(tasks(bare), CREATED).when(RemovePush({"id": "p1"})).refused(NotFound, "Could not find id 'p1': [vh/app]")


@pytest.mark.parametrize("body, text", [
    ({"protocol": "srt", "id": "x", "stream": {"name": "s"}, "url": "srt://h:1?mode=listener"},
     "Unsupported connection mode"),
    ({"protocol": "mpegts", "id": "x", "stream": {"name": "s"}, "url": "tcp://h:1?listen"}, "Unsupported tcp listen"),
    ({"protocol": "rtmp", "id": "", "stream": {}, "url": 5}, "There is no required parameter [ id stream.name url]"),
    ({"protocol": "rtmp", "id": "x", "stream": {"name": "s"}, "url": "rtmp://h:70000/a"}, "Could not parse url"),
])
def test_refusals_carry_omes_texts(body: dict[str, Any], text: str) -> None:
    given(tasks()).when(CreatePush(body)).refused(Invalid, text)


# -- one task's sessions --
def test_a_session_connects_then_pushes() -> None:
    outcome = given(task(), CREATED).when(OutputAttached()).then(PushAttempts())
    outcome = outcome.when(SessionConnecting(), now=20.0).then(state("connecting", "", 20.0))
    outcome.when(SessionPushing(), now=21.0).then(state("pushing"), PushAttempts(pushing_since=21.0))
    assert outcome.aggregate.status.state == "pushing" and outcome.aggregate.status.start_time == 20.0


def test_a_session_that_leaves_a_track_out_pushes_with_the_warning_as_its_reason() -> None:
    outcome = given(task(), CREATED).when(OutputAttached()).when(SessionConnecting(), now=20.0)
    warning = "track 0 (bypass_video) is VP8, which rtmp cannot carry"
    outcome.when(SessionPushing(warning), now=21.0).then(state("pushing", warning), PushAttempts(pushing_since=21.0))
    assert outcome.aggregate.status.reason == warning


def test_refused_attempts_back_off_doubling_up_to_four_seconds() -> None:
    agg = task()
    delays = []
    for n in range(1, 7):
        events = given(agg).when(SessionFailed("refused"), now=100.0 + n).events
        delays += [e.seconds for e in events if isinstance(e, RetryAfter)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_repeated_failure_goes_quiet_after_three_attempts_but_keeps_retrying() -> None:
    outcome = given(task()).when(SessionConnecting(), now=1.0).then(state("connecting", "", 1.0))
    for n in range(1, 4):
        outcome = outcome.when(SessionFailed("refused"), now=float(n)).then(
            state("error", "refused"), PushAttempts(n, n, None, "refused"), RetryAfter(min(4.0, 0.5 * 2 ** (n - 1))))
    outcome = outcome.when(SessionConnecting(), now=5.0).then()  # quiet: the journal already says error
    outcome = outcome.when(SessionFailed("refused"), now=6.0).then(PushAttempts(4, 4, None, "refused"),
                                                                    RetryAfter(4.0))
    # a new reason is journaled again, and so is success
    outcome = outcome.when(SessionFailed("timeout"), now=7.0).then(
        state("error", "timeout"), PushAttempts(5, 5, None, "timeout"), RetryAfter(4.0))
    outcome.when(SessionPushing(), now=8.0).then(state("pushing"), PushAttempts(0, 5, 8.0, ""))


def test_a_session_failing_soon_after_pushing_is_a_flap_and_backs_off() -> None:
    outcome = given(task())
    delays = []
    for n in range(5):  # each session pushes for a second, then the destination drops it
        failed = outcome.when(SessionPushing(), now=10.0 * n).when(SessionFailed("reset"), now=10.0 * n + 1.0)
        delays += [e.seconds for e in failed.events if isinstance(e, RetryAfter)]
        outcome = failed
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert outcome.aggregate.attempts.flaps == 5


def test_a_session_that_pushed_long_enough_resets_the_flaps() -> None:
    agg = task()
    given(agg).when(SessionPushing(), now=0.0).when(SessionFailed("reset"), now=1.0)  # a flap
    outcome = given(agg).when(SessionPushing(), now=2.0).when(SessionFailed("reset"), now=7.0)
    assert outcome.events[-2:] == [PushAttempts(1, 0, None, "reset"), RetryAfter(0.5)]


def test_no_tracks_is_an_error_without_retry() -> None:
    given(task()).when(NoTracks("no video track")).then(state("error", "no video track"), PushAttempts(failures=1))


def test_output_attached_starts_attempts_afresh() -> None:
    outcome = given(task())
    for n in range(4):
        outcome = outcome.when(SessionFailed("refused"), now=float(n)).when(SessionConnecting(), now=float(n))
    assert outcome.events == []  # quiet
    outcome.when(OutputAttached()).then(PushAttempts()).when(SessionConnecting(), now=9.0).then(
        state("connecting", "", 9.0))


def test_stream_gone_ends_the_session_sequence_plus_one_and_ready() -> None:
    ended = PushSessionEnded("vh", "app", "p1", 1000, 2000, "stream ended")
    outcome = given(task(), CREATED, state("pushing")).when(OutputDetached("stream ended", True, 1000, 2000)).then(
        ended, state("ready", "stream ended", 0.0))
    status = outcome.aggregate.status
    assert (status.sequence, status.total_sent_bytes, status.total_sent_time_ms, status.state) == (1, 1000, 2000,
                                                                                                   "ready")


def test_stream_gone_without_a_session_keeps_the_sequence() -> None:
    outcome = given(task()).when(OutputDetached("stream ended", False)).then(state("ready", "stream ended", 0.0))
    assert outcome.aggregate.status.sequence == 0


def test_status_restores_from_old_flat_snapshots() -> None:
    status = PushStatus.created(CREATED)
    status.fold(state("error", "refused"))
    flat = {**{k: v for k, v in status.snapshot()["spec"].items()},
            **{k: v for k, v in status.snapshot().items() if k != "spec"}}
    assert PushStatus.restore(flat) == status
    assert PushStatus.restore(status.snapshot()) == status


def test_a_journaled_push_created_payload_replays_into_the_same_spec() -> None:
    stored = {"vhost": "vh", "app": "app", "id": "p1", "stream_name": "cam", "variant_names": ["v"],
              "track_ids": [1], "protocol": "rtmp", "url": "rtmp://h/live", "stream_key": "k", "created_time": 10.0}
    replayed = decode_event("PushCreated", 1, stored)
    assert replayed == CREATED and replayed.payload() == stored
    assert isinstance(replayed, PushCreated) and replayed.spec == SPEC

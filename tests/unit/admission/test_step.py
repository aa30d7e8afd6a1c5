"""The admission step: order, first denial wins, leases combine, failures deny, the audit hears."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from typing import Any

from kiln.admission.audit import JournalAudit
from kiln.admission.contract import LONGEST_LEASE_MS, AdmissionRequest, Direction, Verdict
from kiln.admission.step import AdmissionStep, admit_from_thread
from kiln.events.admission import AdmissionAllowed, AdmissionDenied

NOW = 1_700_000_000_000
REQ = AdmissionRequest("RTMP", Direction.INCOMING, "rtmp://h:1935/app/s?policy=P&signature=S", ("10.0.0.9", 4000),
                       "default", "app", "s")


class Fixed:
    def __init__(self, name: str, verdict: Verdict | Exception) -> None:
        self.name = name
        self.verdict = verdict
        self.seen: list[AdmissionRequest] = []
        self.closed_seen: list[AdmissionRequest] = []

    async def check(self, request: AdmissionRequest) -> Verdict:
        self.seen.append(request)
        if isinstance(self.verdict, Exception):
            raise self.verdict
        return self.verdict

    async def closed(self, request: AdmissionRequest) -> None:
        self.closed_seen.append(request)


class Events:
    def __init__(self) -> None:
        self.emitted: list[Any] = []

    def emit(self, events: Any) -> Future[Any]:
        self.emitted.extend(events)
        done: Future[Any] = Future()
        done.set_result([])
        return done


def step(*checks: Fixed, events: Events | None = None) -> AdmissionStep:
    return AdmissionStep(list(checks), JournalAudit(events or Events()), clock=lambda: NOW / 1000)


def test_no_checks_allow_without_deadline() -> None:
    result = asyncio.run(step().admit(REQ))
    assert result.allowed and result.deadline_ms is None


def test_first_denial_wins_and_later_checks_are_not_asked() -> None:
    events = Events()
    later = Fixed("Later", Verdict.allow())
    result = asyncio.run(step(Fixed("SignedPolicy", Verdict.deny("bad", secrets=("policy", "signature"))), later,
                              events=events).admit(REQ))
    assert (result.allowed, result.reason, result.rule) == (False, "bad", "SignedPolicy")
    assert later.seen == []
    [ev] = events.emitted
    assert isinstance(ev, AdmissionDenied)
    assert ev.url == "rtmp://h:1935/app/s?policy=***&signature=***"
    assert (ev.client, ev.rule, ev.reason, ev.protocol, ev.direction) == ("10.0.0.9:4000", "SignedPolicy", "bad",
                                                                          "RTMP", "incoming")


def test_earliest_of_stream_expire_and_lifetime_is_the_deadline() -> None:
    result = asyncio.run(step(Fixed("A", Verdict(True, stream_expire_ms=NOW + 5000)),
                              Fixed("B", Verdict(True, lifetime_ms=3000))).admit(REQ))
    assert result.deadline_ms == NOW + 3000 and result.seconds_left(NOW) == 3.0
    assert not result.expired(NOW + 2999) and result.expired(NOW + 3000)


def test_a_deadline_centuries_away_is_a_wait_a_timer_thread_can_keep() -> None:
    """A signed stream_expire of 10**30 ms: the SRT ingest's and playback's threading.Timer died with 'OverflowError:
    timestamp out of range for platform time_t' in its thread (a traceback per session)."""
    result = asyncio.run(step(Fixed("A", Verdict(True, stream_expire_ms=10**30))).admit(REQ))
    left = result.seconds_left(NOW)
    assert left == LONGEST_LEASE_MS / 1000 and not result.expired(NOW)
    failures: list[BaseException | None] = []
    hook, threading.excepthook = threading.excepthook, lambda args: failures.append(args.exc_value)
    try:
        timer = threading.Timer(left, lambda: None)  # as kiln/media/ingest/srt/ingest.py arms its lease
        timer.start()
        time.sleep(0.05)
        timer.cancel()
        timer.join(5)
    finally:
        threading.excepthook = hook
    assert failures == []


def test_redirect_is_passed_on_and_recorded_allows_are_journaled() -> None:
    events = Events()
    second = Fixed("B", Verdict.allow())
    result = asyncio.run(step(Fixed("A", Verdict(True, new_url="rtmp://h:1935/app/t", record=True)), second,
                              events=events).admit(REQ))
    assert result.new_url == "rtmp://h:1935/app/t" and second.seen[0].url == "rtmp://h:1935/app/t"
    [ev] = events.emitted
    assert isinstance(ev, AdmissionAllowed) and ev.new_url == "rtmp://h:1935/app/t"


def test_a_failing_check_denies() -> None:
    result = asyncio.run(step(Fixed("Hook", RuntimeError("boom"))).admit(REQ))
    assert not result.allowed and result.reason == "Hook failed: boom" and result.rule == "Hook"


def test_closed_reaches_every_check_even_after_one_fails() -> None:
    a, b = Fixed("A", Verdict.allow()), Fixed("B", Verdict.allow())

    async def broken(request: AdmissionRequest) -> None:
        raise RuntimeError("down")

    a.closed = broken  # type: ignore[method-assign]
    asyncio.run(step(a, b).closed(REQ))
    assert b.closed_seen == [REQ]


def test_admit_from_thread_runs_on_the_loop_and_a_gone_loop_denies() -> None:
    loop = asyncio.new_event_loop()
    try:
        runner = step(Fixed("A", Verdict.allow()))
        thread = threading.Thread(target=loop.run_forever)
        thread.start()
        try:
            assert admit_from_thread(runner, loop, REQ, 5).allowed
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
    finally:
        loop.close()
    assert admit_from_thread(runner, loop, REQ, 5).reason == "server shutting down"


def test_admission_events_replay_from_their_stored_parts() -> None:
    from kiln.events.base import decode_event

    events = Events()
    asyncio.run(step(Fixed("SignedPolicy", Verdict.deny("bad", secrets=("signature",))), events=events).admit(REQ))
    [ev] = events.emitted
    assert decode_event(ev.TYPE, ev.VERSION, ev.payload()) == ev
    assert ev.entity == "admission:default/app/s"

"""CallerAdmission: an SRT playback caller's admission, asked from a session thread against a loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from kiln.admission.contract import Admission, AdmissionRequest, Direction
from kiln.media.publish.srt.admission import LEASE_EXPIRED, CallerAdmission

REQUEST = AdmissionRequest("SRT", Direction.OUTGOING, "srt://default/app/cam", ("127.0.0.1", 5000),
                           "default", "app", "cam")


class Recorder:
    def __init__(self, answer: Admission) -> None:
        self.answer = answer
        self.asked: list[AdmissionRequest] = []
        self.closed_calls: list[AdmissionRequest] = []

    async def admit(self, request: AdmissionRequest) -> Admission:
        self.asked.append(request)
        return self.answer

    async def closed(self, request: AdmissionRequest) -> None:
        self.closed_calls.append(request)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def settle(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(5)


def test_a_refused_caller_gets_the_reason_and_no_closing_call(loop: asyncio.AbstractEventLoop) -> None:
    admitter = Recorder(Admission(False, "no signature in the URL", "SignedPolicy"))
    cuts: list[str] = []
    caller = CallerAdmission(admitter, loop, REQUEST, cuts.append)
    assert caller.ask() == "access denied: no signature in the URL"
    caller.ended()
    settle(loop)
    assert (admitter.asked, admitter.closed_calls, cuts) == ([REQUEST], [], [])


def test_an_admitted_caller_is_closed_once(loop: asyncio.AbstractEventLoop) -> None:
    admitter = Recorder(Admission(True))
    caller = CallerAdmission(admitter, loop, REQUEST, lambda reason: None)
    assert caller.ask() is None
    caller.ended()
    caller.ended()
    settle(loop)
    assert admitter.closed_calls == [REQUEST]


def test_a_lease_cuts_the_caller_when_it_passes(loop: asyncio.AbstractEventLoop) -> None:
    admitter = Recorder(Admission(True, deadline_ms=int(time.time() * 1000) + 150))
    cut = threading.Event()
    reasons: list[str] = []
    caller = CallerAdmission(admitter, loop, REQUEST, lambda reason: (reasons.append(reason), cut.set()))
    assert caller.ask() is None
    assert cut.wait(5)
    assert reasons == [LEASE_EXPIRED]
    caller.ended()
    settle(loop)
    assert admitter.closed_calls == [REQUEST]


def test_a_caller_that_left_cancels_its_lease(loop: asyncio.AbstractEventLoop) -> None:
    admitter = Recorder(Admission(True, deadline_ms=int(time.time() * 1000) + 200))
    reasons: list[str] = []
    caller = CallerAdmission(admitter, loop, REQUEST, reasons.append)
    assert caller.ask() is None
    caller.ended()
    time.sleep(0.4)
    assert reasons == []


def test_a_caller_gone_during_the_check_is_not_served_but_still_closed(loop: asyncio.AbstractEventLoop) -> None:
    admitter = Recorder(Admission(True))
    caller = CallerAdmission(admitter, loop, REQUEST, lambda reason: None)
    caller.ended()  # the listener let go before the session thread asked
    assert caller.ask() == "caller left"
    settle(loop)
    assert admitter.closed_calls == [REQUEST]

"""Closing notifications in the background: sent from the loop or a thread, kept until done, drained at
shutdown within a bound, and never a coroutine left unawaited or a task collected mid-flight."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import warnings

import pytest

from kiln.admission.closing import closing_in_flight, drain_closing, notify_closed
from kiln.admission.contract import Admission, AdmissionRequest, Direction

REQ = AdmissionRequest("SRT", Direction.INCOMING, "srt://h:9999/app/s", ("10.0.0.9", 4000), "default", "app", "s")


class Control:
    """An admitter whose closing notification takes ``delay_s`` (a webhook's round trip)."""

    def __init__(self, delay_s: float = 0.05, error: Exception | None = None) -> None:
        self.delay_s = delay_s
        self.error = error
        self.closed_seen: list[AdmissionRequest] = []

    async def admit(self, request: AdmissionRequest) -> Admission:
        return Admission(True)

    async def closed(self, request: AdmissionRequest) -> None:
        await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        self.closed_seen.append(request)


def test_a_notification_sent_from_a_thread_as_the_server_stops_is_delivered_before_the_loop_ends() -> None:
    control = Control()

    async def stopping_server() -> None:
        loop = asyncio.get_running_loop()
        caller = threading.Thread(target=notify_closed, args=(control, REQ, loop))  # libsrt's thread
        caller.start()
        await asyncio.to_thread(caller.join)
        await drain_closing()

    asyncio.run(stopping_server())
    assert control.closed_seen == [REQ]


def test_a_notification_whose_task_nobody_holds_survives_a_garbage_collection() -> None:
    control = Control(delay_s=0.05)

    async def main() -> int:
        notify_closed(control, REQ)
        await asyncio.sleep(0)
        gc.collect()
        in_flight = closing_in_flight(asyncio.get_running_loop())
        await drain_closing()
        return in_flight

    assert asyncio.run(main()) == 1
    assert control.closed_seen == [REQ]


def test_a_control_server_slower_than_the_drain_is_cancelled_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    control = Control(delay_s=30)

    async def main() -> float:
        notify_closed(control, REQ)
        started = time.monotonic()
        await drain_closing(timeout_s=0.2)
        return time.monotonic() - started

    with caplog.at_level(logging.WARNING, logger="kiln.admission.closing"):
        waited = asyncio.run(main())
    assert 0.2 <= waited < 5
    assert control.closed_seen == []
    assert "not delivered before shutdown count=1" in caplog.text


def test_a_loop_already_closed_is_logged_and_leaves_no_coroutine_unawaited(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would be a RuntimeWarning
        with caplog.at_level(logging.WARNING, logger="kiln.admission.closing"):
            notify_closed(Control(), REQ, loop)
            gc.collect()
    assert "admission closing notification not sent protocol=SRT stream=default/app/s" in caplog.text


def test_a_failing_notification_is_logged_and_does_not_stop_the_drain(caplog: pytest.LogCaptureFixture) -> None:
    failing, fine = Control(error=RuntimeError("control server gone")), Control(delay_s=0.1)

    async def main() -> None:
        notify_closed(failing, REQ)
        notify_closed(fine, REQ)
        await drain_closing()

    with caplog.at_level(logging.ERROR, logger="kiln.admission.closing"):
        asyncio.run(main())
    assert fine.closed_seen == [REQ]
    assert "admission closing notification failed error=RuntimeError('control server gone')" in caplog.text

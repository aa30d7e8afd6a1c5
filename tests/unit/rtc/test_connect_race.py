"""A session closed while aiortc connects: one log line, not "Task exception was never retrieved".

The only place aiortc raises "RTCIceTransport is closed" is ``RTCIceTransport.start``, called only from
``RTCPeerConnection.__connect``, a task nobody awaits. The race (Kiln closing a session between two of
that task's awaits) is timing-bound, so the tests run a coroutine of the same name and failure instead.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest
from aiortc import RTCPeerConnection as AiortcPeerConnection
from aiortc.exceptions import InvalidStateError

from kiln.media.rtc.connect_race import CONNECT_TASK, quiet_closed_connects


class RTCPeerConnection:
    """Stands in for aiortc's class: its connect coroutine has the same qualified name."""

    async def __connect(self) -> None:
        raise InvalidStateError("RTCIceTransport is closed")

    def start(self) -> None:
        asyncio.ensure_future(self.__connect())  # as aiortc's setRemoteDescription does


async def _failed_connect_collected() -> None:
    RTCPeerConnection().start()
    for _ in range(5):
        await asyncio.sleep(0)
    gc.collect()  # a failed task nobody awaited is reported when it is collected


def test_aiortc_still_has_the_connect_coroutine_and_the_error_the_handler_recognises() -> None:
    assert AiortcPeerConnection._RTCPeerConnection__connect.__qualname__ == CONNECT_TASK  # type: ignore[attr-defined]
    assert RTCPeerConnection._RTCPeerConnection__connect.__qualname__ == CONNECT_TASK  # type: ignore[attr-defined]


def test_a_connect_that_finds_its_ice_closed_is_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    reported: list[dict[str, Any]] = []

    async def run() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        quiet_closed_connects(loop)
        await _failed_connect_collected()
        loop.call_exception_handler({"message": "something else", "exception": ValueError("x")})

    with caplog.at_level(logging.INFO, logger="kiln.media.rtc.connect_race"):
        asyncio.run(run())
    assert "webrtc connect abandoned" in caplog.text and "RTCIceTransport is closed" in caplog.text
    assert [c["message"] for c in reported] == ["something else"], "other errors reach the previous handler"


def test_without_the_handler_asyncio_reports_the_task_as_never_retrieved() -> None:
    reported: list[dict[str, Any]] = []

    async def run() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
        await _failed_connect_collected()

    asyncio.run(run())
    assert [c["message"] for c in reported] == ["Task exception was never retrieved"]

"""aiortc's connect task, when Kiln closes a session while ICE is still starting.

``RTCPeerConnection.setRemoteDescription`` starts ``__connect`` as a task nobody awaits. When Kiln
closes the session first (a viewer that never finishes ICE, at its connect deadline), the task fails
with ``InvalidStateError: RTCIceTransport is closed`` and asyncio prints "Task exception was never
retrieved" with a traceback, although nothing went wrong: the session was closed on purpose. The event
loop's exception handler turns exactly that case into one log line; everything else reaches the
previous handler unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiortc.exceptions import InvalidStateError

log = logging.getLogger(__name__)

CONNECT_TASK = "RTCPeerConnection.__connect"  # aiortc's private coroutine (tests check it still exists)


def _is_closed_connect(context: dict[str, Any]) -> bool:
    task = context.get("future")
    if not isinstance(context.get("exception"), InvalidStateError) or not isinstance(task, asyncio.Task):
        return False
    return getattr(task.get_coro(), "__qualname__", "") == CONNECT_TASK


def quiet_closed_connects(loop: asyncio.AbstractEventLoop) -> None:
    """Install the handler on ``loop`` (once, at startup)."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if _is_closed_connect(context):
            log.info("webrtc connect abandoned: the session closed while aiortc was connecting error=%s",
                     context["exception"])
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)

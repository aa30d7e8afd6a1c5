"""Admission's "closing" notifications, sent in the background and waited for when the server stops.

Every admitted session that ends tells its admitter (a webhook's ``"status": "closing"``, OME's
AdmissionWebhooks). Sessions end on the event loop (RTMP, WebRTC, LL-HLS) or on their own threads (SRT
ingest and playback); either way the notification runs on the loop. Each loop's notifications still on
their way are held here, by loop: the loop itself keeps only weak references to tasks, and at shutdown
the media plane drains them after its ingests and players closed, so the sessions that shutdown itself
ended are reported too (before, a task could be collected mid-flight, or cancelled with the loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import weakref

from kiln.admission.contract import AdmissionRequest, Admitter

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 5.0
"""How long a stopping server waits for notifications on their way (a webhook's own is 0.5 s)."""

_Pending = asyncio.Future[None] | concurrent.futures.Future[None]


class _LoopNotices:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: set[_Pending] = set()

    def done(self, pending: _Pending) -> None:
        with self.lock:
            self.pending.discard(pending)
        if not pending.cancelled() and pending.exception() is not None:
            log.error("admission closing notification failed error=%r", pending.exception())


_NOTICES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopNotices] = weakref.WeakKeyDictionary()
_NOTICES_LOCK = threading.Lock()


def _notices(loop: asyncio.AbstractEventLoop) -> _LoopNotices:
    with _NOTICES_LOCK:
        notices = _NOTICES.get(loop)
        if notices is None:
            notices = _NOTICES[loop] = _LoopNotices()
        return notices


def notify_closed(admitter: Admitter, request: AdmissionRequest,
                  loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Tell ``admitter`` that ``request``'s session ended, in the background. On the loop ``loop`` may be
    omitted; from another thread it names the loop to run on. A loop that is closed cannot run it: logged."""
    coro = admitter.closed(request)
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    pending: _Pending
    try:
        if running is not None and (loop is None or loop is running):
            loop = running
            pending = running.create_task(coro)
        elif loop is not None:
            pending = asyncio.run_coroutine_threadsafe(coro, loop)
        else:
            raise RuntimeError("no event loop to run on")
    except RuntimeError as exc:
        coro.close()
        log.warning("admission closing notification not sent protocol=%s stream=%s/%s/%s reason=%s",
                    request.protocol, request.vhost, request.app, request.stream, exc)
        return
    notices = _notices(loop)
    with notices.lock:
        notices.pending.add(pending)
    pending.add_done_callback(notices.done)


def closing_in_flight(loop: asyncio.AbstractEventLoop) -> int:
    """Notifications sent on ``loop`` and not yet done."""
    notices = _notices(loop)
    with notices.lock:
        return len(notices.pending)


async def drain_closing(timeout_s: float = DRAIN_TIMEOUT_S) -> None:
    """Wait for every notification sent on this loop so far, at most ``timeout_s``; the late are cancelled
    and counted in a warning."""
    notices = _notices(asyncio.get_running_loop())
    with notices.lock:
        pending = list(notices.pending)
    if not pending:
        return
    waits = [p if isinstance(p, asyncio.Future) else asyncio.wrap_future(p) for p in pending]
    done, late = await asyncio.wait(waits, timeout=timeout_s)
    for future in late:
        future.cancel()
    if late:
        log.warning("admission closing notifications not delivered before shutdown count=%d timeout_s=%.1f",
                    len(late), timeout_s)
    log.info("admission closing notifications drained delivered=%d", len(done))

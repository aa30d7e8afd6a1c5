"""What the stream supervisor does to a live stream's LL-HLS output: inject ID3 events, conclude.

LL-HLS streams live on the asyncio loop. Checks and effects hop there and return a future at once:
nobody waits, neither the loop nor the calling actor. The supervisor checks, journals what passed,
and only then starts the effect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from kiln.media.model import MediaKind
from kiln.media.publish.llhls.events import StreamEvent
from kiln.media.publish.llhls.publisher import LlhlsPublisher
from kiln.media.publish.llhls.stream import LlhlsStream
from kiln.media.stream.live import LiveStream
from kiln.timefmt import now

log = logging.getLogger(__name__)

T = TypeVar("T")


def inject_failed_text(live: LiveStream, detail: str = "") -> str:
    return f"Internal Server Error - Could not inject event: [{live.vhost}/{live.app}/{live.name}]{detail}"


def _takes(event_type: str, kind: MediaKind) -> bool:
    """Which packagers an event goes to (as ``LlhlsStream.add_event`` chooses them)."""
    return event_type == "event" or (event_type == "video" and kind is MediaKind.VIDEO) or (
        event_type == "audio" and kind is MediaKind.AUDIO)


class LlhlsControl:
    def __init__(self, publisher: LlhlsPublisher) -> None:
        self.publisher = publisher

    # -- checks (answered from the loop) --
    def event_refusal(self, live: LiveStream, event: StreamEvent) -> Future[str | None]:
        """OME's 500 text if ``event`` cannot be injected into ``live`` now, else None."""
        if event.event_format != "id3v2":
            refused: Future[str | None] = Future()
            refused.set_result(inject_failed_text(live, f" ({event.event_format} markers are not supported)"))
            return refused

        def taken() -> int:
            if not live.started:
                return 0
            return sum(_takes(event.event_type, pkg.track.kind)
                       for target in self._targets(live, open_only=True) for pkg in target.packagers.values())

        return self._once_started(live, lambda: None if taken() > 0 else inject_failed_text(live))

    def can_conclude(self, live: LiveStream) -> Future[bool]:
        return self._once_started(live, lambda: bool(self._targets(live, open_only=False)))

    # -- effects (return at once; the work happens on the loop) --
    def inject(self, live: LiveStream, event: StreamEvent) -> Future[int]:
        def run() -> int:
            time_ms = int(live.last_packet_pts_ms + max(0.0, now() - live.last_packet_wall) * 1000)
            taken = sum(t.add_event(event.event_type, time_ms, event.tag) for t in self._targets(live, open_only=True))
            log.info("llhls event injected vhost=%s app=%s stream=%s type=%s time_ms=%d packagers=%d", live.vhost,
                     live.app, live.name, event.event_type, time_ms, taken)
            return taken

        return self._on_loop(run)

    def conclude(self, live: LiveStream) -> Future[int]:
        def run() -> int:
            targets = self._targets(live, open_only=False)
            for target in targets:
                target.conclude()
            log.info("llhls concluded vhost=%s app=%s stream=%s outputs=%d", live.vhost, live.app, live.name,
                     len(targets))
            return len(targets)

        return self._on_loop(run)

    # -- loop side --
    def _targets(self, live: LiveStream, *, open_only: bool) -> list[LlhlsStream]:
        found = [self.publisher.find(live.vhost, live.app, name) for name in list(live.outputs)]
        return [t for t in found if t is not None and t.live is live and not (open_only and t.concluded)]

    def _once_started(self, live: LiveStream, fn: Callable[[], T]) -> Future[T]:
        """``fn`` on the loop once ``live`` has reached the publisher (bounded: ``until_started``). The API lists
        a stream's outputs a moment before its actor tells the publishers, and a client that sends an event or
        concludes as soon as it sees them must not be told the stream has no LL-HLS output."""
        loop, publisher = self.publisher.loop, self.publisher
        if loop is None or (_running_loop() is loop and live.key not in publisher.pending):
            return self._on_loop(fn)

        async def call() -> T:
            await publisher.until_started(live.vhost, live.app, live.name)
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop)

    def _on_loop(self, fn: Callable[[], T]) -> Future[T]:
        loop = self.publisher.loop
        if loop is None or _running_loop() is loop:  # no loop yet: nothing is published, nothing to race
            done: Future[T] = Future()
            try:
                done.set_result(fn())
            except Exception as exc:
                done.set_exception(exc)
            return done

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None

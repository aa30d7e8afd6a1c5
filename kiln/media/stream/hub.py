"""Per-stream fan-out: one producer hands packets to many consumers without ever waiting on them.

``publish`` never blocks and never raises because of a consumer. Each subscriber owns a bounded
queue; when a consumer falls behind, its policy decides: ``drop`` removes the subscriber (it is
told why and the drop is counted and logged as a warning), ``skip`` discards queued packets and
resumes at the next video keyframe. A consumer that ends its own subscription (``:stopRecord``, a
push stopped) is not a drop: it is removed and logged at INFO. A new subscriber can start at the
last keyframe from the GOP cache.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from kiln.media.model import MediaKind, Packet, Track
from kiln.metrics.queue import QueueCounters

log = logging.getLogger(__name__)

MAX_GOP_PACKETS = 2000
MAX_GOP_BYTES = 32 << 20
SLOW_CONSUMER = "slow consumer"
SUBSCRIBER_ERROR = "subscriber error"
DROP_REASONS = frozenset({SLOW_CONSUMER, SUBSCRIBER_ERROR})  # the hub removed it; any other reason: it left


class Subscriber:
    """A bounded queue a consumer thread reads from with ``get``."""

    def __init__(self, name: str, *, max_packets: int = 1500, policy: str = "drop",
                 video_track_ids: frozenset[int] = frozenset()) -> None:
        if policy not in ("drop", "skip"):
            raise ValueError("policy must be 'drop' or 'skip'")
        self.name = name
        self.max_packets = max_packets
        self.policy = policy
        self.video_track_ids = video_track_ids
        self.stats = QueueCounters()
        self.closed_reason: str | None = None
        self._queue: deque[Packet] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._waiting_key = False
        self.hub: StreamHub | None = None

    # -- producer side (hub) --
    def offer(self, packet: Packet) -> bool:
        """Queue a packet; False when the subscriber must be removed from the hub."""
        with self._cond:
            if self.closed_reason is not None:
                return False
            if self._waiting_key:
                if not (packet.keyframe and packet.track_id in self.video_track_ids):
                    self.stats.dropped_packets += 1
                    return True
                self._waiting_key = False
            if len(self._queue) >= self.max_packets:
                if self.policy == "drop":
                    self.closed_reason = SLOW_CONSUMER
                    self.stats.dropped_packets += len(self._queue) + 1
                    self._queue.clear()
                    self._cond.notify_all()
                    return False
                self.stats.skips += 1
                self.stats.dropped_packets += len(self._queue)
                self._queue.clear()
                self._waiting_key = bool(self.video_track_ids)
                if self._waiting_key:  # the overflowing packet is discarded too, unless it is the keyframe
                    self.stats.dropped_packets += 1
                else:  # nothing to wait for: the overflowing packet starts the new queue
                    self._queue.append(packet)
                return True
            self._queue.append(packet)
            if len(self._queue) > self.stats.peak:
                self.stats.peak = len(self._queue)
            self._cond.notify()
            return True

    def end(self, reason: str) -> None:
        with self._cond:
            if self.closed_reason is None:
                self.closed_reason = reason
            self._cond.notify_all()

    # -- consumer side --
    def get(self, timeout: float | None = None) -> Packet | None:
        """The next packet, or None on timeout or when the subscription ended and is drained."""
        with self._cond:
            if not self._queue and self.closed_reason is None:
                self._cond.wait(timeout)
            if self._queue:
                self.stats.delivered += 1
                return self._queue.popleft()
            return None

    def drain(self) -> list[Packet]:
        with self._cond:
            items = list(self._queue)
            self._queue.clear()
            self.stats.delivered += len(items)
            return items

    @property
    def ended(self) -> bool:
        with self._cond:
            return self.closed_reason is not None and not self._queue

    def __len__(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        """Consumer-side unsubscribe."""
        if self.hub is not None:
            self.hub.unsubscribe(self)
        self.end("unsubscribed")


@dataclass
class CallbackSubscriber:
    """Runs a cheap callback inline on the producer's thread (e.g. scheduling work on a loop).

    The callback must not block; an exception removes the subscriber, never the producer.
    """

    name: str
    callback: Callable[[Packet], None]
    on_end: Callable[[str], None] | None = None
    stats: QueueCounters = field(default_factory=QueueCounters)
    closed_reason: str | None = None
    hub: StreamHub | None = None

    def offer(self, packet: Packet) -> bool:
        if self.closed_reason is not None:
            return False
        try:
            self.callback(packet)
        except Exception:
            log.exception("hub subscriber failed name=%s; removing it", self.name)
            self.closed_reason = SUBSCRIBER_ERROR
            return False
        self.stats.delivered += 1
        return True

    def end(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            if self.on_end is not None:
                try:
                    self.on_end(reason)
                except Exception:
                    log.exception("hub subscriber end callback failed name=%s", self.name)

    def close(self) -> None:
        if self.hub is not None:
            self.hub.unsubscribe(self)
        self.end("unsubscribed")


class StreamHub:
    """Fan-out for one stream (an input stream or one output stream)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tracks: dict[int, Track] = {}
        self._subscribers: tuple[Subscriber | CallbackSubscriber, ...] = ()
        self._lock = threading.Lock()
        self._gop: list[Packet] = []
        self._gop_bytes = 0
        self.closed_reason: str | None = None
        self.drops = 0
        self.packets = 0
        self.video_track_ids: frozenset[int] = frozenset()
        self._keep_gop = True

    @property
    def keep_gop(self) -> bool:
        """Whether packets are cached from the last keyframe on for late subscribers (off: they start live)."""
        return self._keep_gop

    @keep_gop.setter
    def keep_gop(self, keep: bool) -> None:
        with self._lock:
            self._keep_gop = keep
            if not keep:
                self._gop = []
                self._gop_bytes = 0

    def set_track(self, track: Track) -> None:
        self.tracks[track.id] = track
        self.video_track_ids = frozenset(t.id for t in self.tracks.values() if t.kind is MediaKind.VIDEO)

    def subscribe(self, sub: Subscriber | CallbackSubscriber, *, from_keyframe: bool = True) -> None:
        """Add a subscriber; with ``from_keyframe`` it first gets the GOP cache (last keyframe on)."""
        with self._lock:
            if self.closed_reason is not None:
                sub.end(self.closed_reason)
                return
            sub.hub = self
            if isinstance(sub, Subscriber) and not sub.video_track_ids:
                sub.video_track_ids = self.video_track_ids
            if from_keyframe:
                for packet in self._gop:
                    if not sub.offer(packet):
                        return
            self._subscribers = (*self._subscribers, sub)

    def gop_snapshot(self) -> list[Packet]:
        with self._lock:
            return list(self._gop)

    def unsubscribe(self, sub: Subscriber | CallbackSubscriber) -> None:
        with self._lock:
            self._subscribers = tuple(s for s in self._subscribers if s is not sub)

    @property
    def subscribers(self) -> tuple[Subscriber | CallbackSubscriber, ...]:
        return self._subscribers

    def publish(self, packet: Packet) -> None:
        self.packets += 1
        if self._keep_gop:
            # the GOP cache, inline (once per packet per hub): a keyframe starts it anew, anything else joins
            # it under the lock subscribe() replays it under, so no packet is seen twice or missed
            if packet.keyframe and (not self.video_track_ids or packet.track_id in self.video_track_ids):
                with self._lock:
                    if self.closed_reason is None:
                        self._gop = [packet]
                        self._gop_bytes = len(packet.data)
            elif self._gop:  # nothing cached yet (or the cache was cut): wait for the next keyframe
                with self._lock:
                    gop = self._gop
                    if gop:
                        gop.append(packet)
                        self._gop_bytes += len(packet.data)
                        if len(gop) > MAX_GOP_PACKETS or self._gop_bytes > MAX_GOP_BYTES:
                            self._gop = []
                            self._gop_bytes = 0
        subscribers = self._subscribers
        if not subscribers:
            return
        dead = None
        for sub in subscribers:
            if not sub.offer(packet):
                dead = [*(dead or []), sub]
        if dead:
            for sub in dead:
                self.unsubscribe(sub)
                reason = sub.closed_reason or "dropped"
                if reason in DROP_REASONS or sub.closed_reason is None:
                    self.drops += 1
                    log.warning("hub dropped subscriber hub=%s subscriber=%s reason=%s dropped_packets=%d",
                                self.name, sub.name, reason, sub.stats.dropped_packets)
                else:
                    log.info("hub subscriber left hub=%s subscriber=%s reason=%s", self.name, sub.name, reason)
                sub.end(reason)

    def close(self, reason: str) -> None:
        with self._lock:
            if self.closed_reason is not None:
                return
            self.closed_reason = reason
            subs, self._subscribers = self._subscribers, ()
            self._gop = []
        for sub in subs:
            sub.end(reason)

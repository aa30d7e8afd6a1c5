"""Taking another live stream's packets into a channel (multiplex channels, a scheduled channel's ``stream://`` items).

A :class:`HubTap` is a cheap callback on the source's output hub, run on the source's own thread: it relabels and
retimes each packet (:class:`Retimer`) and offers it to the channel's one bounded queue, which the channel's worker
thread drains. No actor is on the packet path; a hub never waits on a subscriber, so the channel cannot slow a
source; a channel that falls behind is dropped by its queue (``policy="drop"``: the queue ends as a slow consumer).
Closing the tap takes its callback off the source's hub.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

from kiln.media.model import Packet
from kiln.media.stream.hub import CallbackSubscriber, StreamHub, Subscriber

if TYPE_CHECKING:
    from kiln.media.stream.live import LiveStream

log = logging.getLogger(__name__)


class Outputs(Protocol):
    """Where a channel finds a source: the live stream that has an output of this name, and that output."""

    def find_output(self, vhost: str, app: str, output_name: str) -> tuple[LiveStream, Any] | None: ...

Begin = Callable[[Packet, Fraction], Fraction | None]
"""(the first packet, its time base) -> the offset in seconds that places the source on the channel's clock, or None
to drop the packet and ask again with the next one (e.g. to start at a keyframe)."""


class Retimer:
    """Relabels a source's tracks (``new_ids``) and moves all of them by one offset, set by the first packet
    ``begin`` accepts, so the source's tracks stay in sync with each other and its timestamps only go forward:
    a packet before the channel's zero, or not after its track's last one, is dropped. ``out_time_base``: the
    channel's time base the packets are rescaled to (None: each keeps its source track's)."""

    def __init__(self, new_ids: dict[int, int], time_bases: dict[int, Fraction], begin: Begin,
                 out_time_base: Fraction | None = None) -> None:
        self.new_ids = new_ids
        self.time_bases = time_bases
        self.begin = begin
        self.out_time_base = out_time_base
        self.offset_s: Fraction | None = None  # channel time - source time, set by the first packet begun with
        self._shifts: dict[int, int] = {}  # per source track: the offset in the track's time base
        self._last_dts: dict[int, int] = {}
        self._scales: dict[int, Fraction] = {}  # per source track: its time base over the channel's

    def __call__(self, packet: Packet) -> Packet | None:
        new_id = self.new_ids.get(packet.track_id)
        if new_id is None:
            return None
        tb = self.time_bases[packet.track_id]
        shift = self._shifts.get(packet.track_id)
        if shift is None:
            if self.offset_s is None:
                self.offset_s = self.begin(packet, tb)
                if self.offset_s is None:
                    return None
            shift = self._shifts[packet.track_id] = round(self.offset_s / tb)
        dts = packet.dts + shift
        if dts < 0 or dts <= self._last_dts.get(new_id, -1):
            return None  # before the channel's start, or not after the last one (a source's dts must go forward)
        self._last_dts[new_id] = dts
        pts, duration, out_tb = packet.pts + shift, packet.duration, tb
        if self.out_time_base is not None and self.out_time_base != tb:
            out_tb = self.out_time_base
            scale = self._scales.get(packet.track_id)
            if scale is None:
                scale = self._scales[packet.track_id] = tb / out_tb
            if scale.denominator == 1:  # e.g. 1/1000 -> 1/90000: plain int products on the source's thread
                n = scale.numerator
                dts, pts, duration = dts * n, pts * n, duration * n
            else:
                dts, pts, duration = round(dts * scale), round(pts * scale), round(duration * scale)
        return Packet(new_id, pts, dts, out_tb, packet.data, packet.keyframe, duration, packet.config, packet.arrival)


class HubTap:
    """One source's packets, retimed, into ``queue``; ``on_source_end(reason)`` when the source's hub closes."""

    def __init__(self, name: str, hub: StreamHub, retime: Callable[[Packet], Packet | None], queue: Subscriber,
                 on_source_end: Callable[[str], None]) -> None:
        self.name = name
        self.hub = hub
        self.retime = retime
        self.queue = queue
        self.on_source_end = on_source_end
        self._subscriber: CallbackSubscriber | None = None

    def open(self) -> None:
        """Subscribe: the hub's GOP cache (from its last keyframe) first, then live packets."""
        self._subscriber = CallbackSubscriber(self.name, self._offer, self._ended)
        self.hub.subscribe(self._subscriber)

    def _offer(self, packet: Packet) -> None:
        # on the source's thread, once per packet: cheap, never waits
        out = self.retime(packet)
        if out is not None:
            self.queue.offer(out)

    def _ended(self, reason: str) -> None:
        if reason != "unsubscribed":
            self.on_source_end(reason)

    def close(self) -> None:
        """Take the callback off the source's hub (idempotent)."""
        if self._subscriber is not None:
            self._subscriber.close()

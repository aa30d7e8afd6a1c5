"""Frames out of RTP packets: reordering, completion by marker bit, and giving up on losses.

aiortc hands every RTP packet (retransmissions already unwrapped, NACKs already sent) to this
buffer instead of its own. Packets are held by extended sequence number; a frame leaves when every
packet from the end of the previous frame to its marker (or to the next timestamp) is here. A hole
that NACK did not fill within ``max_wait_s`` (or that outgrows the buffer) is skipped: the frame it
broke is dropped and the next frame leaves flagged ``after_loss``, so video waits for a keyframe.
Nothing is decoded and nothing waits on a timer: the buffer moves when packets arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RtpIn:
    """The fields of one RTP packet that depacketizing needs."""

    sequence_number: int
    timestamp: int
    marker: bool
    payload: bytes
    arrival: float  # time.monotonic() when it arrived


@dataclass(slots=True)
class Frame:
    timestamp: int          # RTP timestamp (32 bits)
    payloads: list[bytes]
    arrival: float          # arrival of its last packet
    after_loss: bool = False


@dataclass(slots=True)
class BufferStats:
    packets: int = 0
    late: int = 0           # arrived after their frame had left or been skipped (or duplicates)
    skipped_gaps: int = 0   # holes given up on
    dropped_packets: int = 0


@dataclass
class FrameBuffer:
    """One SSRC's packets → frames in order. ``video`` frames span packets; audio packets are frames."""

    video: bool
    max_wait_s: float = 0.2
    capacity: int = 512
    stats: BufferStats = field(default_factory=BufferStats)
    _packets: dict[int, RtpIn] = field(default_factory=dict)
    _next: int | None = None          # extended sequence number the next frame starts at
    _highest: int | None = None
    _hole_since: float | None = None  # arrival time when the current hole was first waited on
    _lost: bool = False
    _started: bool = False            # a frame has left

    def _extend(self, seq: int) -> int:
        if self._highest is None:
            return seq
        base = self._highest & ~0xFFFF
        ext = base | seq
        if ext - self._highest > 0x8000:
            ext -= 0x10000
        elif self._highest - ext > 0x8000:
            ext += 0x10000
        return ext

    def push(self, packet: RtpIn) -> list[Frame]:
        """Add a packet; return the frames it completed (in order)."""
        self.stats.packets += 1
        ext = self._extend(packet.sequence_number)
        if self._next is None:
            self._next = ext
        elif ext < self._next and not self._started and self._next - ext < 64:
            self._next = ext  # the stream's first packets arrived out of order
        if ext < self._next or ext in self._packets:
            self.stats.late += 1
            return []
        if self._highest is None or ext > self._highest:
            self._highest = ext
        self._packets[ext] = packet
        out = self._drain()
        if out:
            self._hole_since = None
        if self._packets:  # stalled: a hole, or a frame whose packets are still arriving
            if self._hole_since is None:
                self._hole_since = packet.arrival
            elif packet.arrival - self._hole_since >= self.max_wait_s or len(self._packets) > self.capacity:
                self._skip_hole()
                out += self._drain()
                self._hole_since = packet.arrival if self._packets else None
        return out

    def _drain(self) -> list[Frame]:
        out: list[Frame] = []
        while True:
            frame = self._take_frame()
            if frame is None:
                return out
            out.append(frame)

    def _take_frame(self) -> Frame | None:
        start = self._next
        assert start is not None
        first = self._packets.get(start)
        if first is None:
            return None
        if not self.video:
            del self._packets[start]
            self._next = start + 1
            return self._frame(first.timestamp, [first])
        seq = start
        run: list[RtpIn] = []
        while True:
            pkt = self._packets.get(seq)
            if pkt is None:
                return None  # wait for the rest of this frame
            if pkt.timestamp != first.timestamp:
                break  # the next frame began: this one ended without its marker
            run.append(pkt)
            seq += 1
            if pkt.marker:
                break
        for s in range(start, seq):
            del self._packets[s]
        self._next = seq
        return self._frame(first.timestamp, run)

    def _frame(self, timestamp: int, run: list[RtpIn]) -> Frame:
        frame = Frame(timestamp, [p.payload for p in run], run[-1].arrival, self._lost)
        self._lost = False
        self._started = True
        return frame

    def _skip_hole(self) -> None:
        """Give up on the packets before the first one held; drop the frame the hole broke."""
        assert self._next is not None
        self.stats.skipped_gaps += 1
        self._lost = True
        resume = min(self._packets)
        if self.video:  # every held packet of the broken frame goes, across the hole(s) inside it
            broken = self._packets[resume].timestamp
            for seq in sorted(self._packets):
                if self._packets[seq].timestamp != broken:
                    break
                del self._packets[seq]
                self.stats.dropped_packets += 1
                resume = seq + 1
        self._next = resume
        self._hole_since = None

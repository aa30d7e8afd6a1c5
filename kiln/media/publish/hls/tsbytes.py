"""One TS segment muxed in memory with the push path's PyAV muxer (push/tsmux.py)."""

from __future__ import annotations

from kiln.media.model import Packet, Track
from kiln.media.publish.push.tsmux import TsMuxer, TsSink


class MemoryTsMuxer:
    """A :class:`TsMuxer` writing into a byte buffer; timestamps pass through unchanged, so segments
    muxed one after another continue each other's clock."""

    def __init__(self, label: str, tracks: list[Track]) -> None:
        self._buffer = bytearray()
        self._muxer = TsMuxer(label, tracks)
        self._muxer.open(TsSink(self._buffer.extend, lambda: None, datagram=None))

    def write(self, packet: Packet) -> None:
        self._muxer.write(packet, 0)

    def finish(self) -> bytes:
        self._muxer.close()
        return bytes(self._buffer)

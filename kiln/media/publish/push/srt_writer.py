"""Push as MPEG-TS over SRT (``srt`` protocol): Kiln's own SRT caller, 7 TS packets per SRT message.

A destination that rejects the connection (wrong stream id, passphrase) is an error naming SRT's
reject reason; sends are bounded by the send timeout.
"""

from __future__ import annotations

from kiln.media.model import Packet, Track
from kiln.media.net.srt.sender import SrtSender
from kiln.media.publish.push.net import Timeouts, failing_as_push_error
from kiln.media.publish.push.tsmux import TS_DATAGRAM, TsMuxer, TsSink


class SrtWriter:
    def __init__(self, destination: str, tracks: list[Track], timeouts: Timeouts) -> None:
        self.destination = destination
        self.timeouts = timeouts
        self._mux = TsMuxer(destination, tracks)

    @property
    def bytes_sent(self) -> int:
        return self._mux.bytes_sent

    def open(self) -> None:
        with failing_as_push_error(self.close):
            sender = SrtSender.connect(self.destination, connect_timeout_ms=self.timeouts.connect_ms,
                                       send_timeout_ms=self.timeouts.send_ms)
            self._mux.open(TsSink(sender.send, sender.close, TS_DATAGRAM))

    def write(self, packet: Packet, offset: int) -> None:
        self._mux.write(packet, offset)

    def flush(self) -> None:
        """The muxer sends whole datagrams as they fill: nothing is held here."""

    def abort(self) -> None:
        self._mux.abort()

    def close(self) -> None:
        self._mux.close()

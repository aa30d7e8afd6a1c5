"""Push as MPEG-TS over SRT (``srt`` protocol): Kiln's own SRT caller, 7 TS packets per SRT message.

A destination that rejects the connection (wrong stream id, passphrase) is an error naming SRT's
reject reason; sends are bounded by the send timeout.
"""

from __future__ import annotations

from kiln.media.model import Track
from kiln.media.net.srt.sender import SrtSender
from kiln.media.publish.push.mpegts_writer import TsPushWriter
from kiln.media.publish.push.net import Connecting, Timeouts
from kiln.media.publish.push.tsmux import TS_DATAGRAM, TsSink


def srt_sink(destination: str, timeouts: Timeouts, connecting: Connecting) -> TsSink:
    # the connect asks whether the session was stopped as it waits: a destination that never answers does not hold a
    # stopped push for the connection timeout
    sender = SrtSender.connect(destination, connect_timeout_ms=timeouts.connect_ms, send_timeout_ms=timeouts.send_ms,
                               stopped=lambda: connecting.aborted)
    return TsSink(sender.send, sender.close, TS_DATAGRAM)


class SrtWriter(TsPushWriter):
    def __init__(self, destination: str, tracks: list[Track], timeouts: Timeouts) -> None:
        super().__init__(destination, tracks, timeouts, srt_sink)

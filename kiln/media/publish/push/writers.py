"""The push writers, one per protocol, behind one small interface, chosen by a table (media-spec §7).

Kiln owns every connection, so each writer counts the exact bytes sent, bounds every network wait
by the app's connection and send timeouts, and sees a destination that refuses (connection
refused, an RTMP ``_error``, SRT rejection, a send timeout) as a :class:`PushError` with a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from kiln.media.model import Packet, Track
from kiln.media.publish.push.mpegts_writer import MpegtsWriter
from kiln.media.publish.push.net import PushError, Timeouts
from kiln.media.publish.push.rtmp_writer import RtmpWriter
from kiln.media.publish.push.srt_writer import SrtWriter

__all__ = ["WRITERS", "PushError", "PushWriter", "Timeouts", "writer_for"]


class PushWriter(Protocol):
    """Sends one push session's packets to its destination; used by the session's thread only,
    except :meth:`abort`."""

    @property
    def bytes_sent(self) -> int:
        """Bytes that left for the destination so far (kept after close)."""

    def open(self) -> None:
        """Connect and send the stream headers; a destination problem raises PushError."""

    def write(self, packet: Packet, offset: int) -> None:
        """Send one packet, its timestamps moved back by ``offset`` (its time base); PushError if it cannot.
        A writer may hold it until :meth:`flush`."""

    def flush(self) -> None:
        """Send what ``write`` held (the session calls it after each batch of packets); PushError if it cannot."""

    def abort(self) -> None:
        """From another thread: make a send blocked on a stalled destination return at once."""

    def close(self) -> None:
        """Finish the stream if the destination still listens, then release the connection; idempotent."""


WRITERS: dict[str, Callable[[str, list[Track], Timeouts], PushWriter]] = {
    "rtmp": RtmpWriter,
    "mpegts": MpegtsWriter,
    "srt": SrtWriter,
}


def writer_for(protocol: str, destination: str, tracks: list[Track], timeouts: Timeouts) -> PushWriter:
    """A new writer for ``protocol``, not yet connected (the session opens it on its own thread)."""
    make = WRITERS.get(protocol)
    if make is None:
        raise PushError(f"cannot push with protocol {protocol!r}")
    return make(destination, tracks, timeouts)

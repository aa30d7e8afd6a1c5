"""MPEG-TS muxing for the pushes that carry TS (MPEG-TS over UDP/TCP, SRT): PyAV writes into a sink.

The sink sends what PyAV writes at once (``flush_packets``), so a media packet leaves as soon as it
is muxed; for datagram transports it cuts the bytes into 1316-byte pieces (7 TS packets).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import av
import av.container
import av.stream

from kiln.events.redact import redact_push_destination
from kiln.media.model import Packet, Track
from kiln.media.publish.avbridge import Templates, to_av_packet
from kiln.media.publish.push.net import PushError, describe

log = logging.getLogger(__name__)

TS_DATAGRAM = 1316


class TsSink:
    """File-like sink PyAV writes TS bytes into; sends them through a socket or SRT."""

    def __init__(self, send: Callable[[bytes], object], close: Callable[[], None], datagram: int | None,
                 abort: Callable[[], None] | None = None) -> None:
        self._send = send
        self._close = close
        self.abort = abort or (lambda: None)
        self._datagram = datagram
        self._pending = bytearray()
        self.bytes_sent = 0

    def write(self, data: bytes) -> int:
        if self._datagram is None:
            self._send(bytes(data))
            self.bytes_sent += len(data)
            return len(data)
        self._pending += data
        size = self._datagram
        whole = len(self._pending) - len(self._pending) % size
        for i in range(0, whole, size):
            self._send(bytes(self._pending[i:i + size]))
        del self._pending[:whole]
        self.bytes_sent += whole
        return len(data)

    def flush_tail(self) -> None:
        if self._pending:
            self._send(bytes(self._pending))
            self.bytes_sent += len(self._pending)
            self._pending.clear()

    def close(self) -> None:
        self._close()


class TsMuxer:
    """PyAV's MPEG-TS muxer over one sink, one TS stream per track."""

    def __init__(self, destination: str, tracks: list[Track]) -> None:
        self.destination = destination
        self.tracks = tracks
        self.sink: TsSink | None = None
        self._templates: Templates | None = None
        self._container: av.container.OutputContainer | None = None
        self._streams: dict[int, av.stream.Stream] = {}
        self._closed = False

    @property
    def bytes_sent(self) -> int:
        return self.sink.bytes_sent if self.sink is not None else 0

    def open(self, sink: TsSink) -> None:
        self.sink = sink
        self._templates = Templates(self.tracks)
        container = self._container = av.open(sink, "w", format="mpegts", buffer_size=TS_DATAGRAM * 4,
                                              options={"flush_packets": "1"})
        for track in self.tracks:
            template = self._templates.by_track_id[track.id]
            self._streams[track.id] = container.add_stream_from_template(template)

    def abort(self) -> None:
        sink = self.sink
        if sink is not None:
            sink.abort()

    def write(self, packet: Packet, offset: int) -> None:
        stream = self._streams.get(packet.track_id)
        if stream is None or self._container is None:
            return
        try:
            self._container.mux(to_av_packet(packet, stream, offset))
        except (OSError, av.error.FFmpegError) as exc:
            raise PushError(describe(exc)) from exc

    def close(self) -> None:
        """Write the trailer if the destination still takes it, then release the sink; once."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._container is not None:
                self._container.close()
        except (OSError, PushError, av.error.FFmpegError) as exc:  # the trailer may meet a closed destination
            log.debug("push writer close error destination=%s error=%s", redact_push_destination(self.destination), exc)
        finally:
            self._container = None
            if self.sink is not None:
                try:
                    self.sink.flush_tail()
                except (OSError, PushError):
                    pass
                try:
                    self.sink.close()
                except OSError:
                    pass
            if self._templates is not None:
                self._templates.close()
                self._templates = None

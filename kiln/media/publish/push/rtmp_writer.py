"""Push to RTMP/RTMPS (``rtmp`` protocol): FLV tags built straight from the packets, sent by Kiln's client.

No muxer: :mod:`kiln.media.publish.push.flvtags` makes the tags and
:mod:`kiln.media.publish.push.rtmp_client` sends them (FFmpeg's own ``rtmp://`` output blocks with
the GIL held and no timeout). A new decoder configuration mid-stream goes out as a new sequence header.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import replace

from kiln.events.redact import redact_push_destination
from kiln.media.formats.rtmp import messages
from kiln.media.model import Packet, Track
from kiln.media.publish.push import flvtags
from kiln.media.publish.push.net import PushError, Timeouts, failing_as_push_error, shutdown
from kiln.media.publish.push.rtmp_client import RtmpPublisher

log = logging.getLogger(__name__)


class RtmpWriter:
    def __init__(self, destination: str, tracks: list[Track], timeouts: Timeouts) -> None:
        self.destination = destination
        self.tracks = tracks
        self.timeouts = timeouts
        self._rtmp: RtmpPublisher | None = None
        # the socket being set up (connect, handshake, publish) and whether the session gave up meanwhile: abort()
        # shuts it down, so a stop does not wait out the connection timeout of a destination that does not answer
        self._connecting: socket.socket | None = None
        self._aborted = False
        self._configs: dict[int, bytes] = {}
        self._by_id = {t.id: t for t in tracks}
        self._sent_before_close = 0
        self._held: list[tuple[int, int, bytes]] = []  # tags written since the last flush

    @property
    def bytes_sent(self) -> int:
        return self._rtmp.bytes_sent if self._rtmp is not None else self._sent_before_close

    def open(self) -> None:
        try:
            with failing_as_push_error(self.close):
                self._rtmp = RtmpPublisher.connect(self.destination, self.timeouts.connect_ms, self.timeouts.send_ms,
                                                   self._opened)
                headers = [(t, 0, body) for t, body in filter(None, (flvtags.sequence_header(tr)
                                                                     for tr in self.tracks))]
                self._rtmp.send_tags([(messages.DATA_AMF0, 0, flvtags.metadata(self.tracks)), *headers])
                self._configs = {tr.id: tr.config for tr in self.tracks}
        except PushError as exc:
            if self._aborted:  # the shutdown made the set-up fail wherever it was: the stop is the reason
                raise PushError("stopped while connecting") from exc
            raise

    def write(self, packet: Packet, offset: int) -> None:
        track = self._by_id.get(packet.track_id)
        if track is None or self._rtmp is None:
            return
        tags = []
        if packet.config and packet.config != self._configs.get(track.id):  # new decoder configuration
            self._configs[track.id] = packet.config
            header = flvtags.sequence_header(replace(track, config=packet.config))
            if header is not None:
                tags.append((header[0], max(0, flvtags.ms(packet.dts - offset, packet.time_base)), header[1]))
        tag = flvtags.media_tag(track, packet, offset)
        if tag is not None:
            tags.append(tag)
        self._held += tags

    def flush(self) -> None:
        """One socket write for every tag of the batch (not one per packet)."""
        tags, self._held = self._held, []
        if tags and self._rtmp is not None:
            self._rtmp.send_tags(tags)

    def _opened(self, sock: socket.socket) -> None:
        """The session's thread: the socket now being set up. Set before ``_aborted`` is read, as ``abort`` sets
        ``_aborted`` before reading the socket: one of the two sees the other."""
        self._connecting = sock
        if self._aborted:
            raise PushError("stopped while connecting")

    def abort(self) -> None:
        self._aborted = True
        rtmp = self._rtmp
        if rtmp is not None:
            rtmp.abort()
            return
        sock = self._connecting
        if sock is not None:
            shutdown(sock)  # a connect or handshake under way fails at once

    def close(self) -> None:
        rtmp, self._rtmp = self._rtmp, None
        if rtmp is None:
            return
        try:
            if self._held:
                rtmp.send_tags(self._held)
        except (OSError, PushError) as exc:
            log.debug("push rtmp last tags not sent destination=%s error=%s",
                      redact_push_destination(self.destination), exc)
        self._held = []
        self._sent_before_close = rtmp.bytes_sent
        try:
            rtmp.close()
        except (OSError, PushError) as exc:
            log.debug("push rtmp close error destination=%s error=%s", redact_push_destination(self.destination), exc)

"""One SRT playback caller: the listener's receiver for its connection, and a publisher of one output.

Once the caller's connection is complete the session subscribes to the output's hub (a bounded
queue, from the last keyframe) and a worker thread muxes the chosen tracks to MPEG-TS and sends
7 TS packets per SRT message. A caller that cannot keep up is dropped, and the connection
closed, when any of these happens: its queue overflows (the hub removes it, never waiting); a
send blocks past the send timeout; or libsrt holds unacknowledged media older than
``STALL_BUFFER_MS`` for ``STALL_CHECKS`` checks ``STALL_CHECK_S`` apart (one second). The last is
how a caller that stops reading shows in live mode: its receive buffer fills, it stops
acknowledging, and libsrt drops the too-late packets instead of blocking the sender, so neither of
the first two would ever fire. The rule decides about 3 s after the caller stopped acknowledging,
well before libsrt's 5 s peer idle timeout would break the connection with a less telling reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kiln.media.model import MediaKind, Track
from kiln.media.net.srt.abi import SockOpt
from kiln.media.net.srt.errors import ErrorCode, SrtError
from kiln.media.net.srt.socket import SrtSocket
from kiln.media.publish.push.net import PushError
from kiln.media.publish.push.tsmux import TS_DATAGRAM, TsMuxer, TsSink
from kiln.media.publish.session_clock import SessionClock
from kiln.media.stream.hub import SLOW_CONSUMER, Subscriber
from kiln.media.stream.live import OutputStream
from kiln.media.worker import WorkerThread

log = logging.getLogger(__name__)

QUEUE_PACKETS = 3000  # as push: a few seconds of media before a stalled caller is dropped
SEND_TIMEOUT_MS = 2000
JOIN_TIMEOUT_S = 5.0
SLOW_CALLER = "the caller is too slow: dropped to protect the stream"
STALL_BUFFER_MS = 2000  # a healthy caller acknowledges within its RTT (and retransmissions), far below this
STALL_CHECKS = 4
STALL_CHECK_S = 0.25


class StallWatch:
    """Says when a caller left over ``buffer_ms`` of media unacknowledged ``checks`` checks in a row."""

    def __init__(self, buffer_ms: int = STALL_BUFFER_MS, checks: int = STALL_CHECKS) -> None:
        self.buffer_ms = buffer_ms
        self.checks = checks
        self._over = 0

    def stalled(self, unacknowledged_ms: int) -> bool:
        self._over = self._over + 1 if unacknowledged_ms > self.buffer_ms else 0
        return self._over >= self.checks


@dataclass
class PlaybackCounters:
    sent_bytes: int = 0

    @property
    def bytes_out(self) -> int:
        return self.sent_bytes


@dataclass(frozen=True)
class SessionHooks:
    """What a session tells its owner: bytes sent, that it wants its caller disconnected, that it is gone;
    and what it asks before sending: ``admit`` runs on the session's own thread (so a slow admission
    check holds only this caller) and answers None to go on, or why the caller is refused."""

    on_bytes: Callable[[int], None]
    disconnect: Callable[[SrtPlaySession, str], None]
    closed: Callable[[SrtPlaySession], None]
    admit: Callable[[SrtPlaySession], str | None] = lambda session: None
    arrive: Callable[[SrtPlaySession], str | None] = lambda session: "no stream to play"
    """For a caller accepted before its stream is here (pull on demand): runs on the session's thread after
    ``admit`` and :meth:`SrtPlaySession.bind` s the stream, answering None, or why the caller is closed."""


class SrtPlaySession:
    def __init__(self, label: str, output: OutputStream | None, tracks: list[Track], hooks: SessionHooks,
                 *, queue_packets: int = QUEUE_PACKETS, send_timeout_ms: int = SEND_TIMEOUT_MS) -> None:
        """``output`` None: the caller's stream is not here yet; ``hooks.arrive`` brings it (pull on demand)."""
        self.label = label
        self.output = output
        self.tracks = tracks
        self.hooks = hooks
        self.counters = PlaybackCounters()
        self.send_timeout_ms = send_timeout_ms
        self.closed_reason: str | None = None
        self._sock: SrtSocket | None = None
        self._queue_packets = queue_packets
        self._ids: set[int] = set()
        self._sub = self._subscriber(tracks)
        self._worker = WorkerThread(f"srt-play-{label}", self._run, self._crashed)

    def _subscriber(self, tracks: list[Track]) -> Subscriber:
        self._ids = {t.id for t in tracks}
        video = frozenset(t.id for t in tracks if t.kind is MediaKind.VIDEO)
        return Subscriber(f"srt:{self.label}", max_packets=self._queue_packets, policy="drop", video_track_ids=video)

    def bind(self, output: OutputStream, tracks: list[Track]) -> None:
        """The stream of a caller accepted before it was here has arrived (``hooks.arrive``, session thread)."""
        sub = self._subscriber(tracks)
        self.output, self.tracks = output, tracks
        self._sub = sub
        if self._worker.stopping:  # the caller left as the stream arrived: on_close ended the old subscriber
            sub.end(self.closed_reason or "stopped")

    @property
    def leaving(self) -> bool:
        """The caller is gone or being dropped: a wait on its behalf should give up."""
        return self.closed_reason is not None or self._worker.stopping

    # -- SrtReceiver (listener thread) --------------------------------------------------------------
    def on_data(self, data: bytes) -> None:
        """A player sends nothing a live TS stream needs; whatever it sends is ignored."""

    def on_close(self, reason: str) -> None:
        """The caller is gone (hung up, timed out, failed the handshake, or was disconnected)."""
        if self.closed_reason is None:
            self.closed_reason = reason
        self._worker.stop()
        self._sub.end(reason)
        self.hooks.closed(self)

    def connected(self, sock: SrtSocket) -> None:
        """The connection is complete: the session sends on ``sock``, each send blocking at most the
        send timeout. :meth:`attach` starts sending."""
        sock.set_bool(SockOpt.SNDSYN, True)
        sock.set_int(SockOpt.SNDTIMEO, self.send_timeout_ms)
        self._sock = sock

    # -- Publisher ----------------------------------------------------------------------------------
    @property
    def attached(self) -> bool:
        return self._worker.alive

    def attach(self, output: OutputStream | None) -> None:
        """Start sending ``output`` to the connected caller (None: the one ``hooks.arrive`` brings); does
        nothing once the caller is gone."""
        if self.closed_reason is not None or self._worker.stopping:
            return
        if output is not None:
            self.output = output
        self._worker.start()

    def detach(self, reason: str) -> None:
        """Stop sending and close the caller's connection (the stream ended, or the server stops)."""
        self._worker.stop()
        self._sub.end(reason)
        if not self._worker.on_worker_thread:
            self._worker.join(JOIN_TIMEOUT_S)
        self.hooks.disconnect(self, reason)

    # -- worker -------------------------------------------------------------------------------------
    def _run(self) -> None:
        refused = self.hooks.admit(self)
        if refused is None and self.output is None:
            refused = self.hooks.arrive(self)
        if refused is not None:
            if not self._worker.stopping:
                self.hooks.disconnect(self, refused)
            return
        output = self.output
        assert output is not None
        mux = TsMuxer(self.label, self.tracks)
        reason = "stream ended"
        try:
            mux.open(TsSink(self._send, lambda: None, TS_DATAGRAM))
            output.hub.subscribe(self._sub, from_keyframe=True)
            reason = self._pump(mux)
        except PushError as exc:
            reason = str(exc)
        finally:
            self._sub.close()
            mux.close()
        if not self._worker.stopping:
            log.info("srt playback ended session=%s reason=%s bytes=%d", self.label, reason, self.counters.sent_bytes)
            self.hooks.disconnect(self, reason)

    def _crashed(self, exc: Exception) -> None:
        self.hooks.disconnect(self, f"internal error: {exc}")

    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise PushError("no connection")
        try:
            sock.send(data)
        except SrtError as exc:
            if exc.code in (ErrorCode.ETIMEOUT, ErrorCode.EASYNCSND):
                raise PushError(SLOW_CALLER) from exc
            raise PushError(f"send failed: {exc.strerror}") from exc
        self.counters.sent_bytes += len(data)
        self.hooks.on_bytes(len(data))

    def _stalled(self, watch: StallWatch) -> bool:
        sock = self._sock
        if sock is None:
            return False
        try:
            buffered = sock.stats().send_buffer_ms
        except SrtError:  # the caller is gone; the listener says so through on_close
            return False
        if watch.stalled(buffered):
            log.warning("srt playback caller stalled session=%s unacknowledged_ms=%d", self.label, buffered)
            return True
        return False

    def _pump(self, mux: TsMuxer) -> str:
        """Send from the first video keyframe (any packet for audio only), timestamps from zero."""
        clock = SessionClock(self.tracks)
        watch, next_check = StallWatch(), time.monotonic() + STALL_CHECK_S
        while not self._worker.stopping:
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + STALL_CHECK_S
                if self._stalled(watch):
                    return SLOW_CALLER
            packet = self._sub.get(timeout=0.5)
            if packet is None:
                if self._sub.ended:
                    reason = self._sub.closed_reason or "stream ended"
                    return SLOW_CALLER if reason == SLOW_CONSUMER else reason
                continue
            if packet.track_id not in self._ids:
                continue
            offset = clock.offset(packet)
            if offset is None:
                continue
            mux.write(packet, offset)
        return self.closed_reason or "stopped"


if TYPE_CHECKING:  # mypy holds the class to the publisher contract
    from kiln.media.publish.contract import Publisher

    _conforms: type[Publisher] = SrtPlaySession

"""The stream actor: owns one live stream instance (described, concluded, ended) and journals it.

It never touches packets; the LiveStream's hubs carry media. The source going away, a DELETE, a
replacing publisher and a server shutdown may race to end it; its ``StreamInstance`` aggregate
decides the one StreamEnded. The supervisor stops this actor once the stream is forgotten, so a
command already on its way is still answered (an actor that stopped itself would leave that
caller waiting).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Protocol

import pykka

from kiln.actors.base import CommandActor, Outcome, tell_quietly
from kiln.actors.commands import ConcludeHlsLive, EndStream, ForgetStream, StreamDescribed, StreamReady, Teardown
from kiln.actors.effects import after
from kiln.domain.aggregate import decide_and_apply
from kiln.domain.stream_instance import ConcludeLive, DescribeTracks, EndInstance, StreamInstance
from kiln.eventlog import Encoded
from kiln.events.base import Event
from kiln.events.streams import StreamStarted
from kiln.media.stream.live import LiveStream
from kiln.timefmt import now

log = logging.getLogger(__name__)


class Journal(Protocol):
    def encode(self, events: Sequence[Event]) -> Encoded: ...

    def emit(self, events: Sequence[Event] | Encoded) -> Future[Any]: ...


class HlsConclusion(Protocol):
    """Ends a live stream's LL-HLS playlists (``#EXT-X-ENDLIST``) while the stream goes on."""

    def conclude(self, live: LiveStream) -> Future[int]: ...


class StreamActor(CommandActor):
    def __init__(self, journal: Journal, stream: LiveStream, started: StreamStarted,
                 supervisor: pykka.ActorRef[Any], hls: HlsConclusion | None) -> None:
        super().__init__()
        self.journal = journal
        self.stream = stream
        self.instance = StreamInstance(started)
        self.supervisor = supervisor
        self.hls = hls

    def handle_StreamDescribed(self, cmd: StreamDescribed) -> Outcome:
        s = self.stream
        events = decide_and_apply(self.instance, DescribeTracks(s.tracks_summary()), now(), self.journal.encode)
        if not events.records:
            return Outcome(None)
        fut = self.journal.emit(events)
        tell_quietly(self.supervisor, StreamReady(s.name, s.instance))
        return Outcome(None, [fut])

    def handle_ConcludeHlsLive(self, cmd: ConcludeHlsLive) -> Outcome:
        if self.hls is None:  # nothing to conclude: decided, it would be applied and never journaled
            return Outcome(None)
        events = decide_and_apply(self.instance, ConcludeLive(), now(), self.journal.encode)
        if not events.records:
            return Outcome(None)
        hls, live = self.hls, self.stream
        return Outcome(None, [after(self.journal.emit(events), lambda: hls.conclude(live))])

    def handle_EndStream(self, cmd: EndStream) -> Outcome:
        s = self.stream
        s.end(cmd.reason)  # idempotent: the source may have ended it already
        events = decide_and_apply(self.instance, EndInstance(cmd.reason, s.bytes_in), now(), self.journal.encode)
        if not events.records:
            return Outcome(None)
        fut = self.journal.emit(events)
        tell_quietly(self.supervisor, ForgetStream(s.name, s.instance))
        return Outcome(None, [fut])

    def handle_Teardown(self, cmd: Teardown) -> Outcome:
        self.stream.close_ingest(cmd.reason)
        return self.handle_EndStream(EndStream(cmd.reason))

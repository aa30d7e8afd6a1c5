"""One multiplex channel: tracks taken from other live streams, renamed, fed to a new stream of their own.

As OME's ``MultiplexStream``: the channel waits (``Pulling``, once a second) until every source stream's output
is live, then takes their tracks by variant name (each source's ``trackMap``), opens its stream through the
control plane (as every ingest does) and feeds it (``Playing``). When a source goes away the channel's stream
ends and it waits for the sources again, as OME's does when its file watcher makes the channel anew. A source that
is this channel, or takes it (directly or through other channels, multiplex or scheduled:
:mod:`kiln.media.stream.loops`), is waited for as one that is not there, with the loop in the pulling message and
the log: taking it would feed the channel its own output for ever.

Packets never pass through an actor: each source's output hub calls a cheap callback (``kiln/media/stream/tap.py``,
shared with scheduled channels' ``stream://`` items) on the source's own thread
that relabels the packet and appends it to one bounded queue; this worker's thread feeds the channel's stream from
it. A hub never waits on a subscriber, so the channel cannot slow a source; a channel that falls behind is
dropped by its queue, its stream ends and it starts again from the sources' last keyframes.

Timestamps: the sources come from different encoders, with clocks that have nothing in common. Each source's
timeline is placed on the channel's clock once, by its first packet: the time that packet arrived at Kiln
(``Packet.arrival``, the server's monotonic clock) since the channel's anchor (the earliest arrival among the
packets the sources' hubs replay first). Every later packet of that source keeps its distance from the first,
on all its tracks alike, so a source's audio and video stay in sync and its timestamps only go forward; two
sources are as aligned as their packets arrived (their encoders' and networks' latency differences remain).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction

from kiln.events.multiplex import Multiplex, SourceStream
from kiln.media.ingest.contract import PublishRejected
from kiln.media.ingest.multiplex.board import MuxBoard, MuxState
from kiln.media.model import MediaKind, Packet, Track
from kiln.media.stream.hub import StreamHub, Subscriber
from kiln.media.stream.live import LiveStream
from kiln.media.stream.loops import ChannelFeeds, loop_back
from kiln.media.stream.tap import HubTap, Outputs, Retimer
from kiln.media.worker import WorkerThread

log = logging.getLogger(__name__)

SOURCE_TYPE = "Multiplex"
PROVIDER = "multiplex"
PULL_RETRY_S = 1.0     # OME's worker tries the sources again every second
QUEUE_PACKETS = 3000   # ~10 s of two 30 fps sources with audio: beyond it the channel is too slow, and restarts


@dataclass(frozen=True)
class MuxHooks:
    open_stream: Callable[[Callable[[str], None]], LiveStream]  # (close) -> the stream, or PublishRejected
    finished: Callable[[str], None]


@dataclass
class _Source:
    """One source stream as the channel takes it: its output hub and its tracks' new ids."""

    spec: SourceStream
    hub: StreamHub
    new_ids: dict[int, int]          # source output track id -> channel track id
    time_bases: dict[int, Fraction]  # source output track id -> its time base
    tap: HubTap | None = None


class MuxWorker:
    def __init__(self, where: str, mux: Multiplex, outputs: Outputs, hooks: MuxHooks,
                 board: MuxBoard | None = None, retry_s: float = PULL_RETRY_S,
                 queue_packets: int = QUEUE_PACKETS, feeds: ChannelFeeds | None = None) -> None:
        self.where = where
        self.mux = mux
        self.outputs = outputs
        self.hooks = hooks
        self.board = board
        self.feeds = feeds if feeds is not None else ChannelFeeds()  # what the server's channels take (loops)
        vhost, _, app = where.partition("/")
        self.key = (vhost, app, mux.name)
        self._app_name = f"#{vhost}#{app}"
        self._thread = WorkerThread(f"multiplex {where}/{mux.name}", self._run, on_crash=self._crashed)
        self._stop_reason = ""
        self._queue: Subscriber | None = None
        self.retry_s = retry_s
        self.queue_packets = queue_packets
        self._refused = ""  # the last refusal logged (a channel refused every second logs it once)
        self._told_loop = ""  # the last loop logged, likewise

    @property
    def name(self) -> str:
        return self.mux.name

    def start(self) -> None:
        self._thread.start()

    def close(self, reason: str) -> None:
        if not self._stop_reason:
            self._stop_reason = reason
        self._thread.stop()
        queue = self._queue
        if queue is not None:
            queue.end(reason)  # wakes the feeding loop

    def _end_stream(self, reason: str) -> None:
        """The stream is closed from outside (DELETE streams/{stream}): it ends, and the channel waits for its
        sources again, as OME's comes back while its file is there."""
        queue = self._queue
        if queue is not None:
            queue.end(reason)

    def join(self, timeout: float) -> bool:
        return self._thread.join(timeout)

    def _crashed(self, exc: Exception) -> None:
        self.hooks.finished(f"multiplex worker failed: {exc}")

    def _show(self, state: MuxState, message: str = "") -> None:
        if self.board is not None:
            self.board.set(self.key, state, message)

    def _run(self) -> None:
        # said before the sources are looked at, so two channels closing a loop at once see each other
        self.feeds.set(self.key, self, tuple(spec.target for spec in self.mux.sources))
        try:
            while not self._thread.stopping:
                sources = self._pull()
                if sources is not None:
                    self._play(sources)
        finally:
            if self.board is not None:
                self.board.clear(self.key)
            self.feeds.clear(self.key, self)
            log.info("multiplex channel stopped where=%s stream=%s reason=%s", self.where, self.name,
                     self._stop_reason)
            self.hooks.finished(self._stop_reason or "multiplex ended")

    # -- Pulling ---------------------------------------------------------------------------------------------
    def _pull(self) -> list[_Source] | None:
        """Every source's output and tracks, or None after waiting a second (a source is not live yet, or would
        feed the channel back)."""
        for spec in self.mux.sources:
            loop = loop_back(self.key, None, spec.target, self.outputs, self.feeds)
            if loop is not None:
                if loop != self._told_loop:
                    self._told_loop = loop
                    log.warning("multiplex source leads back to this channel where=%s stream=%s url=%s loop=%s: the "
                                "channel waits (it would take its own output for ever)", self.where, self.name,
                                spec.url, loop)
                self._show(MuxState.PULLING, f"Multiplex Channel : {self._app_name}/{self.name}: Failed to mirror "
                                             f"stream {spec.url} (a loop back to this channel: {loop})")
                self._thread.wait(self.retry_s)
                return None
        self._told_loop = ""
        sources = []
        for spec in self.mux.sources:
            vhost, app, stream = spec.target
            found = self.outputs.find_output(vhost, app, stream)
            out = found[1] if found is not None else None
            if out is None or out.hub.closed_reason is not None:
                message = f"Multiplex Channel : {self._app_name}/{self.name}: Wait for stream {stream}"
                self._show(MuxState.PULLING, message)
                log.debug("multiplex channel waits where=%s stream=%s source=%s", self.where, self.name, spec.url)
                self._thread.wait(self.retry_s)
                return None
            sources.append(_Source(spec, out.hub, {}, {}))
        return sources

    def _tracks(self, sources: list[_Source]) -> list[Track]:
        """The channel's tracks: each source's mapped tracks, renamed, numbered in order (OME's AddTrack)."""
        tracks: list[Track] = []
        for source in sources:
            mapping = {m.source_track_name: m for m in source.spec.track_map}
            for track in list(source.hub.tracks.values()):
                m = mapping.get(track.name)
                if m is None or track.kind is MediaKind.DATA:
                    continue
                new = replace(track, id=len(tracks), name=m.new_track_name, bypass=self.mux.bypass_transcoder)
                if m.bitrate_conf > 0:
                    new = replace(new, bitrate_conf=m.bitrate_conf)
                if m.framerate_conf > 0:
                    new = replace(new, framerate_conf=float(m.framerate_conf))
                source.new_ids[track.id] = new.id
                source.time_bases[track.id] = track.time_base
                tracks.append(new)
            given = {t.name for t in source.hub.tracks.values()}
            missing = sorted(m.source_track_name for m in source.spec.track_map if m.source_track_name not in given)
            if missing:  # as OME, the channel goes on without them; said, since a misnamed track is a silent gap
                log.warning("multiplex source tracks not found where=%s stream=%s source=%s missing=%s "
                            "source_tracks=%s", self.where, self.name, source.spec.url, ",".join(missing),
                            ",".join(sorted(n for n in given if n)))
        return tracks

    # -- Playing ---------------------------------------------------------------------------------------------
    def _play(self, sources: list[_Source]) -> None:
        """Open the channel's stream and feed it until a source ends or the channel stops. A stream the control
        plane refuses (its name taken by another publisher) is asked for again a second later, as OME's file
        watcher makes a channel whose publish failed anew."""
        tracks = self._tracks(sources)
        try:
            stream = self.hooks.open_stream(self._end_stream)
        except PublishRejected as exc:
            if str(exc) != self._refused:
                log.warning("multiplex channel refused where=%s stream=%s error=%s", self.where, self.name, exc)
                self._refused = str(exc)
            self._show(MuxState.PULLING, f"Multiplex Channel : {self._app_name}/{self.name}: Failed to publish "
                                         f"stream ({exc})")
            self._thread.wait(self.retry_s)
            return
        self._refused = ""
        video_ids = frozenset(t.id for t in tracks if t.kind is MediaKind.VIDEO)
        queue = self._queue = Subscriber(f"multiplex {self.where}/{self.name}", max_packets=self.queue_packets,
                                         policy="drop", video_track_ids=video_ids)
        if self._thread.stopping:
            queue.end(self._stop_reason)
        anchor = min((cached[0].arrival for s in sources if (cached := s.hub.gop_snapshot())),
                     default=time.monotonic())
        if self.mux.bypass_transcoder:
            stream.relay(tracks, [p.to_profile() for p in self.mux.playlists])
        else:  # through the app's output profiles, as any input (OME: Source, not Relay; its playlists unused)
            stream.expected = {t.kind for t in tracks}
            for track in tracks:
                stream.on_track(replace(track, name="", bypass=False))
        self._show(MuxState.PLAYING)
        log.info("multiplex channel started where=%s stream=%s sources=%s tracks=%s", self.where, self.name,
                 ",".join(s.spec.url for s in sources), ",".join(f"{t.id}:{t.name}" for t in tracks))
        for source in sources:
            source.tap = HubTap(f"multiplex {self.where}/{self.name} <- {source.spec.url}", source.hub,
                                self._retimer(source, Fraction(anchor)), queue, self._source_ended(source, queue))
            source.tap.open()
        try:
            while True:
                packet = queue.get(0.5)
                if packet is not None:
                    stream.ingest(packet)
                elif queue.ended or self._thread.stopping:
                    break
        finally:
            for source in sources:
                if source.tap is not None:
                    source.tap.close()
            ended = self._stop_reason or queue.closed_reason or "multiplex ended"
            stream.end(ended)
            self._queue = None
            if not self._thread.stopping:
                log.info("multiplex channel waits again where=%s stream=%s reason=%s", self.where, self.name, ended)

    @staticmethod
    def _retimer(source: _Source, anchor: Fraction) -> Retimer:
        """A source is placed on the channel's clock by its first packet's arrival since the anchor."""

        def begin(packet: Packet, tb: Fraction) -> Fraction:
            return Fraction(packet.arrival) - anchor - packet.dts * tb

        return Retimer(source.new_ids, source.time_bases, begin)

    def _source_ended(self, source: _Source, queue: Subscriber) -> Callable[[str], None]:
        def ended(reason: str) -> None:
            log.info("multiplex source ended where=%s stream=%s source=%s reason=%s", self.where, self.name,
                     source.spec.url, reason)
            queue.end(f"source stream ended: {source.spec.url}")

        return ended

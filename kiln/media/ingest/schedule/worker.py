"""One scheduled channel's playback: demux its items' files with PyAV, or take a ``stream://`` item's live stream
through a callback on its output hub, and feed them, in real time, to its stream.

The worker asks the control plane for the stream once (``open_stream``, as every ingest does) and feeds it
on its own thread; packets never pass through an actor. Every item is rescaled to the channel's own
1/90000 clock and placed where the one before ended, so timestamps only go forward across items and
programs; packets are released at the pace of that clock. At each item's end (or when a program's time
comes) :func:`plan.on_air` says what is next.

A ``stream://`` item (OME's ``PlayStream``) starts at the source output's last keyframe (its hub's cache), placed
where the item before ended, all its tracks by one offset (they stay in sync); it plays for its duration by its
own timestamps, or until the source ends or sends nothing for the channel's error tolerance; then, as for a file
that cannot play, ``fallbackOnErr`` says whether the fallback program plays; so does a source that is the channel
itself or a channel that takes this one, directly or through others, scheduled or multiplex
(:mod:`kiln.media.stream.loops`: checked when an item would start, so the channel that would close a loop plays its
fallback). The source is never slowed: its
hub calls :class:`kiln.media.stream.tap.HubTap` on its own thread, which only appends to a bounded queue that this
thread drains at the channel's pace (a channel that falls that far behind gives the item up).
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av

from kiln.config.values import AudioLabel
from kiln.events.schedules import Item, Schedule
from kiln.media.formats.codecs import CodecConfigError, describe_track, h264, nal
from kiln.media.ingest.contract import PublishRejected
from kiln.media.ingest.demux.convert import CODECS, AvConverter
from kiln.media.ingest.schedule.board import OnAir, ScheduleBoard
from kiln.media.ingest.schedule.plan import LIVE_FOREVER_MS, Idle, Slot, current_program, on_air, unimplemented
from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.stream.hub import StreamHub, Subscriber
from kiln.media.stream.live import LiveStream
from kiln.media.stream.loops import ChannelFeeds, loop_back
from kiln.media.stream.tap import HubTap, Outputs, Retimer
from kiln.media.worker import WorkerThread

log = logging.getLogger(__name__)

TICKS = 90000
TIME_BASE = Fraction(1, TICKS)
LEAD_S = 0.3       # packets go out this far ahead of the channel clock (players buffer; parts fill sooner)
IDLE_CHECK_S = 1.0  # with nothing on air, look again this often (a program may begin)
MIN_TOLERANCE_S = 0.1  # a live item's error tolerance below this would end it between two of its packets
FIRST_PACKET_S = 3.0  # a live item's first keyframe may be a GOP away when its source's cache is empty
LIVE_RETRY_S = 1.0    # a live item that sent nothing is not tried again before this (the fallback plays meanwhile)
SILENT_S = 1.0  # a source that sent nothing for this long (or its error tolerance, if longer) is not live
FAILBACK_CHECK_S = 0.5  # while the fallback plays in an item's place, look this often whether the item can again
LIVE_QUEUE_PACKETS = 3000  # ~40 s of 30 fps video with AAC: a channel that far behind gives the item up
SOURCE_TYPE = "Scheduled"
PROVIDER = "schedule"


@dataclass(frozen=True)
class ScheduleHooks:
    open_stream: Callable[[Callable[[str], None]], LiveStream]  # (close) -> the stream, or PublishRejected
    finished: Callable[[str], None]


class _Lengths:
    """Each file item's playable ms, probed once per file version (OME reloads a file whose mtime or size
    changed). 0: the file cannot be played (missing, not a regular file, no usable track)."""

    def __init__(self, root: Path, live: Callable[[Item], bool] | None = None) -> None:
        self.root = root
        self.live = live  # whether a stream:// item's stream is live now (None: no stream is)
        self._known: dict[str, tuple[tuple[int, int], int]] = {}
        self._live_failed: dict[str, float] = {}  # stream:// URL -> monotonic time it last sent nothing

    def path(self, item: Item) -> Path:
        """OME appends the URL's path to MediaRootDir, so ``file:///x`` is ``<root>/x`` (``root / "/x"`` is ``/x``)."""
        return self.root / item.file_path.lstrip("/")

    def failed(self, item: Item) -> None:
        if item.stream_target is not None:
            self._live_failed[item.url] = time.monotonic()
            return
        path = str(self.path(item))
        found = self._known.get(path)
        if found is not None:
            self._known[path] = (found[0], 0)

    def __call__(self, item: Item) -> int:
        """Its duration, or to the end of its file when that comes first: a duration past the end would keep
        the schedule's clock inside an item with nothing left to play. A stream:// item: its duration (-1: for
        ever) while its stream is live, 0 while it is not (or sent nothing a moment ago)."""
        if item.stream_target is not None:
            failed = self._live_failed.get(item.url)
            if failed is not None and time.monotonic() - failed < LIVE_RETRY_S:
                return 0
            if self.live is None or not self.live(item):
                return 0
            return item.duration_ms if item.duration_ms >= 0 else LIVE_FOREVER_MS
        rest = max(0, self._file_ms(item) - item.start_ms)
        return min(item.duration_ms, rest) if item.duration_ms >= 0 else rest

    def _file_ms(self, item: Item) -> int:
        path = self.path(item)
        try:
            st = os.stat(path)
        except OSError:
            return 0
        version = (st.st_mtime_ns, st.st_size)
        found = self._known.get(str(path))
        if found is not None and found[0] == version:
            return found[1]
        ms = 0
        if stat.S_ISREG(st.st_mode):  # a FIFO would hold the worker in open()
            try:
                with av.open(str(path)) as container:
                    ms = int(container.duration * 1000 // av.time_base) if container.duration else 0
            except (av.FFmpegError, OSError) as exc:
                log.warning("schedule item unreadable path=%s error=%s", path, exc)
        self._known[str(path)] = (version, ms)
        return ms


class _Failback:
    """OME's FAILBACK: a fallback item playing in place of a program item that could not play gives way as soon as
    that item can (a live stream back, a file there again), rather than when it ends. Asked once per packet; looks
    every ``FAILBACK_CHECK_S``; never for a fallback that plays because no program is on air."""

    def __init__(self, worker: ScheduleWorker, slot: Slot) -> None:
        self.worker = worker
        self.fallback = slot.program is None
        self._next = time.monotonic() + FAILBACK_CHECK_S

    def __call__(self) -> bool:
        if not self.fallback or time.monotonic() < self._next:
            return False
        self._next = time.monotonic() + FAILBACK_CHECK_S
        w = self.worker
        found = on_air(w.schedule, int(time.time() * 1000), w.lengths, w._fallback_next)
        if isinstance(found, Slot) and found.program is not None:
            log.info("schedule fallback gives way where=%s stream=%s program=%s url=%s", w.where, w.name,
                     found.program.name, found.item.url)
            return True
        return False


class ScheduleWorker:
    def __init__(self, where: str, schedule: Schedule, media_root: Path, hooks: ScheduleHooks,
                 board: ScheduleBoard | None = None, outputs: Outputs | None = None,
                 feeds: ChannelFeeds | None = None) -> None:
        self.where = where
        self.schedule = schedule
        self.hooks = hooks
        self.board = board
        self.outputs = outputs
        self.feeds = feeds if feeds is not None else ChannelFeeds()  # what the server's channels take (loops)
        self.lengths = _Lengths(media_root, lambda item: self._source_hub(item) is not None)
        self._live_queue: Subscriber | None = None  # the live item's queue while one plays (ended to stop it)
        self._stream: LiveStream | None = None  # the channel's own stream, once opened
        self._told_self: set[str] = set()  # stream:// URLs already logged as naming the channel itself
        self._told_loop: dict[str, str] = {}  # stream:// URL -> the loop back to this channel last logged for it
        vhost, _, app = where.partition("/")
        self.key = (vhost, app, schedule.name)
        self._thread = WorkerThread(f"schedule {where}/{schedule.name}", self._run, on_crash=self._crashed)
        self._stop_reason = ""
        self._fallback_next = 0
        self._base = 0                 # where the next item starts on the channel clock (ticks)
        self._anchor: float | None = None  # monotonic time of channel tick 0
        self._last_dts: dict[str, int] = {}  # per channel track ("video", "audio", "audio1"...): the newest dts sent
        self.items_played = 0
        self._replaced = False  # a new schedule came (PATCH): the item playing ends now
        self._first_video: Track | None = None  # the video track players were first told about (their init)
        self._mixed = False  # an item's video differed from the first: every item's parameter sets go in band
        self._first_audio: Track | None = None  # the audio track players were first told about
        # the channel's audio tracks (one per AudioMap item) are its stream's, fixed while it plays
        self._audio_map = schedule.stream.audio_map if schedule.stream.audio_track else ()

    @property
    def name(self) -> str:
        return self.schedule.name

    def start(self) -> None:
        self._thread.start()

    def close(self, reason: str) -> None:
        if not self._stop_reason:
            self._stop_reason = reason
        self._thread.stop()
        self._wake_live(reason)

    def replace(self, schedule: Schedule) -> None:
        """Play ``schedule`` from now on, on the same stream (OME updates a channel whose file changed)."""
        if (schedule.stream.audio_map if schedule.stream.audio_track else ()) != self._audio_map:
            log.warning("scheduled channel audioMap changed where=%s stream=%s: the channel's audio tracks stay as "
                        "they were until it starts again", self.where, self.name)
        self.schedule = schedule
        self._fallback_next = 0
        self._replaced = True
        self._wake_live("schedule replaced")

    def _wake_live(self, reason: str) -> None:
        queue = self._live_queue
        if queue is not None:
            queue.end(reason)

    @property
    def alive(self) -> bool:
        return self._thread.alive and not self._thread.stopping

    def join(self, timeout: float) -> bool:
        return self._thread.join(timeout)

    def _crashed(self, exc: Exception) -> None:
        self.hooks.finished(f"schedule worker failed: {exc}")

    def _run(self) -> None:
        try:
            stream = self.hooks.open_stream(self.close)
        except PublishRejected as exc:
            log.warning("scheduled channel refused where=%s stream=%s error=%s", self.where, self.name, exc)
            self.hooks.finished(str(exc))
            return
        self._stream = stream
        self._describe(stream)
        log.info("scheduled channel started where=%s stream=%s programs=%d fallback=%s", self.where, self.name,
                 len(self.schedule.programs), self.schedule.fallback is not None)
        for line in unimplemented(self.schedule):
            log.warning("scheduled channel where=%s stream=%s: %s", self.where, self.name, line)
        try:
            while not self._thread.stopping:
                self._replaced = False
                now_ms = self._channel_now_ms()
                slot = on_air(self.schedule, now_ms, self.lengths, self._fallback_next)
                if isinstance(slot, Idle):
                    self._show(None)
                    wait = IDLE_CHECK_S if slot.until_ms is None else min(IDLE_CHECK_S, (slot.until_ms - now_ms) / 1000)
                    self._thread.wait(max(0.01, wait))
                    continue
                if slot.program is None:
                    self._fallback_next = slot.index + 1
                self._show(slot)
                if not self._play(stream, slot):
                    self.lengths.failed(slot.item)
        finally:
            if self.board is not None:
                self.board.clear(self.key)
            self.feeds.clear(self.key, self)
            stream.end(self._stop_reason or "schedule ended")
            log.info("scheduled channel stopped where=%s stream=%s reason=%s items=%d", self.where, self.name,
                     self._stop_reason, self.items_played)
            self.hooks.finished(self._stop_reason or "schedule ended")

    def _describe(self, stream: LiveStream) -> None:
        """Tell the channel's stream which tracks to wait for, and how its audio tracks are labelled."""
        kinds = set()
        if self.schedule.stream.video_track:
            kinds.add(MediaKind.VIDEO)
        if self.schedule.stream.audio_track:
            kinds.add(MediaKind.AUDIO)
        stream.expected = kinds
        if self._audio_map:  # the channel carries one audio track per item, labelled (OME: ScheduledApplication)
            stream.audio_map = tuple(AudioLabel(i.name, i.language, i.characteristics) for i in self._audio_map)
            stream.expected_audio_tracks = len(self._audio_map)

    def _channel_now_ms(self) -> int:
        """The wall time at which the next item will be seen: packets go out ``LEAD_S`` ahead of the channel
        clock, so an item ends that much before its time by the clock on the wall. Deciding at the wall time
        would start the ended item again for its last moment."""
        wall = time.time()
        if self._anchor is not None:
            wall += max(0.0, self._anchor + self._base / TICKS - time.monotonic())
        return int(wall * 1000)

    @property
    def _first_video_id(self) -> int:
        return self._first_video.id if self._first_video is not None else -1

    def _inband_parameter_sets(self, track: Track, slot: Slot) -> bytes:
        """An item whose video differs from the channel's first (another size, profile …) cannot change what
        players were initialised with (LL-HLS's init segment, fixed for the stream): for H.264 its parameter sets
        go in band, before each keyframe's slices, where decoders take them (and once items differ, every
        item's, since a decoder keeps the last ones it saw); other codecs are warned about."""
        if self._first_video is None:
            self._first_video = track
            return b""
        if track.config == self._first_video.config and not self._mixed:
            return b""
        self._mixed = True  # from now on even the first item's sets go in band: decoders hold the last ones
        if track.codec is Codec.H264 and self._first_video.codec is Codec.H264:
            try:
                config = h264.parse_avcc(track.config)
            except CodecConfigError:
                config = None
            if config is not None and config.nal_length_size == 4:
                return nal.to_length_prefixed([*config.sps, *config.pps])
        log.warning("schedule item video differs from the channel's where=%s stream=%s url=%s codec=%s: players "
                    "started on the first item's configuration may not show it", self.where, self.name,
                    slot.item.url, track.codec.value)
        return b""

    def _check_audio(self, track: Track, slot: Slot) -> None:
        """Audio cannot change what players were initialised with either (a live camera at 44.1 kHz between files
        at 48 kHz plays at the wrong pace): said, once per item that differs, naming both."""
        first = self._first_audio
        if first is None:
            self._first_audio = track
            return
        if (track.codec, track.sample_rate, track.channels) != (first.codec, first.sample_rate, first.channels):
            log.warning("schedule item audio differs from the channel's where=%s stream=%s url=%s audio=%s/%dHz/%dch "
                        "channel=%s/%dHz/%dch: players started on the first item's audio may play it wrongly",
                        self.where, self.name, slot.item.url, track.codec.value, track.sample_rate, track.channels,
                        first.codec.value, first.sample_rate, first.channels)

    def _show(self, slot: Slot | None) -> None:
        target = slot.item.stream_target if slot is not None else None
        if target is not None:  # said before the item checks its source again, so two closing a loop see each other
            self.feeds.set(self.key, self, (target,))
        else:
            self.feeds.clear(self.key, self)
        if self.board is None:
            return
        if slot is None:
            self.board.set(self.key, None)
            return
        end = None
        if slot.program is not None:
            found = current_program(self.schedule, slot.program.scheduled_ms)
            end = found[1] if found is not None else None
        self.board.set(self.key, OnAir(slot, end, time.time()))

    def _play(self, stream: LiveStream, slot: Slot) -> bool:
        """Play one slot; False when its file could not be played (it is then skipped until it changes)."""
        if slot.item.stream_target is not None:
            return self._play_live(stream, slot)
        path = self.lengths.path(slot.item)
        try:
            container = av.open(str(path))
        except (av.FFmpegError, OSError) as exc:
            log.warning("schedule item failed where=%s stream=%s url=%s error=%s", self.where, self.name,
                        slot.item.url, exc)
            return False
        with container:
            return self._demux(stream, container, slot)

    def _demux(self, stream: LiveStream, container: av.container.InputContainer, slot: Slot) -> bool:
        converter = AvConverter()
        chosen = []
        channel = self.schedule.stream
        for kind, wanted in (("video", 1 if channel.video_track else 0),
                             ("audio", max(1, len(self._audio_map)) if channel.audio_track else 0)):
            # the file's first track of the kind; with an AudioMap its first N audio tracks, one per item (as OME:
            # a file with fewer cannot play, the channel's tracks are fixed)
            found = [s for s in container.streams if s.type == kind and s.codec_context is not None
                     and CODECS.get(s.codec_context.name) is not None][:wanted]
            if not found and wanted:
                log.warning("schedule item has no %s track where=%s stream=%s url=%s", kind, self.where, self.name,
                            slot.item.url)
                return False
            if len(found) < wanted:
                log.warning("schedule item has fewer audio tracks than its AudioMap where=%s stream=%s url=%s "
                            "found=%d wanted=%d", self.where, self.name, slot.item.url, len(found), wanted)
                return False
            for track in found:
                ctx = track.codec_context
                converter.add_track(track.index, CODECS[ctx.name], TIME_BASE, bytes(ctx.extradata or b""),
                                    sample_rate=int(getattr(ctx, "sample_rate", 0) or 0),
                                    channels=int(getattr(ctx, "channels", 0) or 0))
                chosen.append(track)
        start_ms = slot.item.start_ms + slot.offset_ms
        try:
            if start_ms > 0:
                container.seek(start_ms * 1000, backward=True, any_frame=False)
            return self._feed(stream, container, chosen, converter, slot)
        except (av.FFmpegError, OSError, EOFError) as exc:
            log.warning("schedule item failed where=%s stream=%s url=%s error=%s", self.where, self.name,
                        slot.item.url, exc)
            return False

    def _feed(self, stream: LiveStream, container: av.container.InputContainer, chosen: list[av.stream.Stream],
              converter: AvConverter, slot: Slot) -> bool:
        base = self._base
        self._anchor_at(base)
        zero: Fraction | None = None
        end = base
        limit = Fraction(slot.play_ms, 1000)
        inband = b""  # this item's SPS/PPS, sent in its keyframes when they differ from what players started with
        # timestamps go forward per channel track (kind, and position among the kind's: several audio tracks of an
        # AudioMap share a clock, not a last dts), whatever file index it has
        kind_of = {s.index: key for s, key in zip(chosen, _track_keys([s.type for s in chosen]), strict=True)}
        log.info("schedule item where=%s stream=%s program=%s url=%s offset_ms=%d play_ms=%d", self.where, self.name,
                 slot.program.name if slot.program is not None else "fallback", slot.item.url, slot.offset_ms,
                 slot.play_ms)
        interrupted = False
        failback = _Failback(self, slot)
        for packet in container.demux(*chosen):
            if self._thread.stopping or self._replaced or failback():
                interrupted = True
                break
            if packet.dts is None or packet.size == 0 or packet.time_base is None:
                continue
            tb = Fraction(packet.time_base)
            at = packet.dts * tb
            if zero is None:
                zero = at
            rel = at - zero
            if rel < 0:
                continue  # before the item's first packet (another track's lead-in)
            if rel >= limit:
                break
            dts = base + round(rel * TICKS)
            pts = base + round(((packet.pts if packet.pts is not None else packet.dts) * tb - zero) * TICKS)
            duration = round((packet.duration or 0) * tb * TICKS)
            key = packet.stream.index
            if dts <= self._last_dts.get(kind_of[key], -1):
                continue
            self._last_dts[kind_of[key]] = dts
            end = max(end, dts + duration, pts + duration)
            delay = self._delay(dts)
            if delay > 0 and self._thread.wait(delay):
                return True
            track, packets = converter.convert_data(key, bytes(packet), dts, pts, duration, bool(packet.is_keyframe))
            if track is not None:
                stream.on_track(track)
                if track.kind is MediaKind.VIDEO:
                    inband = self._inband_parameter_sets(track, slot)
                else:
                    self._check_audio(track, slot)
            for p in packets:
                if inband and p.keyframe and p.track_id == self._first_video_id:
                    p = Packet(p.track_id, p.pts, p.dts, p.time_base, inband + p.data, True, p.duration, p.config)
                stream.ingest(p)
        played = end > base
        # the next item starts where this one ended; an item cut short by its program's end also ends here
        self._base = max(end, base + 1)
        if played:
            self.items_played += 1
        return played or interrupted  # cut short by a stop or a new schedule: not a file that failed

    def _anchor_at(self, base: int) -> None:
        """Where the channel clock is on the wall: kept while the channel is on time, moved when it is late (the
        first item, or after nothing was on air)."""
        if self._anchor is None or time.monotonic() - (self._anchor + base / TICKS) > LEAD_S:
            self._anchor = time.monotonic() - base / TICKS

    def _delay(self, dts: int) -> float:
        """How long to wait before sending a packet of channel time ``dts`` (0: now)."""
        assert self._anchor is not None
        return max(0.0, self._anchor + dts / TICKS - LEAD_S - time.monotonic())

    # -- stream:// items -----------------------------------------------------------------------------------------
    def _source_hub(self, item: Item) -> StreamHub | None:
        """The output hub of the live stream a stream:// item names, if it is live (and sent something lately) with
        every track the channel takes (OME: "Failed to find video track(s) from stream" is an error of the item)."""
        target = item.stream_target
        if target is None or self.outputs is None:
            return None
        found = self.outputs.find_output(*target)
        hub: StreamHub | None = found[1].hub if found is not None else None
        if found is None or hub is None or hub.closed_reason is not None:
            return None
        if found[0] is self._stream:  # its own output (by any output name): it would play its own echo
            if item.url not in self._told_self:
                self._told_self.add(item.url)
                log.warning("schedule item names the channel itself where=%s stream=%s url=%s: it cannot play",
                            self.where, self.name, item.url)
            return None
        loop = loop_back(self.key, self._stream, target, self.outputs, self.feeds)
        if loop is not None:
            if self._told_loop.get(item.url) != loop:
                self._told_loop[item.url] = loop
                log.warning("schedule item plays a channel that plays this one where=%s stream=%s url=%s loop=%s: "
                            "it cannot play (each would echo the other)", self.where, self.name, item.url, loop)
            return None
        self._told_loop.pop(item.url, None)
        silent_s = time.time() - found[0].last_packet_wall
        if silent_s > max(SILENT_S, self.schedule.stream.error_tolerance_ms / 1000):
            return None  # open but sending nothing (a publisher that stalled): not live, the fallback plays on
        kinds = {t.kind for t in list(hub.tracks.values())}
        if (self.schedule.stream.video_track and MediaKind.VIDEO not in kinds) or (
                self.schedule.stream.audio_track and MediaKind.AUDIO not in kinds):
            return None
        return hub

    def _live_tracks(self, hub: StreamHub) -> list[Track] | None:
        """The source tracks the channel takes: its first video, then its first audio, or with an AudioMap its
        first N audio tracks (as a file item's, whose tracks are numbered in that order), each kind wanted by the
        channel; None when the source has fewer audio tracks than the map (it cannot play, as such a file)."""
        tracks = sorted(hub.tracks.values(), key=lambda t: t.id)
        chosen = []
        channel = self.schedule.stream
        for kind, wanted in ((MediaKind.VIDEO, 1 if channel.video_track else 0),
                             (MediaKind.AUDIO, max(1, len(self._audio_map)) if channel.audio_track else 0)):
            found = [t for t in tracks if t.kind is kind][:wanted]
            if self._audio_map and kind is MediaKind.AUDIO and len(found) < wanted:
                return None
            chosen.extend(found)
        return chosen

    def _play_live(self, stream: LiveStream, slot: Slot) -> bool:
        """Play a stream:// item from its source's last keyframe; False when the source is not live or sent
        nothing (the item then counts as failed: ``fallbackOnErr``)."""
        hub = self._source_hub(slot.item)
        if hub is None:
            log.warning("schedule live item not live where=%s stream=%s url=%s", self.where, self.name, slot.item.url)
            return False
        chosen = self._live_tracks(hub)
        if chosen is None:
            log.warning("schedule live item has fewer audio tracks than its AudioMap where=%s stream=%s url=%s",
                        self.where, self.name, slot.item.url)
            return False
        new_ids = {t.id: index for index, t in enumerate(chosen)}
        kinds = {index: t.kind for index, t in enumerate(chosen)}
        keys = _track_keys([t.kind.value.lower() for t in chosen])
        codecs = {index: t.codec for index, t in enumerate(chosen)}
        video_id = next((t.id for t in chosen if t.kind is MediaKind.VIDEO), None)

        def begin(packet: Packet, tb: Fraction) -> Fraction | None:
            """The item starts at a video keyframe (any packet without video): it is the channel's ``base``."""
            if video_id is not None and not (packet.keyframe and packet.track_id == video_id):
                return None
            return -packet.dts * tb

        label = f"schedule {self.where}/{self.name} <- {slot.item.url}"
        queue = self._live_queue = Subscriber(label, max_packets=LIVE_QUEUE_PACKETS, policy="drop")
        if self._thread.stopping or self._replaced:
            queue.end("stopping")
        tap = HubTap(label, hub, Retimer(new_ids, {t.id: t.time_base for t in chosen}, begin, TIME_BASE), queue,
                     lambda reason: queue.end(f"source stream ended: {reason}"))
        base = self._base
        self._anchor_at(base)
        limit = slot.play_ms * TICKS // 1000
        configs = {index: t.config for index, t in enumerate(chosen)}
        described: dict[int, bytes] = {}  # channel track id -> the config it was last announced with
        inband = b""
        end = base
        interrupted = False
        tolerance_s = max(MIN_TOLERANCE_S, self.schedule.stream.error_tolerance_ms / 1000)
        wait_s = max(tolerance_s, FIRST_PACKET_S)
        how = "played its duration"
        tap.open()
        log.info("schedule item where=%s stream=%s program=%s url=%s play_ms=%d source_subscribers=%d", self.where,
                 self.name, slot.program.name if slot.program is not None else "fallback", slot.item.url,
                 slot.play_ms, len(hub.subscribers))
        failback = _Failback(self, slot)
        try:
            while True:
                if self._thread.stopping or self._replaced or failback():
                    interrupted = True
                    break
                packet = queue.get(wait_s)
                if packet is None:
                    if self._thread.stopping or self._replaced:
                        interrupted = True
                    elif queue.closed_reason is not None:
                        how = queue.closed_reason
                    else:
                        how = f"nothing for {int(wait_s * 1000)} ms"
                    break
                wait_s = tolerance_s
                if packet.dts >= limit:
                    break
                new_id = packet.track_id
                dts, pts = base + packet.dts, base + packet.pts
                if dts <= self._last_dts.get(keys[new_id], -1):
                    continue
                self._last_dts[keys[new_id]] = dts
                end = max(end, dts + packet.duration, pts + packet.duration)
                delay = self._delay(dts)
                if delay > 0 and self._thread.wait(delay):
                    interrupted = True
                    break
                if packet.config:
                    configs[new_id] = packet.config
                if described.get(new_id) != configs[new_id]:
                    try:
                        track = describe_track(new_id, codecs[new_id], configs[new_id], TIME_BASE)
                    except CodecConfigError as exc:
                        log.warning("schedule live item track unreadable where=%s stream=%s url=%s error=%s",
                                    self.where, self.name, slot.item.url, exc)
                        continue
                    if track.kind is MediaKind.AUDIO and not track.sample_rate:
                        source = chosen[new_id]
                        track = replace(track, sample_rate=source.sample_rate, channels=source.channels)
                    described[new_id] = configs[new_id]
                    stream.on_track(track)
                    if track.kind is MediaKind.VIDEO:
                        inband = self._inband_parameter_sets(track, slot)
                    else:
                        self._check_audio(track, slot)
                data = packet.data
                if inband and packet.keyframe and kinds[new_id] is MediaKind.VIDEO:
                    data = inband + data
                stream.ingest(Packet(new_id, pts, dts, TIME_BASE, data, packet.keyframe, packet.duration))
        finally:
            tap.close()
            self._live_queue = None
        played = end > base
        log.info("schedule live item ended where=%s stream=%s url=%s how=%s played_ms=%d source_subscribers=%d",
                 self.where, self.name, slot.item.url, "interrupted" if interrupted else how,
                 (end - base) * 1000 // TICKS, len(hub.subscribers))
        self._base = max(end, base + 1)
        if not interrupted and how != "played its duration":
            self.lengths.failed(slot.item)  # ended or silent: the fallback plays now, not another wait on it
        if played:
            self.items_played += 1
        return played or interrupted


def _track_keys(kinds: list[str]) -> list[str]:
    """The channel track each of an item's chosen tracks feeds, as the key its newest dts is kept under: a file's
    and a live item's tracks in the same order feed the same channel tracks ("video", "audio", "audio1"...)."""
    return [kind if (n := kinds[:index].count(kind)) == 0 else f"{kind}{n}" for index, kind in enumerate(kinds)]

"""One output stream published as LL-HLS: a packager per track, lives on the event loop.

Packets arrive from the output stream's hub (inline when the producer is the loop itself, else
through ``call_soon_threadsafe``). Blocked requests (``_HLS_msn``/``_HLS_part``, preload-hinted
parts, held masters) wait on a future that is replaced every time a part is produced: no polling,
and a viewer that goes away costs nothing but its own cancelled await.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import string
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.publish.llhls.dvr import DvrSettings, DvrStore, stream_directory
from kiln.media.publish.llhls.packager import Part, Segment, TrackPackager
from kiln.media.publish.llhls.playlist import (
    ChunklistOptions,
    Variant,
    chunklist_name,
    next_part,
    render_chunklist,
    render_master,
    segment_name,
)
from kiln.media.stream.groups import named_track
from kiln.media.stream.hub import CallbackSubscriber
from kiln.media.stream.live import LiveStream, OutputStream
from kiln.timefmt import now

if TYPE_CHECKING:  # a dump reads its stream: dump.py imports this module
    from kiln.media.publish.llhls.dump import HlsDump

log = logging.getLogger(__name__)

LLHLS_CODECS = (Codec.H264, Codec.H265, Codec.AAC)
_ALNUM = string.ascii_letters + string.digits
_EVENT_IDS = itertools.count()  # emsg ids are process-wide, as in OME


@dataclass(frozen=True)
class LlhlsSettings:
    chunk_duration: float = 0.5
    part_hold_back: float = 0.0
    segment_duration: float = 6.0
    segment_count: int = 10
    preload_hint: bool = True
    create_default_playlist: bool = True
    origin_mode: bool = False
    server_time_numbering: bool = False   # ServerTimeBasedSegmentNumbering: the first segment is epoch_ms / segment_ms
    dvr: DvrSettings = field(default_factory=DvrSettings)


def first_segment_number(settings: LlhlsSettings, epoch_s: float) -> int:
    """0, or with ``ServerTimeBasedSegmentNumbering`` (OME) the server's clock in segment durations, so a stream
    restarted, or served by another origin, goes on with higher numbers than players already saw."""
    if not settings.server_time_numbering:
        return 0
    return int(epoch_s * 1000) // max(1, int(settings.segment_duration * 1000))


def new_stream_key(name: str, origin_mode: bool) -> str:
    if origin_mode:
        return str(zlib.crc32(name.encode()))
    return "".join(secrets.choice(_ALNUM) for _ in range(8))


class LlhlsStream:
    def __init__(self, loop: asyncio.AbstractEventLoop, live: LiveStream, output: OutputStream,
                 settings: LlhlsSettings) -> None:
        self.loop = loop
        self.live = live
        self.output = output
        self.settings = settings
        self.key = new_stream_key(output.name, settings.origin_mode)
        self.packagers: dict[int, TrackPackager] = {}
        self._changed: asyncio.Future[None] = loop.create_future()
        # blocked fast-lane requests per track: all run by one loop callback at that track's next part (or the
        # end), so an audio part does not wake the video waiters, and a thousand waiters are one handle, not
        # a thousand future callbacks
        self._part_waiters: dict[int, list[Callable[[], None]]] = {}
        self._waking: set[int] = set()
        # per track: (msn, part index, time.monotonic()) of its newest part, for the player port's lateness
        # figures (kiln/http/answer_lateness.py)
        self._newest: dict[int, tuple[int, int, float]] = {}
        self.changes = 0  # counts wakes: a playlist rendered at one count holds until the next (server.py caches)
        self.concluded = False
        self.ended = False
        self.dumps: list[HlsDump] = []
        self.part_listeners: list[Callable[[TrackPackager, Part], None]] = []
        self.segment_listeners: list[Callable[[TrackPackager, Segment], None]] = []
        # Spilled segments' files: the DVR window beyond the live one, or (no DVR) the grace segments,
        # which OME keeps downloadable after they leave the playlist (media-spec §2.4) but nobody
        # following the stream asks for: on disk they leave the process's memory (a 720p stream's
        # three 2 s grace segments are about 2 MB), and are deleted when they leave retention.
        self.dvr: DvrStore | None = DvrStore(loop, stream_directory(settings.dvr.temp_storage_path, live.vhost,
                                                                    live.app, output.name, self.key))
        dvr_window = settings.dvr.max_duration if settings.dvr.enabled else 0.0
        first = first_segment_number(settings, time.time())  # one number for every track: renditions align
        for ot in output.tracks:
            track = ot.track
            if track is None or track.codec not in LLHLS_CODECS:
                continue
            self.packagers[track.id] = TrackPackager(
                track, chunk_duration=settings.chunk_duration, segment_duration=settings.segment_duration,
                segment_count=settings.segment_count, on_part=self._on_part, on_segment=self._on_segment,
                event_ids=lambda: next(_EVENT_IDS), dvr_window=dvr_window, on_spill=self._spill,
                on_drop=self._drop, spill_grace=True, first_segment_number=first)
        self._loop_thread = threading.get_ident()
        self._inbox: list[Packet] = []  # packets offered from other threads, taken on the loop
        self._inbox_lock = threading.Lock()
        self._inbox_scheduled = False
        self._subscriber = CallbackSubscriber(f"llhls:{output.name}", self._offer, self._hub_ended)
        output.hub.subscribe(self._subscriber, from_keyframe=True)

    # -- media input --
    def _offer(self, packet: Packet) -> None:
        if threading.get_ident() == self._loop_thread:
            self._on_packet(packet)
            return
        # From an ingest thread (SRT, MPEG-TS, RTSP demuxers): packets queue in order and one loop
        # wake-up takes every packet queued by then, instead of one self-pipe write and wake-up each.
        with self._inbox_lock:
            self._inbox.append(packet)
            if self._inbox_scheduled:
                return
            self._inbox_scheduled = True
        self.loop.call_soon_threadsafe(self._take_inbox)

    def _take_inbox(self) -> None:
        with self._inbox_lock:
            packets, self._inbox = self._inbox, []
            self._inbox_scheduled = False
        for packet in packets:
            self._on_packet(packet)

    def _on_packet(self, packet: Packet) -> None:
        pkg = self.packagers.get(packet.track_id)
        if pkg is not None:
            # the wall clock of the packet's arrival, not of this moment: a packet replayed from the
            # GOP cache at start would otherwise stamp PROGRAM-DATE-TIME late (per packet: no max())
            wall = now()
            if packet.arrival:
                late = time.monotonic() - packet.arrival
                if late > 0.0:
                    wall -= late
            pkg.push(packet, wall)

    def _hub_ended(self, reason: str) -> None:
        if threading.get_ident() == self._loop_thread:
            self.end(reason)
        else:
            self.loop.call_soon_threadsafe(self.end, reason)

    def _on_part(self, pkg: TrackPackager, part: Part) -> None:
        self._newest[pkg.track.id] = (part.segment, part.index, time.monotonic())
        for listener in list(self.part_listeners):
            try:
                listener(pkg, part)
            except Exception:
                log.exception("llhls part listener failed stream=%s", self.output.name)
        self._wake()
        tid = pkg.track.id
        if tid in self._part_waiters and tid not in self._waking:
            self._waking.add(tid)
            self.loop.call_soon(self._run_waiters, tid)

    def _on_segment(self, pkg: TrackPackager, seg: Segment) -> None:
        for listener in list(self.segment_listeners):
            try:
                listener(pkg, seg)
            except Exception:
                log.exception("llhls segment listener failed stream=%s", self.output.name)

    def _spill(self, pkg: TrackPackager, seg: Segment, data: bytes) -> None:
        if self.dvr is not None:
            self.dvr.put(segment_name(pkg.track, seg.number, self.key), data)

    def _drop(self, pkg: TrackPackager, seg: Segment) -> None:
        if self.dvr is not None and seg.spilled:
            self.dvr.delete(segment_name(pkg.track, seg.number, self.key))

    async def segment_data(self, pkg: TrackPackager, number: int) -> bytes | None:
        """A completed segment's bytes, from memory or (DVR) from its file; None if not retained."""
        seg = pkg.segment(number)
        if seg is None or not seg.complete:
            return None
        if not seg.spilled:
            return seg.data
        if self.dvr is None:
            return None
        return await self.dvr.read(segment_name(pkg.track, number, self.key))

    def _wake(self) -> None:
        self.changes += 1
        fut, self._changed = self._changed, self.loop.create_future()
        if not fut.done():
            fut.set_result(None)

    def _run_waiters(self, track_id: int | None) -> None:
        """Call the waiters of one track (None: of every track); a waiter that still waits registers again,
        for the next part."""
        ids = [track_id] if track_id is not None else list(self._part_waiters)
        for tid in ids:
            self._waking.discard(tid)
            for callback in self._part_waiters.pop(tid, ()):
                try:
                    callback()
                except Exception:
                    log.exception("llhls part waiter failed stream=%s", self.output.name)

    def on_part_of(self, pkg: TrackPackager, callback: Callable[[], None]) -> None:
        """Call ``callback`` at ``pkg``'s next part, or when the stream ends or concludes."""
        self._part_waiters.setdefault(pkg.track.id, []).append(callback)

    def part_ready(self, pkg: TrackPackager, msn: int | None = None, index: int | None = None) -> float:
        """time.monotonic() when ``pkg``'s newest part became available (if it is ``(msn, index)``, when given);
        0.0 otherwise."""
        newest = self._newest.get(pkg.track.id)
        if newest is None or (msn is not None and (newest[0] != msn or newest[1] != index)):
            return 0.0
        return newest[2]

    def on_next_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` at the next part (or the end): one future per part shared by every blocked
        request, each a plain callback (no task), so a thousand blocked viewers cost no wake-up storm."""
        self._changed.add_done_callback(lambda _fut: callback())

    async def wait_change(self, timeout: float) -> bool:
        """Wait until the next part (or the end); False on timeout."""
        try:
            await asyncio.wait_for(asyncio.shield(self._changed), timeout)
            return True
        except TimeoutError:
            return False

    # -- state --
    @property
    def ready(self) -> bool:
        """Every track has a completed segment (OME holds the master until then)."""
        return bool(self.packagers) and all(p.completed_segments() for p in self.packagers.values())

    def track_by_id(self, track_id: int) -> TrackPackager | None:
        return self.packagers.get(track_id)

    def chunklist(self, pkg: TrackPackager, query: str, *, legacy: bool, rewind: bool) -> str:
        reports = []
        if not legacy:
            for other in self.packagers.values():
                if other is pkg or other.track.kind is not pkg.track.kind:
                    continue
                last = other.last_part()
                if last is not None:
                    reports.append((chunklist_name(other.track, self.key) + (f"?{query}" if query else ""),
                                    last[0], last[1]))
        longest = max(p.max_segment_duration / p.timescale for p in self.packagers.values())
        opts = ChunklistOptions(self.key, query, legacy, rewind, self.settings.part_hold_back,
                                self.settings.segment_duration, longest, self.settings.preload_hint,
                                self.concluded or pkg.concluded)
        return render_chunklist(pkg, opts, reports)

    # -- masters --
    def playlist_files(self) -> dict[str, dict[str, Any]]:
        """file name (without .m3u8) -> playlist config; the default ``llhls`` unless replaced."""
        out: dict[str, dict[str, Any]] = {}
        if self.settings.create_default_playlist:
            out["llhls"] = {}
        for p in self.output.playlists():
            name = str(p.get("fileName") or "")
            if name:
                out[name] = p
        return out

    def master(self, file_name: str, query: str, prefix: str) -> str | None:
        playlists = self.playlist_files()
        if file_name not in playlists:
            return None
        config = playlists[file_name]
        tracks = [p.track for p in self.packagers.values()]
        videos = [t for t in tracks if t.kind is MediaKind.VIDEO]
        audios = [t for t in tracks if t.kind is MediaKind.AUDIO]
        groups: dict[str, list[Track]] = {}
        for audio in audios:
            groups.setdefault(self._audio_group(audio), []).append(audio)
        variants: list[Variant] = []
        renditions = config.get("renditions") or config.get("rendition") or []
        if isinstance(renditions, dict):
            renditions = [renditions]
        if not config or not renditions:
            v = videos[0] if videos else None
            a = audios[0] if audios else None
            variants.append(self._variant(v, a))
        else:
            for r in renditions:
                if not isinstance(r, dict):
                    continue
                v = named_track(videos, str(r.get("video") or ""), r.get("videoIndexHint"))  # a simulcast layer
                a = named_track(audios, str(r.get("audio") or ""), r.get("audioIndexHint"))
                if r.get("video") and v is None or r.get("audio") and a is None:
                    continue  # references a track LL-HLS cannot carry: dropped, as in OME
                if v is None and a is None:
                    continue
                variants.append(self._variant(v, a))
        return render_master(variants, groups, key=self.key, query=query, prefix=prefix)

    def _variant(self, video: Track | None, audio: Track | None) -> Variant:
        def bitrate(t: Track | None) -> int:
            if t is None:
                return 0
            meter = self.output.meters.get(t.id)
            return t.bitrate_conf or (meter.bitrate_avg if meter else 0)

        framerate = 0.0
        if video is not None:
            meter = self.output.meters.get(video.id)
            framerate = video.framerate_conf or (meter.framerate_avg if meter else 0.0)
        group = self._audio_group(audio) if audio is not None else ""
        return Variant(video, audio, group, bitrate(video) + bitrate(audio), framerate)

    def _audio_group(self, audio: Track) -> str:
        """An audio track's GROUP-ID: its encode's name; an unnamed encode's tracks (one per input audio track
        with an AudioMap) share ``audio_{id}`` of the first of them."""
        if audio.name:
            return audio.name
        encode = next((t.encode for t in self.output.tracks if t.id == audio.id), None)
        first = next((t.id for t in self.output.tracks if t.encode is encode and t.kind is MediaKind.AUDIO),
                     audio.id) if encode is not None else audio.id
        return f"audio_{first}"

    # -- control --
    def add_event(self, event_type: str, time_ms: int, message: bytes) -> int:
        """Queue an ID3 tag for the packagers chosen by eventType; returns how many took it."""
        taken = 0
        for pkg in self.packagers.values():
            kind = pkg.track.kind
            if event_type == "event" or (event_type == "video" and kind is MediaKind.VIDEO) or (
                    event_type == "audio" and kind is MediaKind.AUDIO):
                pkg.add_event(time_ms, message)
                taken += 1
        return taken

    def conclude(self) -> None:
        if self.concluded:
            return
        self.concluded = True
        for pkg in self.packagers.values():
            pkg.conclude()
        self._wake()
        if self._part_waiters:
            self.loop.call_soon(self._run_waiters, None)

    def end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        self._subscriber.close()
        for pkg in self.packagers.values():
            pkg.conclude()
        log.info("llhls stream ended stream=%s reason=%s", self.output.name, reason)
        self._wake()
        if self._part_waiters:
            self.loop.call_soon(self._run_waiters, None)

    def release(self) -> None:
        """Drop the media this ended stream still holds. Its objects sit in reference cycles
        (futures, callbacks), so without this the segments waited for a full GC: about 300 kB per
        ended 320x180 stream, megabytes for 720p. Dumps already hold what they still write."""
        for pkg in self.packagers.values():
            pkg.segments.clear()
        if self.dvr is not None:
            self.dvr.close()

    def next_part_of(self, pkg: TrackPackager) -> tuple[int, int]:
        return next_part(pkg)

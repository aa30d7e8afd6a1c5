"""One output stream published as HLS v3: its TS variants, cut on one worker thread.

The stream subscribes to the output's hub from a keyframe; its worker thread muxes every packet
into each variant that carries the packet's track (PyAV, never on the event loop). Readers on the
event loop see finished segments only. As a publisher (contract.py) it counts the bytes players are
served from it. With DVR, segments older than the live window are handed to a DvrStore (llhls/dvr.py):
the worker thread parks their bytes in ``_pending`` and the event loop moves them into the store, so
a reader on the loop finds a spilled segment in one place or the other, never in neither.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.publish.hls.playlist import TsVariant, VariantInfo, segment_name
from kiln.media.publish.hls.segmenter import TsSegment, TsSegmenter
from kiln.media.publish.hls.tsbytes import MemoryTsMuxer
from kiln.media.publish.llhls.dvr import DvrSettings, DvrStore
from kiln.media.publish.push.net import PushError
from kiln.media.stream.hub import Subscriber
from kiln.media.stream.live import OutputStream
from kiln.media.worker import WorkerThread

log = logging.getLogger(__name__)

TS_CODECS = (Codec.H264, Codec.H265, Codec.AAC)
DEFAULT_PLAYLIST = "playlist"


@dataclass(frozen=True)
class HlsSettings:
    segment_duration: float = 5.0
    segment_count: int = 3
    create_default_playlist: bool = True
    origin_mode: bool = False
    dvr: DvrSettings = field(default_factory=DvrSettings)


class ServedBytes:
    """Bytes players were served from one stream (playlists and segments)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = 0

    def add(self, n: int) -> None:
        with self._lock:
            self._bytes += n

    @property
    def bytes_out(self) -> int:
        return self._bytes


def _renditions(playlist: dict[str, Any]) -> list[dict[str, Any]]:
    raw = playlist.get("renditions") or playlist.get("rendition") or []
    return [r for r in (raw if isinstance(raw, list) else [raw]) if isinstance(r, dict)]


def ts_packaging(playlist: dict[str, Any]) -> bool:
    options = playlist.get("options")
    value = options.get("enableTsPackaging") if isinstance(options, dict) else None
    return str(value).strip().lower() == "true"


class HlsStream:
    def __init__(self, output: OutputStream, settings: HlsSettings, dvr: DvrStore | None = None) -> None:
        self.output = output
        self.settings = settings
        self.dvr = dvr  # given only when settings.dvr is enabled
        self._pending: dict[str, bytes] = {}  # spilled by the worker, not yet handed to the store
        self._pending_lock = threading.Lock()
        self.counters = ServedBytes()
        tracks = [t for t in output.track_list() if t.codec in TS_CODECS]
        self.videos = [t for t in tracks if t.kind is MediaKind.VIDEO]
        self.audios = [t for t in tracks if t.kind is MediaKind.AUDIO]
        self.playlists = self._playlists()
        self.segmenters: dict[str, tuple[TsVariant, TsSegmenter]] = {}
        for variants in self.playlists.values():
            for v in variants:
                if v.name not in self.segmenters:
                    self.segmenters[v.name] = (v, self._segmenter(v))
        self.ended = False
        self._sub = Subscriber(f"hls:{output.name}", max_packets=3000, policy="drop",
                               video_track_ids=frozenset(t.id for t in self.videos))
        self._worker = WorkerThread(f"hls-{output.name}", self._run, self._crashed)
        self._started = False
        self._detached = False  # ``ended`` is also set by the worker when the hub ends first

    # -- what is published --
    def _playlists(self) -> dict[str, list[TsVariant]]:
        """file name (without .m3u8) -> its variants: ``playlist`` by default, plus every OutputProfile
        playlist with EnableTsPackaging; a rendition naming a track TS cannot carry is dropped."""
        out: dict[str, list[TsVariant]] = {}
        if self.settings.create_default_playlist and (self.videos or self.audios):
            out[DEFAULT_PLAYLIST] = [TsVariant(self.videos[0] if self.videos else None,
                                               self.audios[0] if self.audios else None)]
        for p in self.output.playlists():
            name = str(p.get("fileName") or "")
            if not name or not ts_packaging(p):
                continue
            variants: list[TsVariant] = []
            for r in _renditions(p):
                v = next((t for t in self.videos if t.name == str(r.get("video") or "")), None)
                a = next((t for t in self.audios if t.name == str(r.get("audio") or "")), None)
                if (r.get("video") and v is None) or (r.get("audio") and a is None) or (v is None and a is None):
                    continue
                if TsVariant(v, a) not in variants:
                    variants.append(TsVariant(v, a))
            if variants:
                out[name] = variants
        return out

    def _segmenter(self, variant: TsVariant) -> TsSegmenter:
        cut = variant.video or variant.audio
        assert cut is not None
        tracks = variant.tracks
        label = f"hls:{self.output.name}/{variant.name}"
        if self.dvr is None:
            return TsSegmenter(cut.id, frozenset(t.id for t in tracks), self.settings.segment_duration,
                               self.settings.segment_count, lambda: MemoryTsMuxer(label, tracks))
        return TsSegmenter(cut.id, frozenset(t.id for t in tracks), self.settings.segment_duration,
                           self.settings.segment_count, lambda: MemoryTsMuxer(label, tracks),
                           dvr_window=self.settings.dvr.max_duration,
                           on_spill=lambda seg: self._spill(variant, seg),
                           on_drop=lambda seg: self._drop(variant, seg))

    # -- DVR (spill and drop run on the worker thread; the store lives on the event loop) --
    def _spill(self, variant: TsVariant, seg: TsSegment) -> None:
        name = segment_name(variant, seg.number)
        with self._pending_lock:
            self._pending[name] = seg.data
        self._on_loop(self._store, name)

    def _store(self, name: str) -> None:
        with self._pending_lock:
            data = self._pending.pop(name, None)
        if data is not None and self.dvr is not None:
            self.dvr.put(name, data)

    def _drop(self, variant: TsVariant, seg: TsSegment) -> None:
        if seg.spilled and self.dvr is not None:
            name = segment_name(variant, seg.number)
            with self._pending_lock:
                self._pending.pop(name, None)
            self._on_loop(self.dvr.delete, name)

    def _on_loop(self, fn: Callable[..., None], *args: str) -> bool:
        """Run ``fn`` on the store's loop; False if that loop is closed (shutdown)."""
        assert self.dvr is not None
        try:
            self.dvr.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            log.debug("hls dvr loop closed stream=%s", self.output.name)
            return False
        return True

    async def segment_bytes(self, variant_name: str, number: int) -> bytes | None:
        """A segment's TS bytes, from memory or (DVR) from its file; None if not retained."""
        seg = self.segment(variant_name, number)
        if seg is None:
            return None
        if not seg.spilled:
            return seg.data
        found = self.segmenters.get(variant_name)
        if found is None or self.dvr is None:
            return None
        name = segment_name(found[0], number)
        with self._pending_lock:
            data = self._pending.get(name)
        return data if data is not None else await self.dvr.read(name)

    def variant_infos(self, file_name: str) -> list[VariantInfo] | None:
        variants = self.playlists.get(file_name)
        if variants is None:
            return None
        return [VariantInfo(v, sum(self._bitrate(t) for t in v.tracks), self._framerate(v.video)) for v in variants]

    def _bitrate(self, track: Track) -> int:
        meter = self.output.meters.get(track.id)
        return track.bitrate_conf or (meter.bitrate_avg if meter else 0)

    def _framerate(self, video: Track | None) -> float:
        if video is None:
            return 0.0
        meter = self.output.meters.get(video.id)
        return video.framerate_conf or (meter.framerate_avg if meter else 0.0)

    def variant(self, name: str) -> tuple[TsVariant, TsSegmenter] | None:
        return self.segmenters.get(name)

    @property
    def ready(self) -> bool:
        """Every variant has a finished segment (a master is held until then, as for LL-HLS)."""
        return bool(self.segmenters) and all(s.segments for _, s in self.segmenters.values())

    def segment(self, variant_name: str, number: int) -> TsSegment | None:
        found = self.segmenters.get(variant_name)
        return found[1].segment(number) if found is not None else None

    # -- publisher contract --
    @property
    def attached(self) -> bool:
        return self._worker.alive

    def attach(self, output: OutputStream) -> None:
        if output is not self.output:
            raise ValueError("an HLS stream publishes the output it was made for")
        if self._started:
            return
        self._started = True
        output.hub.subscribe(self._sub, from_keyframe=True)
        self._worker.start()
        log.info("hls stream published stream=%s variants=%s", output.name, ",".join(self.segmenters))

    def detach(self, reason: str) -> None:
        if self._detached:
            return
        self._detached = True
        self.ended = True
        self._worker.stop()
        self._sub.end(reason)
        self._worker.join(10.0)
        # queued behind the worker's last spills, so their files go too
        if self.dvr is not None and not self._on_loop(self._close_dvr):
            self._close_dvr()
        log.info("hls stream ended stream=%s reason=%s", self.output.name, reason)

    def _close_dvr(self) -> None:
        with self._pending_lock:
            self._pending.clear()
        if self.dvr is not None:
            self.dvr.close()

    # -- worker --
    def _run(self) -> None:
        try:
            while not self._worker.stopping:
                packet = self._sub.get(timeout=0.5)
                if packet is None:
                    if self._sub.ended:
                        break
                    continue
                self._mux(packet)
        finally:
            for _, seg in self.segmenters.values():
                self._finish(seg)
            self._sub.close()
            self.ended = True

    def _mux(self, packet: Packet) -> None:
        for variant, seg in self.segmenters.values():
            if seg.finished:
                continue
            try:
                seg.push(packet)
            except PushError as exc:  # one variant's muxer failing does not stop the others
                log.error("hls variant failed stream=%s variant=%s error=%s", self.output.name, variant.name, exc)
                seg.finished = True

    def _finish(self, seg: TsSegmenter) -> None:
        try:
            seg.finish()
        except PushError as exc:
            log.error("hls last segment lost stream=%s error=%s", self.output.name, exc)

    def _crashed(self, exc: Exception) -> None:
        self.ended = True

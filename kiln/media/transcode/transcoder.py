"""The transcoder of one live input: a worker thread per input track, shared decoders and encoders.

``add_video``/``add_audio``/``add_image`` are called while the output streams are being built: they
open the track's decoder (once) and the encoder for the resolved settings (once per distinct setting,
even across profiles) and return the output Track, complete with its decoder configuration (image
encodes return their settings: their stills go to a holder of the latest image, not to a hub). ``start``
subscribes to the input hub; packets are routed inline (cheap) into one bounded queue per input
track. When a worker falls behind real time its queue overflows: the queued packets are dropped,
counted and logged, and the worker resumes at the next video keyframe. Ingest and bypass outputs
never wait on it. PyAV releases the GIL while it decodes/scales/encodes, so the threads run in
parallel with the event loop.

Bad input never stops ingest: a decoder configuration that cannot be opened makes the track's encodes
``unavailable`` (with the reason) before they start; a corrupt packet is logged and skipped; a resolution
change reopens the decoder and rebuilds the scalers, so every output keeps its configured size; an input
that decodes to nothing marks its outputs failed until a frame comes out. When every encode of a video
track is an image encode, only keyframes are decoded (OME's ``Decodes/OnlyKeyframes``), as long as the
keyframes come often enough for the images asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic

import av

from kiln.control_cpu import free_thread
from kiln.media.model import MediaKind, Packet, Track
from kiln.media.stream.hub import CallbackSubscriber, StreamHub, Subscriber
from kiln.media.transcode.codecs import (
    AudioDecoder,
    AudioEncoder,
    CodecOpenError,
    Decoder,
    Encoder,
    FrameT,
    PacketMeter,
    Publish,
    Target,
    VideoDecoder,
    VideoEncoder,
)
from kiln.media.transcode.image import ImageEncoder, ImageSettings, image_settings
from kiln.media.transcode.settings import EncodeKey, EncodeSettingsError, audio_settings, video_settings

log = logging.getLogger(__name__)

VIDEO_QUEUE_PACKETS = 150   # about 5 s at 30 fps: beyond that the transcoder is not keeping up
AUDIO_QUEUE_PACKETS = 400
LOG_EVERY = 100
# an input track that has decoded no frame after this many packets is not decodable: its outputs are marked
# failed (and unmarked at the first frame). Frame threads hold back only a few frames, so 90 is ample.
UNDECODABLE_AFTER_PACKETS = 90
# keyframes-only decoding for image encodes stays on while keyframes come at least this often per image due
KEYFRAMES_ONLY_SLACK = 1.5
# OME's Decodes/ThreadCount default. Measured on 2 cores (720p30 -> 360p veryfast): 2 decoder threads gave
# 272 fps against 186 fps with FFmpeg's automatic count (0), which oversubscribes the cores x264 needs too.
DECODER_THREADS = 2


class EncodeUnavailable(Exception):
    """The encode cannot run (bad settings, decoder/encoder not opened); the message says why."""


@dataclass
class TrackWorker(Generic[FrameT]):
    """Decodes one input track and feeds every encoder of it, on its own thread."""

    label: str
    source: Track
    decoder: Decoder[FrameT]
    encoders: dict[EncodeKey, Encoder[FrameT]] = field(default_factory=dict)
    queue: Subscriber | None = None
    thread: threading.Thread | None = None
    decode_errors: int = 0
    packets_decoded: int = 0
    frames_decoded: int = 0
    skips_logged: int = 0
    stopping: bool = False
    undecodable: str = ""          # set while the input decoded nothing (its outputs are marked failed)
    # keyframes-only decoding (every encode is an image encode); decided on the ingest thread in ``admit``
    image_fps: float = 0.0         # the highest image rate asked for; 0 when some encode is not an image
    keyframes_only: bool = False
    non_key_skipped: int = 0
    _last_key_time: float | None = None

    def configure_keyframes_only(self) -> None:
        rates = [e.image_rate() for e in self.encoders.values()]
        image_rates = [r for r in rates if r is not None]
        if self.source.kind is MediaKind.VIDEO and rates and len(image_rates) == len(rates):
            self.image_fps = max(image_rates)
            self.keyframes_only = True
            log.info("transcode decodes keyframes only stream=%s track=%d image_fps=%s", self.label,
                     self.source.id, self.image_fps)

    def admit(self, packet: Packet) -> bool:
        """On the ingest thread: whether the packet goes to the decoder (cheap; never waits)."""
        if not self.image_fps:
            return True
        if packet.keyframe:
            t = float(packet.pts * packet.time_base)
            if self._last_key_time is not None and t > self._last_key_time:
                # keyframes too far apart for the images asked for: decode every frame (and back when they are not)
                sparse = (t - self._last_key_time) * self.image_fps > KEYFRAMES_ONLY_SLACK
                if sparse == self.keyframes_only:
                    self.keyframes_only = not sparse
                    log.info("transcode keyframes only stream=%s track=%d enabled=%s key_interval_s=%.3f "
                             "image_fps=%s", self.label, self.source.id, self.keyframes_only,
                             t - self._last_key_time, self.image_fps)
            self._last_key_time = t
            return True
        if self.keyframes_only:
            self.non_key_skipped += 1
            return False
        return True

    def run(self, publish: Publish) -> None:
        assert self.queue is not None
        free_thread()  # started from whichever thread opened the stream: not on the actors' CPU (control_cpu.py)
        last_dts: int | None = None
        while not self.stopping:
            packet = self.queue.get(timeout=0.5)
            if packet is None:
                if self.queue.ended:
                    break
                continue
            if last_dts is not None and packet.dts <= last_dts and packet.time_base == self.source.time_base:
                continue  # a packet seen twice (GOP cache replay racing a live publish)
            last_dts = packet.dts
            self._handle(packet, publish)
        if not self.stopping:
            self._flush(publish)  # the input finished (not stopped): the encoders' delayed frames go out too
        log.info("transcode worker stopped stream=%s track=%d decoded=%d decode_errors=%d non_key_skipped=%d "
                 "encoders=%s", self.label, self.source.id, self.frames_decoded, self.decode_errors,
                 self.non_key_skipped,
                 ",".join(f"{e.track.codec.value}:in={e.counters.frames_in}:out={e.counters.packets_out}"
                          for e in self.encoders.values()))

    def _flush(self, publish: Publish) -> None:
        try:
            frames = self.decoder.flush()
        except av.error.FFmpegError:
            frames = []
        self._encode(frames, publish)
        for enc in self.encoders.values():
            try:
                enc.emit(enc.flush(), publish)
            except (av.error.FFmpegError, ValueError) as exc:
                log.warning("transcode flush failed stream=%s track=%d error=%s", self.label, self.source.id, exc)

    def _handle(self, packet: Packet, publish: Publish) -> None:
        self.packets_decoded += 1
        try:
            frames = self.decoder.decode(packet)
        except (av.error.FFmpegError, CodecOpenError) as exc:
            self.decode_errors += 1
            if self.decode_errors % LOG_EVERY == 1:
                log.warning("transcode decode error stream=%s track=%d errors=%d error=%s; the output goes on",
                            self.label, self.source.id, self.decode_errors, exc)
            self._check_decodable(str(exc))
            return
        if frames:
            self.frames_decoded += len(frames)
            if self.undecodable:
                self._mark_undecodable("")
        else:
            self._check_decodable("")
        self._encode(frames, publish)

    def _check_decodable(self, error: str) -> None:
        if self.frames_decoded or self.undecodable or self.packets_decoded < UNDECODABLE_AFTER_PACKETS:
            return
        self._mark_undecodable(f"the {self.source.codec.value} input track {self.source.id} decoded no frame in "
                               f"{self.packets_decoded} packets" + (f" (last error: {error})" if error else ""))

    def _mark_undecodable(self, reason: str) -> None:
        """Mark (reason) or unmark ("") every output of this track: the API lists them unavailable meanwhile."""
        previous, self.undecodable = self.undecodable, reason
        for enc in self.encoders.values():
            for target in enc.targets:
                if target.failed == previous:
                    target.failed = reason
        if reason:
            log.error("transcode input undecodable stream=%s track=%d reason=%s; its outputs are unavailable",
                      self.label, self.source.id, reason)
        else:
            log.info("transcode input decodes again stream=%s track=%d", self.label, self.source.id)

    def _encode(self, frames: list[FrameT], publish: Publish) -> None:
        for frame in frames:
            for key, enc in list(self.encoders.items()):
                if enc.failed:
                    continue
                try:
                    enc.emit(enc.encode(frame), publish)
                except (av.error.FFmpegError, ValueError) as exc:
                    enc.failed = f"the {enc.track.codec.value} encoder failed: {exc}"
                    for target in enc.targets:
                        target.failed = enc.failed
                    log.error("transcode encoder failed stream=%s track=%d codec=%s error=%s; its outputs stop",
                              self.label, self.source.id, enc.track.codec.value, exc)
                    self.encoders.pop(key, None)


class StreamTranscoder:
    def __init__(self, label: str, *, decoder_threads: int = DECODER_THREADS) -> None:
        self.label = label
        self.decoder_threads = decoder_threads
        # by input track id: every worker, and the same workers by the frames they decode
        self.workers: dict[int, TrackWorker[av.VideoFrame] | TrackWorker[av.AudioFrame]] = {}
        self._video_workers: dict[int, TrackWorker[av.VideoFrame]] = {}
        self._audio_workers: dict[int, TrackWorker[av.AudioFrame]] = {}
        self.decoder_failures: dict[int, str] = {}  # input track id -> why its decoder cannot be opened
        self._subscriber: CallbackSubscriber | None = None
        self._started = False
        self._detached = False

    def _worker(self, source: Track, workers: dict[int, TrackWorker[FrameT]],
                open_decoder: Callable[[Track, int], Decoder[FrameT]]) -> TrackWorker[FrameT]:
        worker = workers.get(source.id)
        if worker is None:
            worker = TrackWorker(self.label, source, self._decoder(source, open_decoder))
            workers[source.id] = worker
            self.workers[source.id] = worker
        return worker

    def _decoder(self, source: Track, open_decoder: Callable[[Track, int], Decoder[FrameT]]) -> Decoder[FrameT]:
        failure = self.decoder_failures.get(source.id)
        if failure is None:
            try:
                return open_decoder(source, self.decoder_threads)
            except CodecOpenError as exc:
                failure = f"input track {source.id} of {self.label}: {exc}"
                self.decoder_failures[source.id] = failure
                log.error("transcode decoder not opened stream=%s track=%d codec=%s error=%s; its encodes are "
                          "unavailable", self.label, source.id, source.codec.value, exc)
        raise EncodeUnavailable(failure)

    def _add(self, worker: TrackWorker[FrameT], key: EncodeKey, make: Callable[[], Encoder[FrameT]],
             target: Target[PacketMeter]) -> Encoder[FrameT]:
        enc = worker.encoders.get(key)
        if enc is None:
            try:
                enc = make()
            except CodecOpenError as exc:
                raise EncodeUnavailable(str(exc)) from exc
            worker.encoders[key] = enc
            log.info("transcode encoder opened stream=%s track=%d codec=%s settings=%s", self.label,
                     worker.source.id, enc.track.codec.value, key)
        enc.targets.append(target)
        return enc

    def add_video(self, encode: dict[str, Any], source: Track, input_fps: float, target: Target[PacketMeter],
                  variant: str) -> Track:
        try:
            settings = video_settings(encode, source, input_fps)
        except EncodeSettingsError as exc:
            raise EncodeUnavailable(str(exc)) from exc
        worker = self._worker(source, self._video_workers, VideoDecoder)
        enc = self._add(worker, settings.key, lambda: VideoEncoder(settings, self.label), target)
        return replace(enc.track, id=target.track_id, name=variant, bypass=False)

    def add_audio(self, encode: dict[str, Any], source: Track, target: Target[PacketMeter], variant: str) -> Track:
        try:
            settings = audio_settings(encode, source)
        except EncodeSettingsError as exc:
            raise EncodeUnavailable(str(exc)) from exc
        worker = self._worker(source, self._audio_workers, AudioDecoder)
        enc = self._add(worker, settings.key, lambda: AudioEncoder(settings, self.label), target)
        return replace(enc.track, id=target.track_id, name=variant, bypass=False)

    def add_image(self, encode: dict[str, Any], source: Track, input_fps: float,
                  target: Target[PacketMeter]) -> ImageSettings:
        """An image encode (thumbnail) fed by the video track's shared decoder; its packets are whole images."""
        try:
            settings = image_settings(encode, source, input_fps)
        except EncodeSettingsError as exc:
            raise EncodeUnavailable(str(exc)) from exc
        worker = self._worker(source, self._video_workers, VideoDecoder)
        self._add(worker, settings.key, lambda: ImageEncoder(settings, self.label), target)
        return settings

    @property
    def active(self) -> bool:
        return any(w.encoders for w in self.workers.values())

    # -- running --
    def start(self, hub: StreamHub) -> None:
        """Subscribe to the input hub (from the last keyframe) and start one thread per input track."""
        if self._started or not self.active:
            return
        self._started = True
        for worker in self.workers.values():
            if not worker.encoders:
                continue
            video = worker.source.kind is MediaKind.VIDEO
            worker.configure_keyframes_only()
            worker.queue = Subscriber(f"transcode:{self.label}:{worker.source.id}",
                                      max_packets=VIDEO_QUEUE_PACKETS if video else AUDIO_QUEUE_PACKETS,
                                      policy="skip",
                                      video_track_ids=frozenset({worker.source.id}) if video else frozenset())
            worker.thread = threading.Thread(target=worker.run, args=(self._publish,), daemon=True,
                                             name=f"transcode-{self.label}-{worker.source.id}")
            worker.thread.start()
        self._subscriber = CallbackSubscriber(f"transcode:{self.label}", self._route, self._input_ended)
        hub.subscribe(self._subscriber, from_keyframe=True)

    def _route(self, packet: Packet) -> None:
        """On the ingest thread: queue the packet for its track's worker, never waiting."""
        worker = self.workers.get(packet.track_id)
        if worker is None or worker.queue is None or not worker.admit(packet):
            return
        queue = worker.queue  # offered directly (not hub-subscribed): an audio queue waits for no keyframe
        queue.offer(packet)
        if queue.stats.skips != worker.skips_logged:
            worker.skips_logged = queue.stats.skips
            log.warning("transcode falling behind stream=%s track=%d skips=%d dropped_packets=%d; "
                        "resuming at the next keyframe", self.label, worker.source.id, queue.stats.skips,
                        queue.stats.dropped_packets)

    @staticmethod
    def _publish(target: Target[PacketMeter], packet: Packet) -> None:
        out = replace(packet, track_id=target.track_id, arrival=time.monotonic())
        target.meter.add(out)
        target.hub.publish(out)

    def _input_ended(self, reason: str) -> None:
        if not self._detached:  # the input hub closed (stream ended), not our own unsubscribe
            self.stop(reason)

    def _detach(self) -> None:
        self._detached = True
        if self._subscriber is not None:
            self._subscriber.close()

    def stop(self, reason: str = "stopped") -> None:
        """Stop feeding the workers; they exit after the frame in hand (no flush: live media)."""
        self._detach()
        for worker in self.workers.values():
            worker.stopping = True
            if worker.queue is not None:
                worker.queue.end(reason)

    def finish(self) -> None:
        """The input is complete (files, tests): workers decode what is queued, flush, and exit."""
        self._detach()
        for worker in self.workers.values():
            if worker.queue is not None:
                worker.queue.end("finished")

    def join(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        for worker in self.workers.values():
            if worker.thread is not None:
                worker.thread.join(max(0.0, deadline - time.monotonic()))
        return all(w.thread is None or not w.thread.is_alive() for w in self.workers.values())

    def stats(self) -> dict[int, dict[str, object]]:
        return {w.source.id: {"decode_errors": w.decode_errors, "frames_decoded": w.frames_decoded,
                              "non_key_skipped": w.non_key_skipped,
                              "dropped_packets": w.queue.stats.dropped_packets if w.queue else 0,
                              "encoders": {str(k): vars(e.counters) for k, e in w.encoders.items()}}
                for w in self.workers.values()}

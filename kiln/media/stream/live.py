"""A live input stream and the output streams its app's OutputProfiles make of it.

The ingest side (RTMP session, pull worker, SRT receiver) calls ``on_metadata``/``on_track``/
``ingest`` on its own thread. The stream "starts" once its tracks are known (every track the
source announced has its decoder configuration, or 1.5 s of media passed); then each output
profile becomes an output stream whose bypass tracks are the input's packets relabelled, and
``on_started`` is called. Packets go to hubs only; nothing here waits on a consumer.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from kiln.config.values import AudioLabel, as_float, as_int
from kiln.media.model import MS, Codec, MediaKind, Packet, Track
from kiln.media.publish.thumbnail.store import LatestImage
from kiln.media.stream.bypass import codec_of, should_bypass
from kiln.media.stream.hub import StreamHub
from kiln.media.stream.snapshot import MeterReading, OutputSnapshot, StreamSnapshot, TrackSnapshot
from kiln.media.transcode.codecs import VIDEO_TIME_BASE, Target
from kiln.media.transcode.image import IMAGE_FORMATS
from kiln.media.transcode.settings import input_framerate
from kiln.media.transcode.transcoder import EncodeUnavailable, StreamTranscoder
from kiln.metrics.track import TrackMeter
from kiln.timefmt import now

log = logging.getLogger(__name__)

START_AFTER_MS = 1500.0


def output_stream_name(template: str, origin: str) -> str:
    return str(template).replace("${OriginStreamName}", origin)


class IngestMeter(Protocol):
    """A stream's own input counter (kiln.metrics); only this stream's ingest thread writes it."""

    def add_in(self, n: int, t: float) -> None: ...


class IngestMeters(Protocol):
    """Where a stream finds its input counter: the metrics tree."""

    def ingest_meter(self, vhost: str, app: str, stream: str) -> IngestMeter: ...




@dataclass
class OutputTrack:
    """One track of an output stream: a bypass of an input track, or an encode."""

    id: int
    kind: MediaKind
    name: str
    encode: dict[str, Any]
    bypass: bool
    source_id: int | None
    track: Track | None = None
    unavailable: str = ""  # why an encoded track has no media (e.g. encoder not running)
    target: Target[TrackMeter] | None = None  # an encode's target: ``target.failed`` says why it stopped producing
    image: bool = False  # an image encode (thumbnail): listed, but its stills go to ``images``, not to the hub

    @property
    def failed(self) -> str:
        """Why this encoded track gives no media: it could not start, or it stopped (encoder/input failure)."""
        return self.unavailable or (self.target.failed if self.target is not None else "")


@dataclass
class OutputStream:
    name: str
    profile: dict[str, Any]
    tracks: list[OutputTrack]
    hub: StreamHub
    meters: dict[int, TrackMeter] = field(default_factory=dict)
    images: dict[Codec, LatestImage] = field(default_factory=dict)  # image encodes (thumbnails) by codec
    warnings: dict[str, str] = field(default_factory=dict)  # publisher -> what its viewers miss, and why
    keyframe_wanted: Callable[[str], bool] | None = None  # the input's LiveStream.request_keyframe

    def request_keyframe(self, reason: str) -> bool:
        """A consumer of this output (e.g. a new WebRTC viewer) wants a keyframe soon: asks the input's source."""
        return self.keyframe_wanted(reason) if self.keyframe_wanted is not None else False

    def track_list(self) -> list[Track]:
        """The tracks publishers carry (image encodes are served as stills, never muxed)."""
        return [t.track for t in self.tracks if t.track is not None and not t.image]

    def playlists(self) -> list[dict[str, Any]]:
        raw = self.profile.get("playlists") or []
        return [p for p in (raw if isinstance(raw, list) else [raw]) if isinstance(p, dict)]


class LiveStream:
    def __init__(self, vhost: str, app: str, name: str, *, source_type: str, source_url: str,
                 profiles: list[dict[str, Any]], stats: IngestMeters | None = None,
                 close_ingest: Callable[[str], None] | None = None, subscribable: bool = True,
                 audio_map: tuple[AudioLabel, ...] = (), dynamic: bool = False) -> None:
        self.vhost, self.app, self.name = vhost, app, name
        self.instance = uuid.uuid4().hex[:12]
        self.source_type, self.source_url = source_type, source_url
        self.created_time = now()
        self.profiles = profiles
        self.stats = stats
        # False when the application declares no publisher: nothing can ever subscribe to the outputs (pushes,
        # records and players each need theirs, and a reconfigure ends the stream), so their hubs cache no GOP for
        # late subscribers. That cache keeps ~2 s of packets per stream alive, and every packet then lands in
        # memory no cache holds: 15 % of ingest-only CPU at 20 streams (bench/ingest.py kiln-bare)
        self.subscribable = subscribable
        self._close_ingest = close_ingest
        self.input = StreamHub(f"{vhost}/{app}/{name}")
        self.tracks: dict[int, Track] = {}
        self.meters: dict[int, TrackMeter] = {}
        self.outputs: dict[str, OutputStream] = {}
        self.expected: set[MediaKind] = set()
        self.expected_video_tracks = 1  # simulcast layers the source negotiated (WebRTC): start once all are described
        self.expected_audio_tracks = 1  # audio tracks the source announced (a TS PMT): start once all are described
        # the provider's AudioMap: labels for the audio tracks by order; with one, every audio track goes to the
        # outputs (as in OME); without, only the first does (Kiln's behaviour before AudioMap)
        self.audio_map = audio_map
        self.started = False
        self.ended_reason: str | None = None
        self.on_started: Callable[[LiveStream], None] | None = None
        self.on_ended: Callable[[LiveStream, str], None] | None = None
        self._relay: dict[int, list[tuple[StreamHub, int]]] = {}  # input track id -> (output hub, output track id)
        self._first_dts_ms: float | None = None
        self._lock = threading.Lock()
        self._last_packet: Packet | None = None
        self.last_packet_wall: float = 0.0
        self.bytes_in = 0
        self._ingest_meter: IngestMeter | None = None
        self.data_track_id = -1
        self.relay_playlists: list[dict[str, Any]] | None = None  # set by an OVT pull: outputs = inputs
        # a stream of a dynamic app (made from its vhost's ``*`` template): as OME's transcoder
        # (TranscoderStream::CreateOutputStreamDynamic), its one output is the input itself, every track bypassed,
        # whatever the app's output profiles say (no encode, not even an image, and no profile playlists)
        self.dynamic = dynamic
        self.transcoder = StreamTranscoder(f"{vhost}/{app}/{name}")
        self._keyframe_source: Callable[[], None] | None = None
        self.keyframe_requests: dict[str, int] = {}  # reason -> requests passed to the source (tests, logs)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.vhost, self.app, self.name)

    @property
    def bypassed(self) -> bool:
        """The one output is the input under its own name (a relay, or any stream of a dynamic app): the app's
        output profiles make no output stream of it."""
        return self.relay_playlists is not None or self.dynamic

    # -- ingest side ------------------------------------------------------------------------------
    def set_keyframe_source(self, ask: Callable[[], None]) -> None:
        """The ingest that can make its publisher send a keyframe (WebRTC: a PLI). ``ask`` must be callable
        from any thread and bound its own rate: consumers call :meth:`request_keyframe` freely."""
        self._keyframe_source = ask

    def request_keyframe(self, reason: str) -> bool:
        """A media consumer (a new WebRTC viewer, a transcoder start) wants a keyframe soon rather than at the
        source's own interval. True when the source was asked; False when it cannot be (RTMP, SRT, pull:
        their keyframes come when the encoder puts them)."""
        ask = self._keyframe_source
        if ask is None or self.ended_reason is not None:
            return False
        self.keyframe_requests[reason] = self.keyframe_requests.get(reason, 0) + 1
        log.debug("keyframe requested vhost=%s app=%s stream=%s reason=%s", self.vhost, self.app, self.name, reason)
        ask()
        return True

    def on_metadata(self, meta: dict[str, Any]) -> None:
        """RTMP onMetaData tells which tracks to wait for before starting."""
        if meta.get("videocodecid") not in (None, 0, "", False):
            self.expected.add(MediaKind.VIDEO)
        if meta.get("audiocodecid") not in (None, 0, "", False):
            self.expected.add(MediaKind.AUDIO)

    def on_track(self, track: Track) -> None:
        old = self.tracks.get(track.id)
        if track.kind is MediaKind.AUDIO and self.audio_map:
            track = self._labelled(track)
        self.tracks[track.id] = track
        self.input.set_track(track)
        self.meters.setdefault(track.id, TrackMeter())
        if self.started and old is not None:
            for out in self.outputs.values():
                for ot in out.tracks:
                    if ot.bypass and ot.source_id == track.id:
                        ot.track = replace(track, id=ot.id, name=ot.name, bypass=True)
                        out.hub.set_track(ot.track)
        self._maybe_start(None)

    def _labelled(self, track: Track) -> Track:
        """``track`` with the AudioMap item at its position among the audio tracks (OME: by order; items beyond
        the tracks label nothing). A track beyond the map, or an item without a name, gets OME's default public
        name ``Audio_{id}``, so that each rendition of the group has a NAME of its own."""
        position = 0
        for other in self.tracks.values():
            if other.id == track.id:
                break
            if other.kind is MediaKind.AUDIO:
                position += 1
        item = self.audio_map[position] if position < len(self.audio_map) else AudioLabel("")
        return replace(track, label=item.name or f"Audio_{track.id}", language=item.language,
                       characteristics=item.characteristics)

    def ingest(self, packet: Packet) -> None:
        # once per packet of every input: plain local work, the relay inline (see _relay_packet)
        if self.ended_reason is not None:
            return
        track_id = packet.track_id
        meter = self.meters.get(track_id)
        if meter is None:
            return  # a packet for a track that was never described
        if not packet.arrival:  # every protocol's packets carry their arrival (PROGRAM-DATE-TIME uses it)
            packet.arrival = time.monotonic()
        meter.add(packet)
        size = len(packet.data)
        self.bytes_in += size
        wall = time.time()  # timefmt.now(), without the call
        ingest_meter = self._ingest_meter
        if ingest_meter is None and self.stats is not None:  # announced by the actor before the first packet
            ingest_meter = self._ingest_meter = self.stats.ingest_meter(self.vhost, self.app, self.name)
        if ingest_meter is not None:
            ingest_meter.add_in(size, wall)
        self._last_packet = packet
        self.last_packet_wall = wall
        self.input.publish(packet)
        if not self.started:
            self._maybe_start(packet)
            return
        for hub, out_id in self._relay.get(track_id, ()):
            hub.publish(packet if out_id == track_id else Packet(
                out_id, packet.pts, packet.dts, packet.time_base, packet.data, packet.keyframe, packet.duration,
                packet.config, packet.arrival))

    @property
    def last_packet_pts_ms(self) -> float:
        """The pts of the newest input packet, in ms (computed when asked: ID3 events need it, packets do not)."""
        last = self._last_packet
        return last.pts_ms if last is not None else 0.0

    def _relay_packet(self, packet: Packet) -> None:
        # a bypass output track usually keeps the input's id: then the packet itself goes on (packets are
        # never mutated once in a hub); otherwise a relabelled copy, built directly (dataclasses.replace
        # introspects the fields on every call). Bypass meters are the input's own (see _relay_bypass).
        track_id = packet.track_id
        for hub, out_id in self._relay.get(track_id, ()):
            hub.publish(packet if out_id == track_id else Packet(
                out_id, packet.pts, packet.dts, packet.time_base, packet.data, packet.keyframe, packet.duration,
                packet.config, packet.arrival))

    def _maybe_start(self, packet: Packet | None) -> None:
        if self.started or not self.tracks:
            return
        kinds = {t.kind for t in self.tracks.values()}
        ready = bool(self.expected) and self.expected <= kinds
        videos = sum(t.kind is MediaKind.VIDEO for t in self.tracks.values())
        if ready and self.expected_video_tracks > 1 and videos < self.expected_video_tracks:
            ready = False  # a simulcast layer is not described yet (START_AFTER_MS bounds the wait)
        audios = sum(t.kind is MediaKind.AUDIO for t in self.tracks.values())
        if ready and self.expected_audio_tracks > 1 and audios < self.expected_audio_tracks:
            ready = False  # another announced audio track is not described yet (START_AFTER_MS bounds the wait)
        if not ready and not self.expected and {MediaKind.VIDEO, MediaKind.AUDIO} <= kinds and \
                audios >= self.expected_audio_tracks:
            ready = True
        if not ready and packet is not None:
            if self._first_dts_ms is None:
                self._first_dts_ms = packet.dts_ms
            elif packet.dts_ms - self._first_dts_ms >= START_AFTER_MS:
                ready = True
        if ready:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self.started:
                return
            self.data_track_id = max(self.tracks) + 1
            self.input.set_track(Track(self.data_track_id, MediaKind.DATA, Codec.ID3, MS))
            if self.bypassed:
                relay = self._build_relay_output(self.relay_playlists or [])
                self.outputs[relay.name] = relay
            for profile in [] if self.bypassed else self.profiles:
                out = self._build_output(profile)
                if out is not None and out.name not in self.outputs:
                    self.outputs[out.name] = out
            self.started = True
        self.transcoder.start(self.input)
        if any(w.encoders and w.source.kind is MediaKind.VIDEO for w in self.transcoder.workers.values()):
            # a video decoder starts at a keyframe: ask for one rather than wait for the source's next
            self.request_keyframe("transcoder start")
        for cached in self.input.gop_snapshot():  # outputs begin at the last keyframe, not mid-GOP
            self._relay_packet(cached)
        # that was the input's GOP cache's one use: only the transcoder subscribes to the input, and only
        # above; the outputs keep their own caches for their late subscribers
        self.input.keep_gop = False
        log.info("stream started vhost=%s app=%s stream=%s tracks=%s outputs=%s", self.vhost, self.app,
                 self.name, ",".join(f"{t.id}:{t.codec.value}" for t in self.tracks.values()),
                 ",".join(self.outputs))
        if self.on_started is not None:
            self.on_started(self)

    def _build_output(self, profile: dict[str, Any]) -> OutputStream | None:
        template = profile.get("outputStreamName")
        if not isinstance(template, str) or not template:
            return None
        name = output_stream_name(template, self.name)
        found = profile.get("encodes")
        encodes: dict[str, Any] = found if isinstance(found, dict) else {}
        first = {kind: next((t for t in self.tracks.values() if t.kind is kind), None)
                 for kind in (MediaKind.VIDEO, MediaKind.AUDIO)}
        if first[MediaKind.VIDEO] is not None:  # of several video tracks (simulcast layers) the largest
            first[MediaKind.VIDEO] = max((t for t in self.tracks.values() if t.kind is MediaKind.VIDEO),
                                         key=lambda t: (t.width or 0) * (t.height or 0))
        hub = StreamHub(f"{self.vhost}/{self.app}/{name}")
        hub.keep_gop = self.subscribable
        out = OutputStream(name, profile, [], hub, keyframe_wanted=self.request_keyframe)
        next_id = 0
        audios = [t for t in self.tracks.values() if t.kind is MediaKind.AUDIO]
        for key, kind in (("videos", MediaKind.VIDEO), ("audios", MediaKind.AUDIO)):
            items = encodes.get(key) or []
            for encode, source in self._encode_sources(items, first[kind], audios if kind is MediaKind.AUDIO else []):
                variant = str(encode.get("name") or "")
                meter = self.meters.get(source.id, TrackMeter())
                bypass = should_bypass(encode, source, meter.framerate_avg)
                if not bypass:
                    ot = OutputTrack(next_id, kind, variant, encode, bypass, source.id)
                    next_id += 1
                    self._add_encode(out, ot, source, meter)
                    if ot.track is not None and source.label:  # an encode of a labelled track keeps its label
                        ot.track = replace(ot.track, label=source.label, language=source.language,
                                           characteristics=source.characteristics)
                        hub.set_track(ot.track)
                    out.tracks.append(ot)
                    continue
                for layer in self._layers(source):  # a bypassed simulcast input: one track per layer, one group
                    ot = OutputTrack(next_id, kind, variant, encode, True, layer.id)
                    next_id += 1
                    ot.track = replace(layer, id=ot.id, name=variant, bypass=True)
                    hub.set_track(ot.track)
                    self._relay_bypass(out, ot.id, layer.id)
                    out.tracks.append(ot)
        items = encodes.get("images") or []
        video = first[MediaKind.VIDEO]
        for encode in items if isinstance(items, list) else [items]:
            if isinstance(encode, dict) and video is not None:
                ot = OutputTrack(next_id, MediaKind.VIDEO, str(encode.get("name") or ""), encode, False, video.id,
                                 image=True)
                next_id += 1
                self._add_image(out, ot, video)
                out.tracks.append(ot)
        out.tracks.append(OutputTrack(next_id, MediaKind.DATA, "", {}, True, self.data_track_id,
                                      Track(next_id, MediaKind.DATA, Codec.ID3, MS)))
        return out

    def _encode_sources(self, items: object, first: Track | None,
                        audios: list[Track]) -> list[tuple[dict[str, Any], Track]]:
        """(encode, input track) pairs of one kind, in OME's order (input track, then its encodes): every input
        audio track when the stream has an AudioMap, else the kind's first track only (none without one)."""
        encodes = [e for e in (items if isinstance(items, list) else [items]) if isinstance(e, dict)]
        sources = audios if self.audio_map and audios else [first] if first is not None else []
        return [(encode, source) for source in sources for encode in encodes]

    def _relay_bypass(self, out: OutputStream, out_id: int, source_id: int) -> None:
        """Relay input track ``source_id`` as ``out_id`` of ``out``. A bypass track carries the input's packets
        unchanged, so its meter is the input track's own: one measurement per packet instead of one per output."""
        self._relay.setdefault(source_id, []).append((out.hub, out_id))
        out.meters[out_id] = self.meters.setdefault(source_id, TrackMeter())

    def _layers(self, source: Track) -> list[Track]:
        """``source`` alone, or for a simulcast input (several video layers negotiated) every video layer,
        largest first: playlists pick one by ``VideoIndexHint`` (kiln.media.stream.groups)."""
        if source.kind is not MediaKind.VIDEO or self.expected_video_tracks < 2:
            return [source]
        layers = [t for t in self.tracks.values() if t.kind is MediaKind.VIDEO]
        return sorted(layers, key=lambda t: (t.width or 0) * (t.height or 0), reverse=True)

    def relay(self, tracks: list[Track], playlists: list[dict[str, Any]]) -> None:
        """Relay mode (OME's ``Relay=true`` for OVT pulls): the one output stream is the input itself,
        with the origin's track ids, names and playlists; the app's output profiles and transcoding
        are skipped. All tracks are known from the describe, so the stream starts at once."""
        self.relay_playlists = playlists
        for track in tracks:
            self.tracks[track.id] = track
            self.input.set_track(track)
            self.meters.setdefault(track.id, TrackMeter())
        if tracks:
            self._start()

    def _build_relay_output(self, playlists: list[dict[str, Any]]) -> OutputStream:
        hub = StreamHub(f"{self.vhost}/{self.app}/{self.name}")
        hub.keep_gop = self.subscribable
        out = OutputStream(self.name, {"name": "relay", "outputStreamName": "${OriginStreamName}",
                                       "playlists": playlists}, [], hub)
        for source in self.tracks.values():
            ot = OutputTrack(source.id, source.kind, source.name, {}, True, source.id,
                             replace(source, bypass=True))
            assert ot.track is not None
            hub.set_track(ot.track)
            self._relay_bypass(out, ot.id, source.id)
            out.tracks.append(ot)
        out.tracks.append(OutputTrack(self.data_track_id, MediaKind.DATA, "", {}, True, self.data_track_id,
                                      Track(self.data_track_id, MediaKind.DATA, Codec.ID3, MS)))
        if self.relay_playlists is not None:  # a relay's thumbnails; a dynamic app's stream gets no encode at all
            self._add_relay_images(out)
        return out

    def _add_relay_images(self, out: OutputStream) -> None:
        """OVT carries no image tracks, so an edge's thumbnails are made here from the relayed video by the
        image encodes of this app's own output profiles (the only encodes a relay runs)."""
        video = next((t for t in self.tracks.values() if t.kind is MediaKind.VIDEO), None)
        if video is None:
            return
        next_id = self.data_track_id + 1
        for profile in self.profiles:
            found = profile.get("encodes") if isinstance(profile, dict) else None
            items = found.get("images") or [] if isinstance(found, dict) else []
            for encode in items if isinstance(items, list) else [items]:
                if isinstance(encode, dict):
                    ot = OutputTrack(next_id, MediaKind.VIDEO, str(encode.get("name") or ""), encode, False,
                                     video.id, image=True)
                    next_id += 1
                    self._add_image(out, ot, video)
                    out.tracks.append(ot)

    def _add_encode(self, out: OutputStream, ot: OutputTrack, source: Track, meter: TrackMeter) -> None:
        """Open (or share) the encoder of ``ot``; the track stays ``unavailable`` only if that fails."""
        out_meter = TrackMeter()
        target = Target(out.hub, ot.id, out_meter)
        try:
            if ot.kind is MediaKind.VIDEO:
                fps = input_framerate(source, meter.framerate_avg)
                track = self.transcoder.add_video(ot.encode, source, fps, target, ot.name)
            else:
                track = self.transcoder.add_audio(ot.encode, source, target, ot.name)
        except EncodeUnavailable as exc:
            ot.unavailable = str(exc)
            log.warning("encode unavailable vhost=%s app=%s stream=%s output=%s variant=%s reason=%s", self.vhost,
                        self.app, self.name, out.name, ot.name, exc)
            return
        ot.track, ot.target = track, target
        out.hub.set_track(track)
        out.meters[ot.id] = out_meter

    def _add_image(self, out: OutputStream, ot: OutputTrack, source: Track) -> None:
        """An image encode: its stills go to the output's latest-image holder (one per codec), not to the hub.

        It is listed among the output's tracks as OME does (a Video track with codec JPEG/PNG/WEBP)."""
        encode = ot.encode
        codec = codec_of(encode.get("codec"))
        reason = ""
        if codec not in IMAGE_FORMATS:
            reason = f"image codec {encode.get('codec')!r} cannot be encoded"
        elif codec in out.images:
            reason = f"a second {codec.value} image encode in one output profile"
        else:
            holder = LatestImage(codec, 0, 0)
            image_meter = TrackMeter()
            target = Target(holder, ot.id, image_meter)
            try:
                settings = self.transcoder.add_image(encode, source, input_framerate(source, self.meters.get(
                    source.id, TrackMeter()).framerate_avg), target)
            except EncodeUnavailable as exc:
                reason = str(exc)
            else:
                holder.width, holder.height = settings.width, settings.height
                out.images[codec] = holder
                ot.track = Track(ot.id, MediaKind.VIDEO, codec, VIDEO_TIME_BASE, name=ot.name, width=settings.width,
                                 height=settings.height, framerate_conf=settings.framerate)
                ot.target = target
                out.meters[ot.id] = image_meter
                return
        ot.unavailable = reason
        log.warning("image encode unavailable vhost=%s app=%s stream=%s output=%s reason=%s", self.vhost, self.app,
                    self.name, out.name, reason)

    # -- control side -----------------------------------------------------------------------------
    def close_ingest(self, reason: str) -> bool:
        """Ask the source to stop (DELETE stream): the publisher sees its connection close."""
        if self._close_ingest is None:
            return False
        self._close_ingest(reason)
        return True

    def end(self, reason: str) -> None:
        """The source is gone: close every hub (subscribers are told why)."""
        with self._lock:
            if self.ended_reason is not None:
                return
            self.ended_reason = reason
        self.transcoder.stop(reason)
        self.input.close(reason)
        for out in self.outputs.values():
            out.hub.close(reason)
        log.info("stream ended vhost=%s app=%s stream=%s reason=%s bytes_in=%d", self.vhost, self.app,
                 self.name, reason, self.bytes_in)
        if self.on_ended is not None:
            self.on_ended(self, reason)

    # -- views ------------------------------------------------------------------------------------
    def tracks_summary(self) -> list[dict[str, Any]]:
        """What the journal keeps about the described tracks (audit; not live measurements)."""
        return [{"id": t.id, "type": t.kind.value, "codec": t.codec.value, "width": t.width, "height": t.height,
                 "profile": t.profile, "level": t.level, "sampleRate": t.sample_rate, "channels": t.channels,
                 "codecString": t.codec_string} for t in self.tracks.values()]

    def snapshot(self) -> StreamSnapshot:
        """What the API shows about this stream now (rendered by kiln/http/views)."""
        inputs = [track_snapshot(t, self.meters.get(t.id)) for t in list(self.tracks.values())]
        if self.started:
            inputs.append(TrackSnapshot(self.data_track_id, MediaKind.DATA.value))
        outputs = []
        for out in list(self.outputs.values()):
            tracks = []
            for ot in out.tracks:
                if ot.kind is MediaKind.DATA:
                    tracks.append(TrackSnapshot(ot.id, MediaKind.DATA.value))
                elif ot.track is not None:
                    tracks.append(track_snapshot(ot.track, out.meters.get(ot.id), bypass=ot.bypass,
                                                 unavailable=ot.failed))
                else:
                    tracks.append(configured_track_snapshot(ot))
            outputs.append(OutputSnapshot(out.name, tuple(tracks), tuple(out.playlists()),
                                          "; ".join(out.warnings[k] for k in sorted(out.warnings))))
        return StreamSnapshot(self.name, self.created_time, self.source_type, self.source_url, tuple(inputs),
                              tuple(outputs))


def meter_reading(meter: TrackMeter | None) -> MeterReading:
    if meter is None:
        return MeterReading()
    return MeterReading(meter.bitrate_avg, meter.bitrate_latest, meter.framerate_avg, meter.framerate_latest,
                        meter.has_bframes, meter.key_frame_interval_avg, meter.key_frame_interval_latest,
                        meter.frames_since_key)


def track_snapshot(track: Track, meter: TrackMeter | None, *, bypass: bool = False,
                   unavailable: str = "") -> TrackSnapshot:
    return TrackSnapshot(track.id, track.kind.value, track.name, track.codec.value, bypass, track.width,
                         track.height, track.bitrate_conf, track.framerate_conf, track.key_frame_interval_conf,
                         track.sample_rate, track.channels, meter_reading(meter), unavailable)


def configured_track_snapshot(ot: OutputTrack) -> TrackSnapshot:
    """An encoded track whose encoder is not producing: its configured values, and why."""
    enc = ot.encode
    codec = codec_of(enc.get("codec"))
    return TrackSnapshot(ot.id, ot.kind.value, ot.name, codec.value if codec else "None", False,
                         as_int(enc.get("width")), as_int(enc.get("height")), as_int(enc.get("bitrate")),
                         as_float(enc.get("framerate")), sample_rate=as_int(enc.get("samplerate")),
                         channels=as_int(enc.get("channel")), unavailable=ot.failed, configured=True)

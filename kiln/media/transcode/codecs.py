"""PyAV decoders and encoders with Kiln's packet model on both sides.

Decoders take Kiln packets (AVCC video, raw AAC) with the track's config as extradata. Encoders
are opened with GLOBAL_HEADER so their decoder configuration (avcC/hvcC/ASC/OpusHead) is known
before the first frame: the output Track is complete when the output stream is announced, which
is what LL-HLS needs to write its init segment. Video is scaled (and its rate converted) through
one libavfilter graph per encoder; audio goes through one ``AudioResampler`` sized to the
encoder's frame size.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Generic, Literal, Protocol, TypeVar

import av
from av.codec.context import Flags

from kiln.media.formats.codecs import h264, h265
from kiln.media.formats.codecs.describe import describe_track
from kiln.media.formats.codecs.errors import CodecConfigError
from kiln.media.formats.codecs.h264 import avcc_from_annexb
from kiln.media.formats.codecs.h265 import hvcc_from_annexb
from kiln.media.formats.codecs.nal import annexb_to_length_prefixed, is_annexb
from kiln.media.model import Codec, MediaKind, Packet, Track
from kiln.media.transcode.settings import AudioSettings, VideoSettings

log = logging.getLogger(__name__)

VIDEO_TIME_BASE = Fraction(1, 90000)
DECODERS = {Codec.H264: "h264", Codec.H265: "hevc", Codec.VP8: "vp8", Codec.VP9: "vp9", Codec.AV1: "libdav1d",
            Codec.AAC: "aac", Codec.MP3: "mp3", Codec.OPUS: "opus"}
_AGAIN = (av.error.BlockingIOError, av.error.EOFError)

# The frames one input track decodes to: a track's decoder and all its encoders agree on it.
FrameT = TypeVar("FrameT", av.VideoFrame, av.AudioFrame)


class CodecOpenError(Exception):
    """A decoder or encoder could not be opened; the message is what the API shows."""


def video_context(name: str, mode: Literal["r", "w"]) -> av.VideoCodecContext:
    """A video codec context by FFmpeg codec name (PyAV knows the kind from the name only for literals)."""
    return _video(av.CodecContext.create(name, mode))


def audio_context(name: str, mode: Literal["r", "w"]) -> av.AudioCodecContext:
    return _audio(av.CodecContext.create(name, mode))


def _video(ctx: av.CodecContext) -> av.VideoCodecContext:
    if not isinstance(ctx, av.VideoCodecContext):
        raise ValueError(f"{ctx.name} is not a video codec")
    return ctx


def _audio(ctx: av.CodecContext) -> av.AudioCodecContext:
    if not isinstance(ctx, av.AudioCodecContext):
        raise ValueError(f"{ctx.name} is not an audio codec")
    return ctx


def _pull_all(graph: av.filter.Graph) -> list[av.VideoFrame]:
    frames = []
    while True:
        try:
            frames.append(graph.vpull())
        except _AGAIN:
            return frames


class _FrameSource(Protocol[FrameT]):
    """An opened decoding context: what PyAV's video and audio codec contexts both offer."""

    def decode(self, packet: av.Packet[av.stream.Stream] | None = None) -> list[FrameT]: ...


class Decoder(ABC, Generic[FrameT]):
    """One decoder for one input track, shared by every encode of that track."""

    def __init__(self, track: Track, threads: int = 0) -> None:
        name = DECODERS.get(track.codec)
        if name is None:
            raise CodecOpenError(f"no decoder for {track.codec.value}")
        self.track = track
        self.name = name
        self.config = track.config
        self.threads = threads
        self.ctx: _FrameSource[FrameT] = self._open(name, track.config)

    @abstractmethod
    def _frames(self, ctx: av.CodecContext) -> _FrameSource[FrameT]:
        """``ctx`` as a source of this decoder's frames; ValueError when the codec is of another kind."""

    def _check_config(self, config: bytes) -> None:
        """FFmpeg's H.264/H.265 decoders open on any extradata and then fail every frame: read it first."""
        try:
            if self.track.codec is Codec.H264:
                h264.parse_avcc(config).first_sps()
            elif self.track.codec is Codec.H265:
                h265.parse_hvcc(config).first_sps()
        except (CodecConfigError, ValueError, IndexError) as exc:
            raise CodecOpenError(f"the {self.track.codec.value} decoder could not be opened: its decoder "
                                 f"configuration is invalid ({exc})") from exc

    def _open(self, name: str, config: bytes) -> _FrameSource[FrameT]:
        if config:
            self._check_config(config)
        try:
            ctx = av.CodecContext.create(name, "r")
            source = self._frames(ctx)
            if config:
                ctx.extradata = config
            if self.track.kind is MediaKind.VIDEO:
                ctx.thread_type = "AUTO"  # frame + slice threads: 1.35x faster than the default (peers.md §4.2)
                ctx.thread_count = self.threads
            ctx.open()
        except (av.error.FFmpegError, ValueError) as exc:
            raise CodecOpenError(f"the {self.track.codec.value} decoder could not be opened: {exc}") from exc
        return source

    def decode(self, packet: Packet) -> list[FrameT]:
        """Frames with ``pts`` and ``time_base`` in the input packet's time base.

        A packet with a new decoder configuration (a resolution change) reopens the decoder; the frames
        the old one still holds (frame threads delay a few) come out first. A configuration that cannot
        be opened raises ``CodecOpenError`` and the old decoder stays.
        """
        held: list[FrameT] = []
        if packet.config is not None and packet.config != self.config:
            ctx = self._open(self.name, packet.config)
            try:
                held = self._stamp(self.ctx.decode(None), packet)
            except av.error.FFmpegError:
                held = []
            self.config, self.ctx = packet.config, ctx
        avp = av.Packet(packet.data)
        avp.pts, avp.dts, avp.time_base = packet.pts, packet.dts, packet.time_base
        if packet.keyframe:
            avp.is_keyframe = True
        return held + self._stamp(self.ctx.decode(avp), packet)

    def flush(self) -> list[FrameT]:
        """The frames the decoder still holds (frame threads delay a few), at the end of the input."""
        return self._stamp(self.ctx.decode(None), None)

    def _stamp(self, frames: list[FrameT], packet: Packet | None) -> list[FrameT]:
        time_base = packet.time_base if packet is not None else self.track.time_base
        for frame in frames:
            if frame.pts is None:
                frame.pts = frame.dts if frame.dts is not None else (packet.pts if packet is not None else 0)
            frame.time_base = time_base
        return frames


class VideoDecoder(Decoder[av.VideoFrame]):
    def _frames(self, ctx: av.CodecContext) -> av.VideoCodecContext:
        return _video(ctx)


class AudioDecoder(Decoder[av.AudioFrame]):
    def _frames(self, ctx: av.CodecContext) -> av.AudioCodecContext:
        return _audio(ctx)


class PacketSink(Protocol):
    """Where encoded packets are published: an output stream's hub, or the holder of its latest image."""

    def publish(self, packet: Packet) -> None: ...


class PacketMeter(Protocol):
    def add(self, packet: Packet) -> None: ...


MeterT_co = TypeVar("MeterT_co", bound=PacketMeter, covariant=True)


@dataclass
class Target(Generic[MeterT_co]):
    """Where one encoder's packets go: an output stream hub under that stream's track id; generic in the
    meter so that whoever made the target reads its own meter type back."""

    hub: PacketSink
    track_id: int
    meter: MeterT_co
    failed: str = ""  # why this output gets no media any more (encoder failed, input undecodable); "" when fine


@dataclass
class _Counters:
    frames_in: int = 0
    packets_out: int = 0
    frames_dropped: int = 0


Publish = Callable[[Target[PacketMeter], Packet], None]


@dataclass
class Encoder(ABC, Generic[FrameT]):
    """Common part: the output Track template, the targets, counters."""

    track: Track
    targets: list[Target[PacketMeter]] = field(default_factory=list)
    counters: _Counters = field(default_factory=_Counters)
    failed: str = ""

    @abstractmethod
    def encode(self, frame: FrameT) -> list[Packet]:
        """The packets that come out of the encoder once ``frame`` is in (often none, or delayed ones)."""

    @abstractmethod
    def flush(self) -> list[Packet]:
        """The packets the encoder still holds, at the end of the input."""

    def image_rate(self) -> float | None:
        """Images per second for an image encode, which needs only some frames; None: it needs every frame."""
        return None

    def emit(self, packets: list[Packet], publish: Publish) -> None:
        for packet in packets:
            self.counters.packets_out += 1
            for target in self.targets:
                publish(target, packet)


def _x264_options(s: VideoSettings) -> dict[str, str]:
    opts = {"preset": s.preset, "g": str(s.key_frame_interval), "keyint_min": str(s.key_frame_interval),
            "sc_threshold": "0", "bf": str(s.bframes)}
    if s.profile:
        opts["profile"] = s.profile
    return opts


def _x265_options(s: VideoSettings) -> dict[str, str]:
    preset = s.preset if s.preset != "placebo" else "veryslow"
    params = (f"keyint={s.key_frame_interval}:min-keyint={s.key_frame_interval}:scenecut=0:bframes={s.bframes}"
              ":log-level=error")
    return {"preset": preset, "x265-params": params}


def _vp8_options(s: VideoSettings) -> dict[str, str]:
    return {"deadline": "realtime", "cpu-used": "8", "g": str(s.key_frame_interval), "auto-alt-ref": "0",
            "lag-in-frames": "0"}


def _encoded_times(p: av.Packet[av.stream.Stream]) -> tuple[int, int]:
    """(pts, dts) of an encoded packet: FFmpeg's encoders always stamp pts; a missing dts is pts."""
    if p.pts is None:
        raise ValueError("the encoder returned a packet without a timestamp")
    return p.pts, p.dts if p.dts is not None else p.pts


class VideoEncoder(Encoder[av.VideoFrame]):
    def __init__(self, settings: VideoSettings, label: str) -> None:
        self.settings = settings
        self.label = label
        s = settings
        try:
            ctx = video_context(s.encoder_name, "w")
            ctx.width, ctx.height, ctx.pix_fmt = s.width, s.height, "yuv420p"
            ctx.time_base = VIDEO_TIME_BASE
            ctx.framerate = Fraction(s.framerate).limit_denominator(1001)
            ctx.bit_rate = s.bitrate
            ctx.gop_size = s.key_frame_interval
            ctx.max_b_frames = s.bframes
            if s.threads:
                ctx.thread_count = s.threads
            if s.codec is not Codec.VP8:
                ctx.flags |= Flags.global_header
            ctx.options = {Codec.H264: _x264_options, Codec.H265: _x265_options, Codec.VP8: _vp8_options}[s.codec](s)
            ctx.open()
        except (av.error.FFmpegError, ValueError, KeyError) as exc:
            raise CodecOpenError(f"the {s.codec.value} encoder could not be opened: {exc}") from exc
        self.ctx = ctx
        extradata = bytes(ctx.extradata or b"")
        config = b""
        if s.codec is Codec.H264:
            config = avcc_from_annexb(extradata) if is_annexb(extradata) else extradata
        elif s.codec is Codec.H265:
            config = hvcc_from_annexb(extradata) if is_annexb(extradata) else extradata
        track = describe_track(0, s.codec, config, VIDEO_TIME_BASE)
        track.width, track.height = s.width, s.height
        if s.codec is Codec.VP8:
            track.codec_string = "vp8"
        track.framerate_conf, track.bitrate_conf = s.framerate, s.bitrate
        track.key_frame_interval_conf = float(s.key_frame_interval)
        super().__init__(track)
        self._graph: av.filter.Graph | None = None
        self._graph_input: tuple[int, int, str, Fraction | None] | None = None
        self._last_pts: int | None = None
        self._shift: int | None = None
        self._length_prefixed = s.codec in (Codec.H264, Codec.H265)

    def _build_graph(self, frame: av.VideoFrame) -> None:
        s = self.settings
        shape = (frame.width, frame.height, frame.format.name, frame.time_base)
        if self._graph_input is not None:
            log.info("transcode input changed stream=%s from=%dx%d to=%dx%d; rebuilding the scaler", self.label,
                     self._graph_input[0], self._graph_input[1], frame.width, frame.height)
        graph = av.filter.Graph()
        chain = [graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                                  time_base=frame.time_base)]
        if s.resample_fps:
            chain.append(graph.add("fps", str(Fraction(s.framerate).limit_denominator(1001))))
        chain.append(graph.add("scale", f"{s.width}:{s.height}"))
        chain.append(graph.add("format", "yuv420p"))
        chain.append(graph.add("buffersink"))
        for a, b in zip(chain, chain[1:], strict=False):
            a.link_to(b)
        graph.configure()
        self._graph, self._graph_input = graph, shape

    def encode(self, frame: av.VideoFrame) -> list[Packet]:
        self.counters.frames_in += 1
        if self._graph is None or self._graph_input != (frame.width, frame.height, frame.format.name,
                                                        frame.time_base):
            self._build_graph(frame)
        assert self._graph is not None
        self._graph.vpush(frame)
        return self._encode_scaled(_pull_all(self._graph))

    def _encode_scaled(self, frames: list[av.VideoFrame]) -> list[Packet]:
        out: list[Packet] = []
        for scaled in frames:
            if scaled.pts is None or scaled.time_base is None:
                self.counters.frames_dropped += 1  # never seen: the decoder stamps every frame it gives out
                continue
            pts = round(scaled.pts * scaled.time_base / VIDEO_TIME_BASE)
            if self._last_pts is not None and pts <= self._last_pts:
                self.counters.frames_dropped += 1  # non-increasing input time: the encoder would reject it
                continue
            self._last_pts = pts
            scaled.pts, scaled.time_base = pts, VIDEO_TIME_BASE
            scaled.pict_type = av.video.frame.PictureType.NONE
            for p in self.ctx.encode(scaled):
                out.append(self._packet(p))
        return out

    def flush(self) -> list[Packet]:
        out: list[Packet] = []
        if self._graph is not None:
            self._graph.vpush(None)
            out += self._encode_scaled(_pull_all(self._graph))
        return out + [self._packet(p) for p in self.ctx.encode(None)]

    def _packet(self, p: av.Packet[av.stream.Stream]) -> Packet:
        data = bytes(p)
        if self._length_prefixed and is_annexb(data):
            data = annexb_to_length_prefixed(data)
        pts, dts = _encoded_times(p)
        if self._shift is None:
            self._shift = max(0, -dts)  # B-frames start dts below pts: never below zero (tfdt is unsigned)
        return Packet(0, pts + self._shift, dts + self._shift, VIDEO_TIME_BASE, data, keyframe=bool(p.is_keyframe),
                      duration=int(p.duration or 0))


class AudioEncoder(Encoder[av.AudioFrame]):
    def __init__(self, settings: AudioSettings, label: str) -> None:
        self.settings = settings
        self.label = label
        s = settings
        fmt = "fltp" if s.codec is Codec.AAC else "flt"
        layout = "mono" if s.channels == 1 else "stereo"
        try:
            ctx = audio_context(s.encoder_name, "w")
            ctx.sample_rate, ctx.format, ctx.layout = s.sample_rate, fmt, layout
            ctx.time_base = Fraction(1, s.sample_rate)
            ctx.bit_rate = s.bitrate
            ctx.flags |= Flags.global_header
            ctx.open()
        except (av.error.FFmpegError, ValueError) as exc:
            raise CodecOpenError(f"the {s.codec.value} encoder could not be opened: {exc}") from exc
        self.ctx = ctx
        self.time_base = Fraction(1, s.sample_rate)
        track = describe_track(0, s.codec, bytes(ctx.extradata or b""), self.time_base)
        track.bitrate_conf = s.bitrate
        super().__init__(track)
        self.frame_size = ctx.frame_size or 1024
        self._resampler = av.AudioResampler(format=fmt, layout=layout, rate=s.sample_rate,
                                            frame_size=self.frame_size)
        self._last_pts: int | None = None
        self._last_samples = 0
        self._first_pts: int | None = None
        self._shift: int | None = None

    def encode(self, frame: av.AudioFrame) -> list[Packet]:
        self.counters.frames_in += 1
        out: list[Packet] = []
        for res in self._resampler.resample(frame):
            # a continuous sample clock; the input's (ms-rounded) time is followed only across a real gap.
            # The resampler passes frames through untouched (input time base) when there is nothing to do.
            given = None
            if res.pts is not None and res.time_base is not None:
                given = round(res.pts * res.time_base * self.settings.sample_rate)
            pts = given if given is not None else 0
            if self._last_pts is not None:
                expected = self._last_pts + self._last_samples
                if given is None or abs(given - expected) < self.settings.sample_rate // 10:
                    pts = expected
                elif given < expected:
                    pts = expected  # the input went back in time: keep the output increasing
            self._last_pts, self._last_samples = pts, res.samples
            if self._first_pts is None:
                self._first_pts = pts
            res.pts, res.time_base = pts, self.time_base
            for p in self.ctx.encode(res):
                out.append(self._packet(p))
        return out

    def flush(self) -> list[Packet]:
        return [self._packet(p) for p in self.ctx.encode(None)]

    def _packet(self, p: av.Packet[av.stream.Stream]) -> Packet:
        pts, dts = _encoded_times(p)
        if self._shift is None:
            # AAC/Opus encoders start with priming samples (pts -1024 / -312): the first packet is placed
            # at the first input sample instead, so timestamps never go below the input's (tfdt is unsigned)
            self._shift = max(0, (self._first_pts or 0) - pts)
        return Packet(0, pts + self._shift, dts + self._shift, self.time_base, bytes(p), keyframe=True,
                      duration=int(p.duration or self.frame_size))

"""PyAV streams and packets → Kiln tracks and packets (length-prefixed video, raw AAC).

Demuxers hand over what their container carries: RTSP and MPEG-TS give Annex-B H.264/H.265 and
(for TS) ADTS-framed AAC, sometimes with no extradata until the first keyframe brings the
parameter sets in-band. This module normalises all of that to the model's conventions, keeps the
stream's own time base (no rounding to milliseconds), and describes a track only once its decoder
configuration is known. MPEG-TS input also goes through a ``TsClock`` (33-bit wrap-around and
discontinuities, see ``tsclock``), so every track's dts keeps increasing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

from kiln.media.formats.codecs import CodecConfigError, aac, describe_track, h264, h265, nal
from kiln.media.formats.codecs.describe import nal_length_size, with_4_byte_lengths
from kiln.media.formats.mpegts.tsclock import TICKS_PER_S, TsClock
from kiln.media.model import Codec, MediaKind, Packet, Track

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)

CODECS = {"h264": Codec.H264, "hevc": Codec.H265, "aac": Codec.AAC, "opus": Codec.OPUS, "mp3": Codec.MP3,
          "mp3float": Codec.MP3, "vp8": Codec.VP8, "vp9": Codec.VP9, "av1": Codec.AV1}
"""Keyed by PyAV's codec context name, which is the decoder's: MP3 shows up as ``mp3float``."""
TS_TIME_BASE = Fraction(1, TICKS_PER_S)


@dataclass
class _TrackState:
    track_id: int
    codec: Codec
    time_base: Fraction
    config: bytes = b""
    described: Track | None = None
    sample_rate: int = 0  # what the demuxer probed: fills in codecs without a configuration record (MP3)
    channels: int = 0
    clocked: bool = False  # dts/pts go through the TS clock (an MPEG-TS track in 1/90000)
    adts_key: tuple[int, int, int] | None = None  # (object type, rate index, channels) of the last ADTS header
    adts_steps: dict[int, int] = field(default_factory=dict)  # rate index -> ticks per 1024-sample frame
    parameter_sets: bytes = b""  # the in-band SPS/PPS (VPS) bytes the config was last built from
    length_prefixed: bool = False  # its container stores samples as length-prefixed NALs (avcC/hvcC given)
    nal_length_size: int = 4  # the length size its avcC/hvcC says (1, 2 or 4); samples are re-prefixed with 4


class AvConverter:
    """Converts one demuxer's packets; ``convert`` returns (new Track or None, Packets)."""

    def __init__(self, clock: TsClock | None = None) -> None:
        self._tracks: dict[int, _TrackState] = {}
        self._clock = clock  # applies to tracks in the TS clock's 1/90000 time base (all of an MPEG-TS input's)

    def add_stream(self, stream: av.stream.Stream) -> bool:
        """Register a PyAV stream; False when its codec is not one Kiln carries (it is skipped)."""
        codec = CODECS.get(stream.codec_context.name if stream.codec_context else "")
        if codec is None or stream.time_base is None:
            log.info("input stream skipped index=%d codec=%s", stream.index, stream.codec_context.name)
            return False
        sample_rate = channels = 0
        if codec.kind is MediaKind.AUDIO:
            sample_rate = int(getattr(stream.codec_context, "sample_rate", 0) or 0)
            channels = int(getattr(stream.codec_context, "channels", 0) or 0)
        self.add_track(stream.index, codec, Fraction(stream.time_base), bytes(stream.codec_context.extradata or b""),
                       sample_rate=sample_rate, channels=channels)
        return True

    def add_track(self, key: int, codec: Codec, time_base: Fraction, extradata: bytes = b"", *,
                  sample_rate: int = 0, channels: int = 0) -> None:
        """Register an input track under ``key`` (a PyAV stream index, a TS PID) for ``convert_data``."""
        state = _TrackState(len(self._tracks), codec, time_base, sample_rate=sample_rate, channels=channels)
        state.clocked = self._clock is not None and state.time_base == TS_TIME_BASE
        if extradata:
            state.config = _config_from_extradata(codec, extradata)
            state.length_prefixed = codec in (Codec.H264, Codec.H265) and not nal.is_annexb(extradata)
            if state.length_prefixed:
                # an avcC/hvcC may say 1- or 2-byte NAL lengths (legal; some encoders write 2): its samples are
                # re-prefixed with 4 in _video, and the record players get says so
                try:
                    state.nal_length_size = nal_length_size(codec, state.config)
                except CodecConfigError:
                    pass  # described (and refused, with a log line) in _describe
                state.config = with_4_byte_lengths(codec, state.config)
        self._tracks[key] = state

    def alias(self, key: int, existing: int) -> None:
        """Input under ``key`` continues the track registered as ``existing`` (a TS stream moved PID)."""
        self._tracks[key] = self._tracks.pop(existing)

    def convert(self, packet: av.Packet[av.stream.Stream]) -> tuple[Track | None, list[Packet]]:
        if packet.size == 0 or packet.dts is None:
            return None, []
        dts = int(packet.dts)
        return self.convert_data(packet.stream.index, bytes(packet), dts,
                                 int(packet.pts) if packet.pts is not None else dts, int(packet.duration or 0),
                                 bool(packet.is_keyframe))

    def convert_data(self, key: int, data: bytes, dts: int, pts: int, duration: int = 0,
                     keyframe: bool | None = None) -> tuple[Track | None, list[Packet]]:
        """One access unit (or a PES of ADTS frames) of track ``key``; ``keyframe`` None: read from the NAL
        unit types (H.264 IDR, H.265 IRAP)."""
        state = self._tracks.get(key)
        if state is None or not data:
            return None, []
        if state.clocked:
            assert self._clock is not None
            dts, pts = self._clock.place(state.track_id, dts, pts, duration)
        if state.codec in (Codec.H264, Codec.H265):
            return self._video(state, data, pts, dts, duration, keyframe)
        if state.codec is Codec.AAC and data[:2] in (b"\xff\xf1", b"\xff\xf9"):
            return self._adts(state, data, pts, duration)
        new = self._describe(state) if state.config or state.codec not in (Codec.AAC, Codec.OPUS) else None
        if state.described is None:
            return None, []
        return new, [Packet(state.track_id, pts, dts, state.time_base, data, keyframe=True, duration=duration)]

    def continue_adts(self, key: int, data: bytes) -> tuple[Track | None, list[Packet]]:
        """ADTS frames of a PES that carries no PTS (allowed in MPEG-TS between timestamps at most 0.7 s
        apart): they follow the track's previous frame. Dropped before the track's first timestamp."""
        state = self._tracks.get(key)
        if state is None or state.codec is not Codec.AAC or not state.clocked or data[:2] not in (
                b"\xff\xf1", b"\xff\xf9"):
            return None, []
        assert self._clock is not None
        end = self._clock.end_of(state.track_id)
        if end is None:
            return None, []
        return self._adts(state, data, end, 0)

    def _describe(self, state: _TrackState) -> Track | None:
        if state.described is not None and state.described.config == state.config:
            return None
        try:
            state.described = describe_track(state.track_id, state.codec, state.config, state.time_base)
        except CodecConfigError as exc:
            log.warning("track configuration unreadable track=%d codec=%s error=%s", state.track_id,
                        state.codec.value, exc)
            return None
        if state.described.kind is MediaKind.AUDIO and not state.described.sample_rate:
            state.described.sample_rate, state.described.channels = state.sample_rate, state.channels
        return state.described

    def _video(self, state: _TrackState, data: bytes, pts: int, dts: int, duration: int,
               keyframe: bool | None) -> tuple[Track | None, list[Packet]]:
        # a length-prefixed sample whose first NAL is 256-511 bytes long starts 00 00 01, as Annex-B does: from a
        # container that stores length-prefixed samples (an MP4 file's), only one that is not a whole sequence of
        # 4-byte-length NAL units is taken for Annex-B
        size = state.nal_length_size
        if size != 4 and state.length_prefixed and nal.length_prefixed_is_valid(data, size):
            data = nal.convert_length_size(data, size)
            if keyframe is None:
                keyframe = False
        elif nal.is_annexb(data) and not (state.length_prefixed and _whole_length_prefixed(data)):
            if keyframe is None:
                keyframe = _has_random_access_nal(state.codec, data)
            if keyframe or state.described is None:
                # encoders repeat the parameter sets at every keyframe: the config (an SPS parse) is rebuilt
                # only when their bytes change
                sets = _parameter_sets(state.codec, data)
                if sets != state.parameter_sets or not state.config:
                    found = _config_from_annexb(state.codec, data)
                    if found:
                        state.config = found
                        state.parameter_sets = sets
            data = nal.annexb_to_length_prefixed(data)
        elif keyframe is None:
            keyframe = False
        new = self._describe(state) if state.config else None
        if state.described is None:
            return None, []  # nothing is decodable before the parameter sets
        config = state.config if new is not None else None
        return new, [Packet(state.track_id, pts, dts, state.time_base, data, keyframe=keyframe,
                            duration=duration, config=config)]

    def _adts(self, state: _TrackState, data: bytes, pts: int, duration: int) -> tuple[Track | None, list[Packet]]:
        """A PES may carry several ADTS frames: split them, each gets its own timestamp."""
        packets: list[Packet] = []
        new: Track | None = None
        at = pts
        try:
            frames = list(aac.iter_adts_frames(data))
        except CodecConfigError as exc:
            log.warning("bad ADTS frame dropped track=%d error=%s", state.track_id, exc)
            return None, []
        for header, payload in frames:
            key = (header.object_type, header.sample_rate_index, header.channel_config)
            if key != state.adts_key:  # the configuration is rebuilt only when the header says something new
                config = header.audio_specific_config()
                state.adts_key = key
                if config != state.config:
                    state.config = config
                    new = self._describe(state) or new
            if state.described is None:
                continue
            step = state.adts_steps.get(header.sample_rate_index)
            if step is None:
                step = state.adts_steps[header.sample_rate_index] = int(
                    Fraction(1024, header.sample_rate) / state.time_base)
            packets.append(Packet(state.track_id, at, at, state.time_base, bytes(payload), keyframe=True,
                                  duration=step))
            at += step
        if packets and state.clocked:
            assert self._clock is not None
            self._clock.extend(state.track_id, packets[-1].dts, at)
        return new, packets


def _whole_length_prefixed(data: bytes) -> bool:
    """``data`` is exactly a sequence of non-empty NAL units with 4-byte lengths."""
    n = len(data)
    pos = 0
    while pos < n:
        if pos + 4 > n:
            return False
        size = int.from_bytes(data[pos:pos + 4], "big")
        pos += 4 + size
        if size == 0 or pos > n:
            return False
    return True


def _has_random_access_nal(codec: Codec, data: bytes) -> bool:
    """An H.264 IDR slice (type 5) or an H.265 IRAP picture (types 16-23) among the Annex-B NAL units."""
    find = data.find
    at = find(b"\x00\x00\x01")
    while 0 <= at < len(data) - 3:
        kind = data[at + 3] & 0x1F if codec is Codec.H264 else data[at + 3] >> 1 & 0x3F
        if (kind == 5) if codec is Codec.H264 else (16 <= kind <= 23):
            return True
        if codec is Codec.H264 and kind == 1:
            return False  # a non-IDR slice: the picture is not a random access point
        if codec is Codec.H265 and kind < 16:
            return False
        at = find(b"\x00\x00\x01", at + 4)
    return False


def _parameter_sets(codec: Codec, data: bytes) -> bytes:
    """The parameter-set NAL units (H.264 SPS/PPS, H.265 VPS/SPS/PPS) before the first slice, joined."""
    h264_codec = codec is Codec.H264
    sets: list[bytes] = []
    find = data.find
    at = find(b"\x00\x00\x01")
    while 0 <= at < len(data) - 3:
        start = at + 3
        kind = data[start] & 0x1F if h264_codec else data[start] >> 1 & 0x3F
        at = find(b"\x00\x00\x01", start)
        if (kind in (7, 8)) if h264_codec else (32 <= kind <= 34):
            sets.append(data[start:at if at >= 0 else len(data)])
        elif (1 <= kind <= 5) if h264_codec else kind < 32:
            break  # a slice: parameter sets come before it
    return b"".join(sets)


def _config_from_extradata(codec: Codec, extradata: bytes) -> bytes:
    if codec in (Codec.H264, Codec.H265) and nal.is_annexb(extradata):
        return _config_from_annexb(codec, extradata)
    return extradata


def _config_from_annexb(codec: Codec, data: bytes) -> bytes:
    try:
        return h264.avcc_from_annexb(data) if codec is Codec.H264 else h265.hvcc_from_annexb(data)
    except (CodecConfigError, ValueError, IndexError):
        return b""

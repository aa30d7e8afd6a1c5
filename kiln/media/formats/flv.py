"""Audio/video message bodies (FLV tag bodies, legacy and Enhanced RTMP) -> the shared media model.

One converter per publish keeps the per-track state that FLV leaves implicit: the current decoder
configuration (sent once as a "sequence header"), the NAL length size, and a 64-bit extension of
RTMP's 32-bit millisecond clock. Track ids follow OME: video 0, audio 1.

Legacy FLV: video codec 7 (AVC) and audio format 10 (AAC). Enhanced RTMP (veovera/enhanced-rtmp):
FourCC ``hvc1``/``avc1`` video and ``mp4a`` audio, including ModEx prefixes, when enabled.
"""

from __future__ import annotations

import logging
import struct
import time
from dataclasses import dataclass

from kiln.media.formats.codecs import h264, h265
from kiln.media.formats.codecs.describe import describe_track, with_4_byte_lengths
from kiln.media.formats.codecs.errors import CodecConfigError
from kiln.media.formats.codecs.nal import annexb_to_length_prefixed, convert_length_size, is_annexb
from kiln.media.formats.rtmp.errors import FlvError
from kiln.media.model import MS, Codec, Packet, Track

log = logging.getLogger(__name__)

_U32 = struct.Struct(">I")
_monotonic = time.monotonic

VIDEO_TRACK_ID = 0
AUDIO_TRACK_ID = 1

# legacy video
CODEC_AVC = 7
CODEC_HEVC_LEGACY = 12          # a widespread pre-E-RTMP extension for HEVC in FLV
FRAME_KEY = 1
FRAME_GENERATED_KEY = 4
FRAME_COMMAND = 5
AVC_SEQUENCE_HEADER = 0
AVC_NALU = 1
AVC_END_OF_SEQUENCE = 2

# Enhanced RTMP video packet types
PT_SEQUENCE_START = 0
PT_CODED_FRAMES = 1
PT_SEQUENCE_END = 2
PT_CODED_FRAMES_X = 3
PT_METADATA = 4
PT_MPEG2TS_SEQUENCE_START = 5
PT_MULTITRACK = 6
PT_MODEX = 7
# Enhanced RTMP audio packet types
APT_SEQUENCE_START = 0
APT_CODED_FRAMES = 1
APT_SEQUENCE_END = 2
APT_MULTICHANNEL_CONFIG = 4
APT_MULTITRACK = 5
APT_MODEX = 7

SOUND_AAC = 10
SOUND_EX_HEADER = 9
AAC_SEQUENCE_HEADER = 0
AAC_RAW = 1

VIDEO_FOURCC = {b"avc1": Codec.H264, b"hvc1": Codec.H265}
AUDIO_FOURCC = {b"mp4a": Codec.AAC}
LEGACY_VIDEO_CODECS = {2: "Sorenson H.263", 3: "Screen video", 4: "On2 VP6", 5: "On2 VP6 with alpha",
                       6: "Screen video v2"}
SOUND_FORMATS = {0: "linear PCM (platform endian)", 1: "ADPCM", 2: "MP3", 3: "linear PCM (little endian)",
                 4: "Nellymoser 16 kHz mono", 5: "Nellymoser 8 kHz mono", 6: "Nellymoser", 7: "G.711 A-law",
                 8: "G.711 mu-law", 11: "Speex", 14: "MP3 8 kHz", 15: "device-specific sound"}


class TimestampUnwrapper:
    """Extends RTMP's 32-bit millisecond timestamps past the 49.7-day wrap: each step is taken as
    the signed 32-bit difference from the previous timestamp, so audio and video may interleave
    slightly out of order and still share one clock."""

    __slots__ = ("_last", "_value")

    def __init__(self) -> None:
        self._last: int | None = None
        self._value = 0

    def __call__(self, ts32: int) -> int:
        if self._last is None:
            self._value = ts32
        else:
            diff = (ts32 - self._last) & 0xFFFFFFFF
            if diff >= 0x80000000:
                diff -= 0x100000000
            self._value += diff
        self._last = ts32
        return self._value


@dataclass(slots=True)
class _TrackState:
    track: Track | None = None
    received_config: bytes = b""     # the sequence header's record as sent (the track's says 4-byte NAL lengths)
    nal_length_size: int = 4
    pending_config: bool = False     # the next packet carries the (new) config
    dropped_before_config: int = 0


def _avcc_is_valid(data: memoryview) -> bool:
    """True when ``data`` is an exact sequence of non-empty NAL units with 4-byte lengths (the model's
    form, so the frame passes as it is). Inline: this runs for every video frame."""
    n = len(data)
    pos = 0
    unpack = _U32.unpack_from
    while pos < n:
        if pos + 4 > n:
            return False
        size = unpack(data, pos)[0]
        pos += 4 + size
        if size == 0 or pos > n:
            return False
    return True


def _si24(body: bytes | bytearray, pos: int) -> int:
    value = (body[pos] << 16) | (body[pos + 1] << 8) | body[pos + 2]
    return value - 0x1000000 if value & 0x800000 else value


def _skip_modex(body: bytes | bytearray, pos: int, what: str) -> tuple[int, int]:
    """Skip ModEx prefixes (size UI8+1, or UI16+1 when that is 256; data; modExType|packetType);
    returns (position after them, the real packet type)."""
    while True:
        if pos >= len(body):
            raise FlvError(f"{what} ModEx truncated")
        size = body[pos] + 1
        pos += 1
        if size == 256:
            if pos + 2 > len(body):
                raise FlvError(f"{what} ModEx size truncated")
            size = int.from_bytes(body[pos:pos + 2], "big") + 1
            pos += 2
        pos += size
        if pos >= len(body):
            raise FlvError(f"{what} ModEx data overruns the message")
        packet_type = body[pos] & 0x0F
        pos += 1
        if packet_type != PT_MODEX:
            return pos, packet_type


class FlvConverter:
    """Converts one publisher's audio/video message bodies; returns a new Track when the decoder
    configuration is new or changed, a Packet for coded frames, None for everything else."""

    def __init__(self, enhanced: bool = False) -> None:
        self.enhanced = enhanced
        self.clock = TimestampUnwrapper()
        self.video = _TrackState()
        self.audio = _TrackState()

    # ---- video ------------------------------------------------------------------------------
    def convert_video(self, timestamp: int, body: bytes | bytearray) -> Track | Packet | None:
        if not body:
            return None
        b0 = body[0]
        if b0 & 0x80:
            return self._enhanced_video(timestamp, body)
        frame_type = b0 >> 4
        codec_id = b0 & 0x0F
        if frame_type == FRAME_COMMAND:
            return None
        if codec_id == CODEC_AVC:
            codec = Codec.H264
        elif codec_id == CODEC_HEVC_LEGACY:
            if not self.enhanced:
                raise FlvError("HEVC video (FLV codec id 12) needs Enhanced RTMP, which is disabled on this server")
            codec = Codec.H265
        else:
            name = LEGACY_VIDEO_CODECS.get(codec_id, f"codec id {codec_id}")
            raise FlvError(f"unsupported video codec {name} (FLV codec id {codec_id}); H.264 is accepted")
        if len(body) < 5:
            raise FlvError(f"{codec.value} video tag body of {len(body)} bytes is too short")
        packet_type = body[1]
        if packet_type == AVC_SEQUENCE_HEADER:
            return self._video_config(codec, body[5:])
        if packet_type == AVC_NALU:
            return self._video_frame(timestamp, body, 5, _si24(body, 2), frame_type, codec)
        if packet_type == AVC_END_OF_SEQUENCE:
            return None
        raise FlvError(f"{codec.value} packet type {packet_type} is invalid")

    def _enhanced_video(self, timestamp: int, body: bytes | bytearray) -> Track | Packet | None:
        b0 = body[0]
        frame_type = (b0 >> 4) & 0x07
        packet_type = b0 & 0x0F
        pos = 1
        if packet_type == PT_MODEX:
            pos, packet_type = _skip_modex(body, pos, "video")
        if packet_type != PT_METADATA and frame_type == FRAME_COMMAND:
            return None
        if packet_type == PT_MULTITRACK:
            raise FlvError("multitrack Enhanced RTMP video is not supported")
        if len(body) < pos + 4:
            raise FlvError("Enhanced RTMP video header truncated before its FourCC")
        fourcc = bytes(body[pos:pos + 4])
        pos += 4
        codec = VIDEO_FOURCC.get(fourcc)
        if codec is None:
            raise FlvError(f"unsupported Enhanced RTMP video codec {fourcc!r}; avc1 and hvc1 are accepted")
        if not self.enhanced:
            raise FlvError(f"Enhanced RTMP video ({fourcc.decode()}) received, but Enhanced RTMP is disabled "
                           "on this server")
        if packet_type == PT_SEQUENCE_START:
            return self._video_config(codec, body[pos:])
        if packet_type == PT_CODED_FRAMES:
            if len(body) < pos + 3:
                raise FlvError("Enhanced RTMP coded frames truncated in the composition time")
            return self._video_frame(timestamp, body, pos + 3, _si24(body, pos), frame_type, codec)
        if packet_type == PT_CODED_FRAMES_X:
            return self._video_frame(timestamp, body, pos, 0, frame_type, codec)
        if packet_type in (PT_SEQUENCE_END, PT_METADATA):
            return None
        if packet_type == PT_MPEG2TS_SEQUENCE_START:
            raise FlvError("Enhanced RTMP MPEG2TSSequenceStart is not supported")
        raise FlvError(f"Enhanced RTMP video packet type {packet_type} is invalid")

    def _video_config(self, codec: Codec, body: bytes | bytearray) -> Track | None:
        state = self.video
        config = bytes(body)
        if state.track is not None and state.track.codec is codec and state.received_config == config:
            return None  # a repeated, identical sequence header
        try:
            if codec is Codec.H264:
                length_size = h264.parse_avcc(config).nal_length_size
            else:
                length_size = h265.parse_hvcc(config).nal_length_size
            # frames are re-prefixed with 4-byte lengths (_video_frame): the record players get must say 4
            track = describe_track(VIDEO_TRACK_ID, codec, with_4_byte_lengths(codec, config), MS)
        except CodecConfigError as exc:
            raise FlvError(f"bad {codec.value} sequence header: {exc}") from exc
        state.track = track
        state.received_config = config
        state.nal_length_size = length_size
        state.pending_config = True
        return track

    def _video_frame(self, timestamp: int, body: bytes | bytearray, start: int, cts: int, frame_type: int,
                     codec: Codec) -> Packet | None:
        state = self.video
        dts = self.clock(timestamp)
        if state.track is None or state.track.codec is not codec:
            state.dropped_before_config += 1
            if state.dropped_before_config == 1:
                log.info("rtmp video frame before its sequence header dropped codec=%s", codec.value)
            return None
        if len(body) <= start:
            return None  # an empty frame carries nothing to decode
        data = memoryview(body)[start:]  # the frame is copied once, into the packet's payload
        try:
            if state.nal_length_size == 4 and _avcc_is_valid(data):
                payload = bytes(data)
            elif state.nal_length_size != 4:
                payload = convert_length_size(data, state.nal_length_size)
            elif is_annexb(bytes(data[:4])):
                payload = annexb_to_length_prefixed(bytes(data))
            else:
                raise FlvError(f"{codec.value} frame is not a valid length-prefixed NAL sequence")
        except CodecConfigError as exc:
            raise FlvError(f"bad {codec.value} frame: {exc}") from exc
        config = None
        if state.pending_config:
            config = state.track.config
            state.pending_config = False
        keyframe = frame_type in (FRAME_KEY, FRAME_GENERATED_KEY)
        return Packet(VIDEO_TRACK_ID, dts + cts, dts, MS, payload, keyframe, 0, config, _monotonic())

    # ---- audio ------------------------------------------------------------------------------
    def convert_audio(self, timestamp: int, body: bytes | bytearray) -> Track | Packet | None:
        if not body:
            return None
        sound_format = body[0] >> 4
        if sound_format == SOUND_AAC:
            if len(body) < 2:
                raise FlvError("AAC audio tag body too short")
            if body[1] == AAC_RAW:  # nearly every audio message
                return self._audio_frame(timestamp, body, 2, Codec.AAC)
            if body[1] == AAC_SEQUENCE_HEADER:
                return self._audio_config(Codec.AAC, body[2:])
            if body[1] == AAC_RAW:
                return self._audio_frame(timestamp, body, 2, Codec.AAC)
            raise FlvError(f"AAC packet type {body[1]} is invalid")
        if sound_format == SOUND_EX_HEADER:
            return self._enhanced_audio(timestamp, body)
        name = SOUND_FORMATS.get(sound_format, f"sound format {sound_format}")
        raise FlvError(f"unsupported audio codec {name} (FLV SoundFormat {sound_format}); AAC is accepted")

    def _enhanced_audio(self, timestamp: int, body: bytes | bytearray) -> Track | Packet | None:
        packet_type = body[0] & 0x0F
        pos = 1
        if packet_type == APT_MODEX:
            pos, packet_type = _skip_modex(body, pos, "audio")
        if packet_type == APT_MULTITRACK:
            raise FlvError("multitrack Enhanced RTMP audio is not supported")
        if len(body) < pos + 4:
            raise FlvError("Enhanced RTMP audio header truncated before its FourCC")
        fourcc = bytes(body[pos:pos + 4])
        pos += 4
        codec = AUDIO_FOURCC.get(fourcc)
        if codec is None:
            raise FlvError(f"unsupported Enhanced RTMP audio codec {fourcc!r}; mp4a (AAC) is accepted")
        if not self.enhanced:
            raise FlvError(f"Enhanced RTMP audio ({fourcc.decode()}) received, but Enhanced RTMP is disabled "
                           "on this server")
        if packet_type == APT_SEQUENCE_START:
            return self._audio_config(codec, body[pos:])
        if packet_type == APT_CODED_FRAMES:
            return self._audio_frame(timestamp, body, pos, codec)
        if packet_type in (APT_SEQUENCE_END, APT_MULTICHANNEL_CONFIG):
            return None
        raise FlvError(f"Enhanced RTMP audio packet type {packet_type} is invalid")

    def _audio_config(self, codec: Codec, body: bytes | bytearray) -> Track | None:
        state = self.audio
        config = bytes(body)
        if state.track is not None and state.track.codec is codec and state.track.config == config:
            return None
        try:
            track = describe_track(AUDIO_TRACK_ID, codec, config, MS)
        except CodecConfigError as exc:
            raise FlvError(f"bad {codec.value} sequence header: {exc}") from exc
        state.track = track
        state.pending_config = True
        return track

    def _audio_frame(self, timestamp: int, body: bytes | bytearray, start: int, codec: Codec) -> Packet | None:
        state = self.audio
        dts = self.clock(timestamp)
        if state.track is None or state.track.codec is not codec:
            state.dropped_before_config += 1
            if state.dropped_before_config == 1:
                log.info("rtmp audio frame before its sequence header dropped codec=%s", codec.value)
            return None
        if len(body) <= start:
            return None
        config = None
        if state.pending_config:
            config = state.track.config
            state.pending_config = False
        # one copy: a bytes body (a message read in one piece) is sliced, a reassembled one viewed first
        data = body[start:] if type(body) is bytes else bytes(memoryview(body)[start:])
        return Packet(AUDIO_TRACK_ID, dts, dts, MS, data, True, 0, config, _monotonic())

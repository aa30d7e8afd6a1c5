"""What one Video/Audio encode of an output profile asks for, resolved against its input track.

OME's rules (media-spec §9): ``Bitrate`` accepts K/M suffixes; setting only one of ``Width`` and
``Height`` keeps the input's aspect ratio; unset framerate/bitrate inherit from the input;
``SkipFrames`` overrides ``Framerate`` (fps_in / (n + 1)); ``KeyFrameInterval`` is in frames, or in
milliseconds with ``KeyFrameIntervalType=time``. Two encodes with the same resolved settings share
one encoder (``key``), across profiles.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Any

from kiln.config.validate import parse_bitrate
from kiln.config.values import as_float, as_int
from kiln.media.model import Codec, Track
from kiln.media.stream.bypass import codec_of

DEFAULT_FRAMERATE = 30.0
DEFAULT_VIDEO_BITRATE = 2_000_000
DEFAULT_AUDIO_BITRATE = 128_000
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
DEFAULT_PRESET = "veryfast"
VIDEO_ENCODERS = {Codec.H264: "libx264", Codec.H265: "libx265", Codec.VP8: "libvpx"}
AUDIO_ENCODERS = {Codec.AAC: "aac", Codec.OPUS: "libopus"}

# what tells one encode's settings from another's: equal keys share one encoder
EncodeKey = tuple[object, ...]


class EncodeSettingsError(ValueError):
    """The encode cannot run on this input (unknown codec, bad value)."""




def _even(value: float) -> int:
    return max(2, int(value / 2.0 + 0.5) * 2)


@dataclass(frozen=True, slots=True)
class VideoSettings:
    codec: Codec
    width: int
    height: int
    framerate: float          # output frames per second
    resample_fps: bool        # True when the framerate differs from the input's (an fps filter runs)
    bitrate: int
    key_frame_interval: int   # frames
    bframes: int
    preset: str
    profile: str
    threads: int

    @property
    def key(self) -> EncodeKey:
        return astuple(self)

    @property
    def encoder_name(self) -> str:
        return VIDEO_ENCODERS[self.codec]


@dataclass(frozen=True, slots=True)
class AudioSettings:
    codec: Codec
    sample_rate: int
    channels: int
    bitrate: int

    @property
    def key(self) -> EncodeKey:
        return astuple(self)

    @property
    def encoder_name(self) -> str:
        return AUDIO_ENCODERS[self.codec]


def output_size(width: int, height: int, in_width: int, in_height: int) -> tuple[int, int]:
    """The encoded size: both given → as given; one given → the other keeps the input's aspect ratio."""
    if width > 0 and height > 0:
        return _even(width), _even(height)
    if in_width <= 0 or in_height <= 0:
        if width > 0 or height > 0:
            raise EncodeSettingsError("the input size is unknown and the encode gives only one dimension")
        raise EncodeSettingsError("the input size is unknown")
    if width > 0:
        return _even(width), _even(width * in_height / in_width)
    if height > 0:
        return _even(height * in_width / in_height), _even(height)
    return _even(in_width), _even(in_height)


def _preset(value: Any) -> str:
    name = str(value or "").strip().lower()
    return name if name in X264_PRESETS else DEFAULT_PRESET


def video_settings(encode: dict[str, Any], source: Track, input_fps: float) -> VideoSettings:
    codec = codec_of(encode.get("codec"))
    if codec not in VIDEO_ENCODERS:
        raise EncodeSettingsError(f"video codec {encode.get('codec')!r} cannot be encoded")
    width, height = output_size(as_int(encode.get("width")), as_int(encode.get("height")), source.width, source.height)
    in_fps = input_fps if input_fps > 0 else DEFAULT_FRAMERATE
    skip = as_int(encode.get("skipFrames"), -1)
    wanted = as_float(encode.get("framerate"))
    if 0 <= skip <= 120 and encode.get("skipFrames") not in (None, ""):
        fps = in_fps / (skip + 1)
    elif wanted > 0:
        fps = wanted
    else:
        fps = in_fps
    fps = round(fps, 3)
    bitrate = parse_bitrate(encode.get("bitrate")) or source.bitrate_conf or DEFAULT_VIDEO_BITRATE
    kfi = as_float(encode.get("keyFrameInterval"))
    if str(encode.get("keyFrameIntervalType") or "").strip().lower() == "time" and kfi > 0:
        gop = max(1, round(fps * kfi / 1000.0))
    elif kfi > 0:
        gop = int(kfi)
    else:
        gop = max(1, round(fps))  # OME's default: one keyframe a second
    profile = str(encode.get("profile") or "").strip().lower()
    return VideoSettings(codec, width, height, fps, abs(fps - in_fps) > 0.01, bitrate, gop,
                         max(0, min(16, as_int(encode.get("bFrames")))), _preset(encode.get("preset")),
                         profile if profile in ("baseline", "main", "high") else "",
                         max(0, as_int(encode.get("threadCount"))))


def audio_settings(encode: dict[str, Any], source: Track) -> AudioSettings:
    codec = codec_of(encode.get("codec"))
    if codec not in AUDIO_ENCODERS:
        raise EncodeSettingsError(f"audio codec {encode.get('codec')!r} cannot be encoded")
    rate = as_int(encode.get("samplerate")) or source.sample_rate or 48000
    if codec is Codec.OPUS:
        rate = 48000  # Opus always runs at 48 kHz on the wire
    channels = as_int(encode.get("channel")) or source.channels or 2
    channels = max(1, min(2, channels))
    bitrate = parse_bitrate(encode.get("bitrate")) or DEFAULT_AUDIO_BITRATE
    return AudioSettings(codec, rate, channels, bitrate)


def input_framerate(track: Track, measured: float) -> float:
    """The input's frame rate: measured when the meter has seen enough, else the SPS timing info."""
    if measured > 0:
        return measured
    if track.codec is Codec.H264 and track.config:
        from kiln.media.formats.codecs import h264
        from kiln.media.formats.codecs.errors import CodecConfigError

        try:
            fps = h264.parse_avcc(track.config).first_sps().fps
        except (CodecConfigError, ValueError, IndexError):
            fps = None
        if fps and 1 <= fps <= 240:
            return float(fps)
    return 0.0

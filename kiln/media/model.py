"""The media model every protocol and publisher shares: tracks and packets.

Conventions (fixed for the whole code base):
- Timestamps are integers in the packet's own ``time_base`` (a ``Fraction``); nothing assumes 1/1000.
- H.264/H.265 payloads are length-prefixed (4-byte big-endian NAL sizes, i.e. AVCC/HVCC), with the
  decoder configuration record (avcC/hvcC) in ``Track.config``. AAC payloads are raw access units
  (no ADTS) with the AudioSpecificConfig in ``Track.config``. Opus is raw packets.
- A packet that carries a new decoder configuration has it in ``Packet.config``; consumers that
  keep per-track state compare it with what they hold.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fractions import Fraction


class MediaKind(enum.Enum):
    VIDEO = "Video"
    AUDIO = "Audio"
    DATA = "Data"
    SUBTITLE = "Subtitle"


class Codec(enum.Enum):
    """Codec names as OME prints them in the streams API."""

    H264 = "H264"
    H265 = "H265"
    VP8 = "VP8"
    VP9 = "VP9"
    AV1 = "AV1"
    AAC = "AAC"
    MP3 = "MP3"
    OPUS = "OPUS"
    JPEG = "JPEG"
    PNG = "PNG"
    WEBP = "WEBP"
    ID3 = "ID3"  # timed metadata on the data track
    NONE = "None"

    @property
    def kind(self) -> MediaKind:
        if self in (Codec.H264, Codec.H265, Codec.VP8, Codec.VP9, Codec.AV1,
                    Codec.JPEG, Codec.PNG, Codec.WEBP):
            return MediaKind.VIDEO
        if self in (Codec.AAC, Codec.MP3, Codec.OPUS):
            return MediaKind.AUDIO
        return MediaKind.DATA


MS = Fraction(1, 1000)


@dataclass(slots=True)
class Track:
    """What is known about one elementary stream, from its bitstream and configuration."""

    id: int
    kind: MediaKind
    codec: Codec
    time_base: Fraction
    config: bytes = b""            # avcC / hvcC / AudioSpecificConfig / OpusHead
    name: str = ""                 # variant name from the output profile ("" for inputs)
    bypass: bool = False
    # video
    width: int = 0
    height: int = 0
    profile: str = ""              # e.g. "High", "Main"
    level: str = ""                # e.g. "3.1"
    codec_string: str = ""         # RFC 6381 string, e.g. "avc1.64001f", "mp4a.40.2"
    framerate_conf: float = 0.0    # configured (encoded outputs); 0 when unknown
    bitrate_conf: int = 0
    key_frame_interval_conf: float = 0.0
    # audio
    sample_rate: int = 0
    channels: int = 0
    samples_per_frame: int = 0     # 1024 for AAC-LC
    # what players are shown (OME's public name, language, characteristics: set by an AudioMap)
    label: str = ""
    language: str = ""
    characteristics: str = ""


@dataclass(slots=True)
class Packet:
    """One access unit of one track. Never mutated after it enters a hub."""

    track_id: int
    pts: int
    dts: int
    time_base: Fraction
    data: bytes
    keyframe: bool = False
    duration: int = 0              # in time_base units, 0 when unknown
    config: bytes | None = None    # new decoder configuration carried by this packet, if any
    arrival: float = field(default=0.0)  # time.monotonic() when it entered the server

    def __init__(self, track_id: int, pts: int, dts: int, time_base: Fraction, data: bytes, keyframe: bool = False,
                 duration: int = 0, config: bytes | None = None, arrival: float = 0.0) -> None:
        # written out, not generated: compiled (mypyc), the dataclass's generated __init__ would run as Python
        # bytecode for every packet of every stream
        self.track_id = track_id
        self.pts = pts
        self.dts = dts
        self.time_base = time_base
        self.data = data
        self.keyframe = keyframe
        self.duration = duration
        self.config = config
        self.arrival = arrival

    @property
    def pts_ms(self) -> float:
        # integer arithmetic, not Fraction: this runs for every packet in the meters
        tb = self.time_base
        return self.pts * tb.numerator * 1000 / tb.denominator

    @property
    def dts_ms(self) -> float:
        tb = self.time_base
        return self.dts * tb.numerator * 1000 / tb.denominator

    def rescaled(self, value: int, time_base: Fraction) -> int:
        """``value`` (in this packet's time base) expressed in ``time_base``, rounded down."""
        return (value * self.time_base.numerator * time_base.denominator) // (
            self.time_base.denominator * time_base.numerator)

"""AAC: AudioSpecificConfig (ISO 14496-3 §1.6.2.1) and ADTS headers (§1.A.2.2).

RTMP and MP4 carry raw AAC with an AudioSpecificConfig; MPEG-TS carries ADTS. The model keeps raw
access units plus the ASC, so ingest parses the ASC for rate/channels/frame size and the TS paths
convert between the two framings here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kiln.media.formats.codecs.bits import BitReader
from kiln.media.formats.codecs.errors import CodecConfigError

SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
# channelConfiguration -> channel count (0 means "see the program config element")
CHANNELS = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8, 11: 7, 12: 8, 13: 24, 14: 8}

AOT_MAIN = 1
AOT_LC = 2
AOT_SBR = 5
AOT_ER_AAC_LD = 23
AOT_PS = 29
AOT_ESCAPE = 31
# object types whose config is a GASpecificConfig (§4.4.1)
_GA_TYPES = frozenset({1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23})
_SYNC_SBR = 0x2B7
_SYNC_PS = 0x548

ADTS_HEADER_SIZE = 7
ADTS_MAX_FRAME = 8191

_OBJECT_NAMES = {1: "Main", 2: "LC", 3: "SSR", 4: "LTP", 5: "HE-AAC", 29: "HE-AACv2", 23: "LD", 39: "ELD"}


@dataclass(frozen=True, slots=True)
class AudioSpecificConfig:
    object_type: int                  # the signalled audioObjectType (5/29 for explicit HE-AAC)
    sample_rate: int                  # core sampling frequency
    channel_config: int
    channels: int
    frame_length: int = 1024          # core samples per frame (960 with frameLengthFlag)
    core_object_type: int = 0         # the underlying AAC object type (2 for HE-AAC over LC)
    sbr: bool = False
    ps: bool = False
    extension_sample_rate: int = 0    # output rate when SBR is signalled

    @property
    def output_sample_rate(self) -> int:
        return self.extension_sample_rate if self.sbr and self.extension_sample_rate else self.sample_rate

    @property
    def output_channels(self) -> int:
        return 2 if self.ps and self.channels == 1 else self.channels

    @property
    def samples_per_frame(self) -> int:
        """Output samples per access unit: SBR doubles the core frame."""
        if self.sbr and self.extension_sample_rate and self.extension_sample_rate != self.sample_rate:
            return self.frame_length * 2
        return self.frame_length

    @property
    def codec_string(self) -> str:
        return f"mp4a.40.{self.object_type}"

    @property
    def profile_name(self) -> str:
        if self.ps:
            return "HE-AACv2"
        if self.sbr:
            return "HE-AAC"
        return _OBJECT_NAMES.get(self.core_object_type or self.object_type, f"AOT {self.object_type}")


def _object_type(r: BitReader) -> int:
    aot = r.u(5)
    if aot == AOT_ESCAPE:
        aot = 32 + r.u(6)
    return aot


def _sample_rate(r: BitReader) -> int:
    index = r.u(4)
    if index == 0x0F:
        rate = r.u(24)
        if rate == 0:
            raise CodecConfigError("AudioSpecificConfig explicit sampling frequency is 0")
        return rate
    if index >= len(SAMPLE_RATES):
        raise CodecConfigError(f"AudioSpecificConfig sampling frequency index {index} is reserved")
    return SAMPLE_RATES[index]


def _pce_channels(r: BitReader) -> int:
    """Channel count from a program_config_element (§4.4.1.1), used when channelConfiguration is 0."""
    r.skip(4 + 2 + 4)  # element_instance_tag, object_type, sampling_frequency_index
    front, side, back = r.u(4), r.u(4), r.u(4)
    lfe = r.u(2)
    assoc = r.u(3)
    cc = r.u(4)
    if r.flag():
        r.skip(4)  # mono_mixdown_element_number
    if r.flag():
        r.skip(4)  # stereo_mixdown_element_number
    if r.flag():
        r.skip(3)  # matrix_mixdown_idx, pseudo_surround_enable
    channels = lfe
    for _ in range(front + side + back):
        is_cpe = r.flag()
        r.skip(4)
        channels += 2 if is_cpe else 1
    r.skip(4 * lfe + 4 * assoc + 5 * cc)
    if channels == 0:
        raise CodecConfigError("AAC program config element declares no channels")
    return channels


def parse_asc(data: bytes | memoryview) -> AudioSpecificConfig:
    data = bytes(data)
    if len(data) < 2:
        raise CodecConfigError(f"AudioSpecificConfig too short ({len(data)} bytes)")
    r = BitReader(data, "AudioSpecificConfig")
    aot = _object_type(r)
    if aot == 0:
        raise CodecConfigError("AudioSpecificConfig audioObjectType 0 is invalid")
    rate = _sample_rate(r)
    channel_config = r.u(4)
    core = aot
    sbr = ps = False
    ext_rate = 0
    if aot in (AOT_SBR, AOT_PS):
        # explicit hierarchical signalling: the extension rate, then the core object type
        sbr = True
        ps = aot == AOT_PS
        ext_rate = _sample_rate(r)
        core = _object_type(r)
        if core == 22:
            r.skip(4)  # extensionChannelConfiguration (ER BSAC)
    frame_length = 1024
    channels = CHANNELS.get(channel_config, 0)
    if core in _GA_TYPES:
        short_frame = r.flag()
        long_length = 512 if core == AOT_ER_AAC_LD else 1024
        frame_length = long_length * 15 // 16 if short_frame else long_length
        if r.flag():  # dependsOnCoreCoder
            r.skip(14)
        extension = r.flag()
        if channel_config == 0:
            channels = _pce_channels(r)
        if core in (6, 20):
            r.skip(3)  # layerNr
        if extension:
            if core == 22:
                r.skip(16)  # numOfSubFrame, layer_length
            if core in (17, 19, 20, 23):
                r.skip(3)  # resilience flags
            r.skip(1)  # extensionFlag3
    elif channel_config == 0:
        raise CodecConfigError(f"AudioSpecificConfig object type {core} with channelConfiguration 0 is unsupported")
    if channels == 0:
        raise CodecConfigError(f"AudioSpecificConfig channelConfiguration {channel_config} is reserved")
    if not sbr and r.remaining >= 16 and r.peek(11) == _SYNC_SBR:
        # backward-compatible (implicit-core) SBR/PS signalling after the GASpecificConfig
        r.skip(11)
        ext_type = _object_type(r)
        if ext_type == AOT_SBR:
            sbr = r.flag()
            if sbr:
                ext_rate = _sample_rate(r)
                if r.remaining >= 12 and r.peek(11) == _SYNC_PS:
                    r.skip(11)
                    ps = r.flag()
    return AudioSpecificConfig(aot, rate, channel_config, channels, frame_length, core, sbr, ps, ext_rate)


def _rate_bits(rate: int) -> tuple[int, int]:
    if rate in SAMPLE_RATES:
        return SAMPLE_RATES.index(rate), 4
    if not 0 < rate < 1 << 24:
        raise CodecConfigError(f"sampling frequency {rate} cannot be written")
    return (0x0F << 24) | rate, 28


def build_asc(object_type: int, sample_rate: int, channel_config: int, frame_length: int = 1024) -> bytes:
    """A plain (no SBR) AudioSpecificConfig with a GASpecificConfig."""
    if not 0 < object_type < 96 or object_type in (AOT_SBR, AOT_PS):
        raise CodecConfigError(f"cannot build an AudioSpecificConfig for object type {object_type}")
    if not 0 < channel_config < 16:
        raise CodecConfigError(f"channelConfiguration {channel_config} cannot be written without a PCE")
    value, nbits = 0, 0
    if object_type >= AOT_ESCAPE:
        value, nbits = (AOT_ESCAPE << 6) | (object_type - 32), 11
    else:
        value, nbits = object_type, 5
    rate_value, rate_bits = _rate_bits(sample_rate)
    value = (value << rate_bits) | rate_value
    nbits += rate_bits
    value = (value << 4) | channel_config
    nbits += 4
    if object_type in _GA_TYPES:
        value = (value << 3) | (0b100 if frame_length in (960, 480) else 0)
        nbits += 3
    pad = -nbits % 8
    return (value << pad).to_bytes((nbits + pad) // 8, "big")


@dataclass(frozen=True, slots=True)
class AdtsHeader:
    object_type: int          # profile + 1
    sample_rate_index: int
    channel_config: int
    frame_length: int         # whole frame, header included
    header_length: int        # 7, or 9 with CRC
    raw_blocks: int           # number_of_raw_data_blocks_in_frame + 1

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATES[self.sample_rate_index]

    @property
    def payload_length(self) -> int:
        return self.frame_length - self.header_length

    def audio_specific_config(self) -> bytes:
        return build_asc(self.object_type, self.sample_rate, self.channel_config)


def parse_adts_header(data: bytes | memoryview, offset: int = 0) -> AdtsHeader:
    if len(data) - offset < ADTS_HEADER_SIZE:
        raise CodecConfigError("ADTS header truncated")
    b = bytes(data[offset:offset + ADTS_HEADER_SIZE])
    if b[0] != 0xFF or b[1] & 0xF0 != 0xF0:
        raise CodecConfigError("ADTS syncword missing")
    if (b[1] >> 1) & 0x03 != 0:
        raise CodecConfigError("ADTS layer is not 0")
    protection_absent = b[1] & 0x01
    profile = b[2] >> 6
    sf_index = (b[2] >> 2) & 0x0F
    if sf_index >= len(SAMPLE_RATES):
        raise CodecConfigError(f"ADTS sampling frequency index {sf_index} is reserved")
    channel_config = ((b[2] & 0x01) << 2) | (b[3] >> 6)
    frame_length = ((b[3] & 0x03) << 11) | (b[4] << 3) | (b[5] >> 5)
    header_length = 7 if protection_absent else 9
    if frame_length <= header_length:
        raise CodecConfigError(f"ADTS frame length {frame_length} too small")
    return AdtsHeader(profile + 1, sf_index, channel_config, frame_length, header_length, (b[6] & 0x03) + 1)


def build_adts_header(asc: AudioSpecificConfig, payload_length: int) -> bytes:
    """A 7-byte ADTS header (no CRC) for one raw access unit of ``payload_length`` bytes."""
    object_type = asc.core_object_type or asc.object_type
    if not 1 <= object_type <= 4:
        raise CodecConfigError(f"ADTS cannot carry audio object type {object_type}")
    if asc.sample_rate not in SAMPLE_RATES:
        raise CodecConfigError(f"ADTS cannot carry sampling frequency {asc.sample_rate}")
    if not 0 < asc.channel_config < 8:
        raise CodecConfigError(f"ADTS cannot carry channelConfiguration {asc.channel_config}")
    frame_length = payload_length + ADTS_HEADER_SIZE
    if frame_length > ADTS_MAX_FRAME:
        raise CodecConfigError(f"AAC frame of {payload_length} bytes is too long for ADTS")
    sf_index = SAMPLE_RATES.index(asc.sample_rate)
    fullness = 0x7FF  # variable bit rate
    value = (0xFFF << 44) | (0 << 43) | (0 << 41) | (1 << 40) | ((object_type - 1) << 38) | (sf_index << 34) \
        | (asc.channel_config << 30) | (frame_length << 13) | (fullness << 2)
    return value.to_bytes(7, "big")


def iter_adts_frames(data: bytes | memoryview) -> Iterator[tuple[AdtsHeader, memoryview]]:
    """(header, raw payload) for each complete ADTS frame; stops at a partial frame at the end."""
    view = memoryview(data)
    pos = 0
    n = len(view)
    while n - pos >= ADTS_HEADER_SIZE:
        header = parse_adts_header(view, pos)
        end = pos + header.frame_length
        if end > n:
            return
        yield header, view[pos + header.header_length:end]
        pos = end

"""H.265/HEVC: hvcC (ISO 14496-15 §8.3.3), SPS fields (ITU-T H.265 §7.3.2.2), RFC 6381 names.

Enhanced RTMP and MPEG-TS bring HEVC; the API and the packagers need its picture size, profile,
tier, level and a well-formed hvcC, all of which come from the SPS.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from kiln.media.formats.codecs.bits import BitReader
from kiln.media.formats.codecs.errors import CodecConfigError
from kiln.media.formats.codecs.nal import iter_length_prefixed, split_annexb, unescape_rbsp

NAL_IRAP_FIRST = 16   # BLA_W_LP
NAL_IRAP_LAST = 23    # RSV_IRAP_VCL23
NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
NAL_AUD = 35
NAL_SEI_PREFIX = 39
NAL_SEI_SUFFIX = 40

MAX_DIMENSION = 32768
HVCC_HEADER_SIZE = 23

_PROFILE_NAMES = {1: "Main", 2: "Main 10", 3: "Main Still Picture", 4: "Rext", 5: "High Throughput 4:4:4",
                  6: "Multiview Main", 7: "Scalable Main", 8: "3D Main", 9: "SCC", 10: "Scalable Rext"}


def nal_type(nal: bytes | memoryview) -> int:
    return (nal[0] >> 1) & 0x3F


@dataclass(frozen=True, slots=True)
class ProfileTierLevel:
    """The general_* fields of profile_tier_level(), shared by the SPS and the hvcC header."""

    profile_space: int
    tier: int
    profile_idc: int
    compat_flags: int        # general_profile_compatibility_flag[0..31], flag 0 in the most significant bit
    constraint_flags: int    # the 48 bits from general_progressive_source_flag on
    level_idc: int

    @property
    def profile_name(self) -> str:
        idc = self.profile_idc
        if idc == 0:  # profile only signalled through the compatibility flags
            idc = next((j for j in range(1, 32) if self.compat_flags >> (31 - j) & 1), 0)
        return _PROFILE_NAMES.get(idc, f"Profile {idc}")

    @property
    def level_text(self) -> str:
        """Level as Table A.8 writes it ("3.1", "4"): general_level_idc is 30 times the level."""
        major, rest = divmod(self.level_idc, 30)
        minor = rest // 3
        return f"{major}" if minor == 0 else f"{major}.{minor}"

    @property
    def codec_string(self) -> str:
        """RFC 6381 / ISO 14496-15 Annex E: hvc1.[A-C]<profile>.<compat reversed>.<L|H><level>[.<constraint bytes>]."""
        space = ("", "A", "B", "C")[self.profile_space]
        reversed_compat = int(f"{self.compat_flags:032b}"[::-1], 2)
        tier = "H" if self.tier else "L"
        constraint_bytes = list(self.constraint_flags.to_bytes(6, "big"))
        while constraint_bytes and constraint_bytes[-1] == 0:
            constraint_bytes.pop()
        tail = "".join(f".{b:X}" for b in constraint_bytes)
        return f"hvc1.{space}{self.profile_idc}.{reversed_compat:X}.{tier}{self.level_idc}{tail}"


@dataclass(frozen=True, slots=True)
class H265Sps:
    ptl: ProfileTierLevel
    max_sub_layers: int
    temporal_id_nesting: bool
    sps_id: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int

    @property
    def profile_name(self) -> str:
        return self.ptl.profile_name

    @property
    def level_text(self) -> str:
        return self.ptl.level_text

    @property
    def codec_string(self) -> str:
        return self.ptl.codec_string


def _parse_ptl(r: BitReader, max_sub_layers_minus1: int) -> ProfileTierLevel:
    profile_space = r.u(2)
    tier = r.u(1)
    profile_idc = r.u(5)
    compat = r.u(32)
    constraints = r.u(48)
    level_idc = r.u(8)
    sub_profile = []
    sub_level = []
    for _ in range(max_sub_layers_minus1):
        sub_profile.append(r.flag())
        sub_level.append(r.flag())
    if max_sub_layers_minus1 > 0:
        r.skip(2 * (8 - max_sub_layers_minus1))
    for i in range(max_sub_layers_minus1):
        if sub_profile[i]:
            r.skip(88)
        if sub_level[i]:
            r.skip(8)
    return ProfileTierLevel(profile_space, tier, profile_idc, compat, constraints, level_idc)


def parse_sps(nal: bytes | memoryview) -> H265Sps:
    """Parse an HEVC sequence parameter set NAL unit (with its two-byte NAL header)."""
    nal = bytes(nal)
    if len(nal) < 16:
        raise CodecConfigError(f"H.265 SPS too short ({len(nal)} bytes)")
    if nal_type(nal) != NAL_SPS:
        raise CodecConfigError(f"not an H.265 SPS (NAL type {nal_type(nal)})")
    r = BitReader(unescape_rbsp(nal[2:]), "H.265 SPS")
    r.skip(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    if max_sub_layers_minus1 > 6:
        raise CodecConfigError("H.265 SPS sps_max_sub_layers_minus1 out of range")
    nesting = r.flag()
    ptl = _parse_ptl(r, max_sub_layers_minus1)
    sps_id = r.ue()
    if sps_id > 15:
        raise CodecConfigError(f"H.265 SPS id {sps_id} out of range")
    chroma_format_idc = r.ue()
    if chroma_format_idc > 3:
        raise CodecConfigError(f"H.265 SPS chroma_format_idc {chroma_format_idc} out of range")
    separate_colour_plane = chroma_format_idc == 3 and r.flag()
    width = r.ue()
    height = r.ue()
    left = right = top = bottom = 0
    if r.flag():  # conformance_window_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
    bit_depth_luma = r.ue() + 8
    bit_depth_chroma = r.ue() + 8
    if bit_depth_luma > 16 or bit_depth_chroma > 16:
        raise CodecConfigError("H.265 SPS bit depth out of range")
    chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
    sub_width = 2 if chroma_array_type in (1, 2) else 1
    sub_height = 2 if chroma_array_type == 1 else 1
    width -= sub_width * (left + right)
    height -= sub_height * (top + bottom)
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        raise CodecConfigError(f"H.265 SPS picture size {width}x{height} out of range")
    return H265Sps(ptl, max_sub_layers_minus1 + 1, nesting, sps_id, chroma_format_idc, bit_depth_luma,
                   bit_depth_chroma, width, height)


@dataclass(frozen=True, slots=True)
class NalArray:
    nal_type: int
    nals: tuple[bytes, ...]
    complete: bool = True


@dataclass(frozen=True, slots=True)
class HevcConfig:
    """HEVCDecoderConfigurationRecord."""

    ptl: ProfileTierLevel
    min_spatial_segmentation: int
    parallelism_type: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    avg_frame_rate: int
    constant_frame_rate: int
    num_temporal_layers: int
    temporal_id_nested: bool
    nal_length_size: int
    arrays: tuple[NalArray, ...]

    def nals_of(self, kind: int) -> list[bytes]:
        return [n for a in self.arrays if a.nal_type == kind for n in a.nals]

    def first_sps(self) -> H265Sps:
        sps = self.nals_of(NAL_SPS)
        if not sps:
            raise CodecConfigError("hvcC has no SPS")
        return parse_sps(sps[0])

    def to_bytes(self) -> bytes:
        if self.nal_length_size not in (1, 2, 4):
            raise CodecConfigError(f"hvcC NAL length size {self.nal_length_size} invalid")
        p = self.ptl
        out = bytearray([1, (p.profile_space << 6) | (p.tier << 5) | p.profile_idc])
        out += p.compat_flags.to_bytes(4, "big") + p.constraint_flags.to_bytes(6, "big")
        out.append(p.level_idc)
        out += struct.pack(">H", 0xF000 | self.min_spatial_segmentation)
        out += bytes([0xFC | self.parallelism_type, 0xFC | self.chroma_format_idc,
                      0xF8 | (self.bit_depth_luma - 8), 0xF8 | (self.bit_depth_chroma - 8)])
        out += struct.pack(">H", self.avg_frame_rate)
        out.append((self.constant_frame_rate << 6) | (self.num_temporal_layers << 3)
                   | (int(self.temporal_id_nested) << 2) | (self.nal_length_size - 1))
        out.append(len(self.arrays))
        for arr in self.arrays:
            out.append((int(arr.complete) << 7) | arr.nal_type)
            out += struct.pack(">H", len(arr.nals))
            for nal in arr.nals:
                out += struct.pack(">H", len(nal)) + nal
        return bytes(out)


def parse_hvcc(data: bytes | memoryview) -> HevcConfig:
    data = bytes(data)
    if len(data) < HVCC_HEADER_SIZE:
        raise CodecConfigError(f"hvcC too short ({len(data)} bytes)")
    if data[0] != 1:
        raise CodecConfigError(f"hvcC configurationVersion {data[0]} is not 1")
    b1 = data[1]
    ptl = ProfileTierLevel(b1 >> 6, (b1 >> 5) & 1, b1 & 0x1F, int.from_bytes(data[2:6], "big"),
                           int.from_bytes(data[6:12], "big"), data[12])
    b21 = data[21]
    pos = HVCC_HEADER_SIZE
    arrays = []
    for _ in range(data[22]):
        if pos + 3 > len(data):
            raise CodecConfigError("hvcC truncated in the NAL array headers")
        kind = data[pos] & 0x3F
        complete = bool(data[pos] & 0x80)
        (count,) = struct.unpack_from(">H", data, pos + 1)
        pos += 3
        nals = []
        for _ in range(count):
            if pos + 2 > len(data):
                raise CodecConfigError("hvcC truncated in a NAL array")
            (size,) = struct.unpack_from(">H", data, pos)
            pos += 2
            if size < 2 or pos + size > len(data):
                raise CodecConfigError(f"hvcC NAL length {size} overruns the record")
            nal = data[pos:pos + size]
            if nal_type(nal) != kind:
                raise CodecConfigError(f"hvcC array of type {kind} holds NAL type {nal_type(nal)}")
            nals.append(nal)
            pos += size
        arrays.append(NalArray(kind, tuple(nals), complete))
    length_size = (b21 & 0x03) + 1
    if length_size == 3:
        raise CodecConfigError("hvcC NAL length size 3 is invalid")
    return HevcConfig(ptl, struct.unpack_from(">H", data, 13)[0] & 0x0FFF, data[15] & 0x03, data[16] & 0x03,
                      (data[17] & 0x07) + 8, (data[18] & 0x07) + 8, struct.unpack_from(">H", data, 19)[0],
                      b21 >> 6, (b21 >> 3) & 0x07, bool(b21 & 0x04), length_size, tuple(arrays))


def build_hvcc(vps: list[bytes], sps: list[bytes], pps: list[bytes], sei: list[bytes] | None = None,
               nal_length_size: int = 4) -> bytes:
    """An hvcC for these parameter sets; the header fields come from the first SPS."""
    if not vps or not sps or not pps:
        raise CodecConfigError("an hvcC needs at least one VPS, SPS and PPS")
    info = parse_sps(sps[0])
    arrays = [NalArray(NAL_VPS, tuple(vps)), NalArray(NAL_SPS, tuple(sps)), NalArray(NAL_PPS, tuple(pps))]
    if sei:
        arrays.append(NalArray(NAL_SEI_PREFIX, tuple(sei), False))
    return HevcConfig(info.ptl, 0, 0, info.chroma_format_idc, info.bit_depth_luma, info.bit_depth_chroma, 0, 0,
                      info.max_sub_layers, info.temporal_id_nesting, nal_length_size, tuple(arrays)).to_bytes()


def hvcc_from_annexb(data: bytes) -> bytes:
    """Build an hvcC from Annex-B parameter sets (encoder extradata or the head of a keyframe)."""
    nals = split_annexb(data)
    return build_hvcc([n for n in nals if len(n) > 1 and nal_type(n) == NAL_VPS],
                      [n for n in nals if len(n) > 1 and nal_type(n) == NAL_SPS],
                      [n for n in nals if len(n) > 1 and nal_type(n) == NAL_PPS],
                      [n for n in nals if len(n) > 1 and nal_type(n) == NAL_SEI_PREFIX])


def is_keyframe(access_unit: bytes | memoryview, length_size: int = 4) -> bool:
    """True when the length-prefixed access unit holds an IRAP picture (NAL types 16-23)."""
    return any(NAL_IRAP_FIRST <= (nal[0] >> 1) & 0x3F <= NAL_IRAP_LAST
               for nal in iter_length_prefixed(access_unit, length_size))

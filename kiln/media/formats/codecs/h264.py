"""H.264/AVC: avcC (ISO 14496-15 §5.3.3), SPS fields (ISO 14496-10 §7.3.2.1), RFC 6381 names.

Ingest needs the picture size, profile and level that players and the REST API show, and the
packagers need a well-formed avcC; both come from the SPS carried in the decoder configuration.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from kiln.media.formats.codecs.bits import BitReader
from kiln.media.formats.codecs.errors import CodecConfigError
from kiln.media.formats.codecs.nal import iter_length_prefixed, split_annexb, unescape_rbsp

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
NAL_SPS_EXT = 13

MAX_DIMENSION = 32768
# profiles whose SPS carries chroma_format_idc, bit depths and scaling lists (§7.3.2.1.1)
HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
# profiles whose avcC has no chroma/bit-depth extension (ISO 14496-15:2017 §5.3.3.1.2; every other
# profile carries one, as FFmpeg writes it)
AVCC_NO_EXT_PROFILES = frozenset({66, 77, 88})

_PROFILE_NAMES = {
    66: "Baseline", 77: "Main", 88: "Extended", 100: "High", 110: "High 10", 122: "High 4:2:2",
    244: "High 4:4:4 Predictive", 44: "CAVLC 4:4:4", 83: "Scalable Baseline", 86: "Scalable High",
    118: "Multiview High", 128: "Stereo High", 134: "MFC High", 135: "MFC Depth High",
    138: "Multiview Depth High", 139: "Enhanced Multiview Depth High",
}


def nal_type(nal: bytes | memoryview) -> int:
    return nal[0] & 0x1F


@dataclass(frozen=True, slots=True)
class H264Sps:
    profile_idc: int
    constraint_flags: int          # the byte after profile_idc: constraint_set0..5 flags, 2 reserved bits
    level_idc: int
    sps_id: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int
    frame_mbs_only: bool
    fps: float | None = None       # from VUI timing info, when present
    sar: tuple[int, int] = (1, 1)

    @property
    def profile_name(self) -> str:
        return profile_name(self.profile_idc, self.constraint_flags)

    @property
    def level_text(self) -> str:
        return level_text(self.level_idc, self.constraint_flags, self.profile_idc)

    @property
    def codec_string(self) -> str:
        return codec_string(self.profile_idc, self.constraint_flags, self.level_idc)


def profile_name(profile_idc: int, constraint_flags: int = 0) -> str:
    """Profile as ffprobe names it (Annex A), e.g. "Constrained Baseline", "High"."""
    if profile_idc == 66 and constraint_flags & 0x40:
        return "Constrained Baseline"
    if profile_idc in (110, 122, 244) and constraint_flags & 0x10:
        return {110: "High 10 Intra", 122: "High 4:2:2 Intra", 244: "High 4:4:4 Intra"}[profile_idc]
    return _PROFILE_NAMES.get(profile_idc, f"Profile {profile_idc}")


def level_text(level_idc: int, constraint_flags: int = 0, profile_idc: int = 0) -> str:
    """Level as Table A-1 writes it: "3", "3.1", "1b"."""
    if level_idc == 9 or (level_idc == 11 and constraint_flags & 0x10 and profile_idc in (66, 77, 88)):
        return "1b"
    major, minor = divmod(level_idc, 10)
    return f"{major}" if minor == 0 else f"{major}.{minor}"


def codec_string(profile_idc: int, constraint_flags: int, level_idc: int) -> str:
    """RFC 6381 ``avc1.PPCCLL``."""
    return f"avc1.{profile_idc:02x}{constraint_flags:02x}{level_idc:02x}"


def _skip_scaling_list(r: BitReader, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt != 0:
            delta = r.se()
            if not -128 <= delta <= 127:
                raise CodecConfigError(f"SPS scaling list delta {delta} out of range")
            nxt = (last + delta + 256) % 256
        last = last if nxt == 0 else nxt


def parse_sps(nal: bytes | memoryview) -> H264Sps:
    """Parse a sequence parameter set NAL unit (with its one-byte NAL header)."""
    nal = bytes(nal)
    if len(nal) < 4:
        raise CodecConfigError(f"H.264 SPS too short ({len(nal)} bytes)")
    if nal_type(nal) != NAL_SPS:
        raise CodecConfigError(f"not an H.264 SPS (NAL type {nal_type(nal)})")
    r = BitReader(unescape_rbsp(nal[1:]), "H.264 SPS")
    profile_idc = r.u(8)
    constraint_flags = r.u(8)
    level_idc = r.u(8)
    sps_id = r.ue()
    if sps_id > 31:
        raise CodecConfigError(f"H.264 SPS id {sps_id} out of range")
    chroma_format_idc = 1
    separate_colour_plane = False
    bit_depth_luma = bit_depth_chroma = 8
    if profile_idc in HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc > 3:
            raise CodecConfigError(f"H.264 SPS chroma_format_idc {chroma_format_idc} out of range")
        if chroma_format_idc == 3:
            separate_colour_plane = r.flag()
        bit_depth_luma = r.ue() + 8
        bit_depth_chroma = r.ue() + 8
        if bit_depth_luma > 14 or bit_depth_chroma > 14:
            raise CodecConfigError("H.264 SPS bit depth out of range")
        r.skip(1)  # qpprime_y_zero_transform_bypass_flag
        if r.flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.flag():
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    log2_max_frame_num_minus4 = r.ue()
    if log2_max_frame_num_minus4 > 12:
        raise CodecConfigError("H.264 SPS log2_max_frame_num out of range")
    poc_type = r.ue()
    if poc_type == 0:
        if r.ue() > 12:
            raise CodecConfigError("H.264 SPS log2_max_pic_order_cnt_lsb out of range")
    elif poc_type == 1:
        r.skip(1)  # delta_pic_order_always_zero_flag
        r.se()
        r.se()
        cycle = r.ue()
        if cycle > 255:
            raise CodecConfigError("H.264 SPS num_ref_frames_in_pic_order_cnt_cycle out of range")
        for _ in range(cycle):
            r.se()
    elif poc_type != 2:
        raise CodecConfigError(f"H.264 SPS pic_order_cnt_type {poc_type} out of range")
    r.ue()  # max_num_ref_frames
    r.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_map_units = r.ue() + 1
    frame_mbs_only = r.flag()
    if not frame_mbs_only:
        r.skip(1)  # mb_adaptive_frame_field_flag
    r.skip(1)  # direct_8x8_inference_flag
    crop_left = crop_right = crop_top = crop_bottom = 0
    if r.flag():
        crop_left, crop_right, crop_top, crop_bottom = r.ue(), r.ue(), r.ue(), r.ue()
    chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
    sub_width, sub_height = {1: (2, 2), 2: (2, 1), 3: (1, 1)}.get(chroma_array_type, (1, 1))
    crop_unit_x = 1 if chroma_array_type == 0 else sub_width
    crop_unit_y = (1 if chroma_array_type == 0 else sub_height) * (2 - int(frame_mbs_only))
    width = width_mbs * 16 - crop_unit_x * (crop_left + crop_right)
    height = (2 - int(frame_mbs_only)) * height_map_units * 16 - crop_unit_y * (crop_top + crop_bottom)
    if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
        raise CodecConfigError(f"H.264 SPS picture size {width}x{height} out of range")
    fps: float | None = None
    sar = (1, 1)
    if r.remaining > 0 and r.flag():  # vui_parameters_present_flag
        fps, sar = _parse_vui(r)
    return H264Sps(profile_idc, constraint_flags, level_idc, sps_id, chroma_format_idc, bit_depth_luma,
                   bit_depth_chroma, width, height, frame_mbs_only, fps, sar)


_SAR_TABLE = [(0, 0), (1, 1), (12, 11), (10, 11), (16, 11), (40, 33), (24, 11), (20, 11), (32, 11), (80, 33),
              (18, 11), (15, 11), (64, 33), (160, 99), (4, 3), (3, 2), (2, 1)]


def _parse_vui(r: BitReader) -> tuple[float | None, tuple[int, int]]:
    """The leading VUI fields, up to timing info (E.1.1); what follows is not needed."""
    sar = (1, 1)
    if r.flag():  # aspect_ratio_info_present_flag
        idc = r.u(8)
        if idc == 255:
            sar = (r.u(16), r.u(16))
        elif idc < len(_SAR_TABLE):
            sar = _SAR_TABLE[idc]
    if r.flag():  # overscan_info_present_flag
        r.skip(1)
    if r.flag():  # video_signal_type_present_flag
        r.skip(4)
        if r.flag():
            r.skip(24)
    if r.flag():  # chroma_loc_info_present_flag
        r.ue()
        r.ue()
    fps = None
    if r.flag():  # timing_info_present_flag
        num_units_in_tick = r.u(32)
        time_scale = r.u(32)
        r.skip(1)  # fixed_frame_rate_flag
        if num_units_in_tick and time_scale:
            fps = time_scale / (2 * num_units_in_tick)
    return fps, sar


@dataclass(frozen=True, slots=True)
class AvcConfig:
    """AVCDecoderConfigurationRecord."""

    profile_idc: int
    profile_compat: int
    level_idc: int
    nal_length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    chroma_format_idc: int | None = None   # the high-profile extension, when present
    bit_depth_luma: int | None = None
    bit_depth_chroma: int | None = None
    sps_ext: tuple[bytes, ...] = field(default=())

    def to_bytes(self) -> bytes:
        if self.nal_length_size not in (1, 2, 4):
            raise CodecConfigError(f"avcC NAL length size {self.nal_length_size} invalid")
        if len(self.sps) > 31 or len(self.pps) > 255:
            raise CodecConfigError("avcC holds at most 31 SPS and 255 PPS")
        out = bytearray([1, self.profile_idc, self.profile_compat, self.level_idc,
                         0xFC | (self.nal_length_size - 1), 0xE0 | len(self.sps)])
        for nal in self.sps:
            out += struct.pack(">H", len(nal)) + nal
        out.append(len(self.pps))
        for nal in self.pps:
            out += struct.pack(">H", len(nal)) + nal
        if self.chroma_format_idc is not None:
            out.append(0xFC | self.chroma_format_idc)
            out.append(0xF8 | ((self.bit_depth_luma or 8) - 8))
            out.append(0xF8 | ((self.bit_depth_chroma or 8) - 8))
            out.append(len(self.sps_ext))
            for nal in self.sps_ext:
                out += struct.pack(">H", len(nal)) + nal
        return bytes(out)

    def first_sps(self) -> H264Sps:
        if not self.sps:
            raise CodecConfigError("avcC has no SPS")
        return parse_sps(self.sps[0])


def _read_nal_list(data: bytes, pos: int, count: int, what: str) -> tuple[list[bytes], int]:
    nals = []
    for _ in range(count):
        if pos + 2 > len(data):
            raise CodecConfigError(f"avcC truncated in {what} list")
        (size,) = struct.unpack_from(">H", data, pos)
        pos += 2
        if size == 0 or pos + size > len(data):
            raise CodecConfigError(f"avcC {what} length {size} overruns the record")
        nals.append(bytes(data[pos:pos + size]))
        pos += size
    return nals, pos


def parse_avcc(data: bytes | memoryview) -> AvcConfig:
    data = bytes(data)
    if len(data) < 7:
        raise CodecConfigError(f"avcC too short ({len(data)} bytes)")
    if data[0] != 1:
        raise CodecConfigError(f"avcC configurationVersion {data[0]} is not 1")
    length_size = (data[4] & 0x03) + 1
    if length_size == 3:
        raise CodecConfigError("avcC NAL length size 3 is invalid")
    sps, pos = _read_nal_list(data, 6, data[5] & 0x1F, "SPS")
    if pos >= len(data):
        raise CodecConfigError("avcC truncated before the PPS count")
    num_pps = data[pos]
    pps, pos = _read_nal_list(data, pos + 1, num_pps, "PPS")
    for nal in sps:
        if nal_type(nal) != NAL_SPS:
            raise CodecConfigError(f"avcC SPS list holds NAL type {nal_type(nal)}")
    for nal in pps:
        if nal_type(nal) != NAL_PPS:
            raise CodecConfigError(f"avcC PPS list holds NAL type {nal_type(nal)}")
    chroma = depth_l = depth_c = None
    sps_ext: list[bytes] = []
    if data[1] not in AVCC_NO_EXT_PROFILES and len(data) - pos >= 4:
        # optional extension; some writers omit it, so only a complete one is read
        chroma = data[pos] & 0x03
        depth_l = (data[pos + 1] & 0x07) + 8
        depth_c = (data[pos + 2] & 0x07) + 8
        sps_ext, pos = _read_nal_list(data, pos + 4, data[pos + 3], "SPS extension")
    return AvcConfig(data[1], data[2], data[3], length_size, tuple(sps), tuple(pps), chroma, depth_l, depth_c,
                     tuple(sps_ext))


def build_avcc(sps: list[bytes], pps: list[bytes], nal_length_size: int = 4,
               sps_ext: list[bytes] | None = None) -> bytes:
    """An avcC for these parameter sets; profile/level come from the first SPS."""
    if not sps or not pps:
        raise CodecConfigError("an avcC needs at least one SPS and one PPS")
    info = parse_sps(sps[0])
    ext = info.profile_idc not in AVCC_NO_EXT_PROFILES
    return AvcConfig(info.profile_idc, info.constraint_flags, info.level_idc, nal_length_size, tuple(sps), tuple(pps),
                     info.chroma_format_idc if ext else None, info.bit_depth_luma if ext else None,
                     info.bit_depth_chroma if ext else None, tuple(sps_ext or ()) if ext else ()).to_bytes()


def avcc_from_annexb(data: bytes) -> bytes:
    """Build an avcC from Annex-B parameter sets (encoder extradata or the head of a keyframe)."""
    nals = split_annexb(data)
    sps = [n for n in nals if nal_type(n) == NAL_SPS]
    pps = [n for n in nals if nal_type(n) == NAL_PPS]
    ext = [n for n in nals if nal_type(n) == NAL_SPS_EXT]
    return build_avcc(sps, pps, 4, ext)


def is_keyframe(access_unit: bytes | memoryview, length_size: int = 4) -> bool:
    """True when the length-prefixed access unit holds an IDR slice (NAL type 5)."""
    return any(nal[0] & 0x1F == NAL_IDR for nal in iter_length_prefixed(access_unit, length_size))

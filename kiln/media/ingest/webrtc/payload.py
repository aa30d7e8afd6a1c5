"""RTP payload formats of WebRTC publishers, read without decoding: H.264 (RFC 6184), VP8 (RFC 7741), Opus.

Each function takes the payloads of one frame (packets of one RTP timestamp, in sequence order) and
returns what Kiln's media model carries. Bad input raises :class:`RtpPayloadError`, which the caller
treats as a lost frame (drop it, ask the publisher for a keyframe), never as a crash.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from kiln.media.formats.codecs.h264 import NAL_IDR, NAL_PPS, NAL_SPS

NAL_STAP_A = 24
NAL_FU_A = 28


class RtpPayloadError(ValueError):
    """A payload that cannot be part of a valid frame (truncated, unsupported mode, broken FU-A run)."""


def h264_nals(payloads: Sequence[bytes]) -> list[bytes]:
    """The NAL units of one access unit from its RTP payloads (single NAL, STAP-A, FU-A; mode 1)."""
    nals: list[bytes] = []
    fragment: bytearray | None = None
    for payload in payloads:
        if not payload:
            raise RtpPayloadError("empty H.264 payload")
        kind = payload[0] & 0x1F
        if kind == NAL_FU_A:
            if len(payload) < 3:
                raise RtpPayloadError("FU-A payload is truncated")
            header = payload[1]
            start, end = bool(header & 0x80), bool(header & 0x40)
            if start:
                if fragment is not None:
                    raise RtpPayloadError("FU-A start before the previous fragment ended")
                fragment = bytearray(((payload[0] & 0xE0) | (header & 0x1F),))
            elif fragment is None:
                raise RtpPayloadError("FU-A continuation without its start")
            fragment += payload[2:]
            if end:
                nals.append(bytes(fragment))
                fragment = None
            continue
        if fragment is not None:
            raise RtpPayloadError("FU-A interrupted by another packet")
        if 1 <= kind <= 23:
            nals.append(bytes(payload))
        elif kind == NAL_STAP_A:
            nals += _stap_a(payload)
        else:
            raise RtpPayloadError(f"H.264 packetization type {kind} is not supported (mode 1 only)")
    if fragment is not None:
        raise RtpPayloadError("FU-A without its end")
    return nals


def _stap_a(payload: bytes) -> list[bytes]:
    out = []
    pos = 1
    while pos < len(payload):
        if pos + 2 > len(payload):
            raise RtpPayloadError("STAP-A size field is truncated")
        (size,) = struct.unpack_from("!H", payload, pos)
        pos += 2
        if size == 0 or pos + size > len(payload):
            raise RtpPayloadError("STAP-A unit is truncated")
        out.append(payload[pos:pos + size])
        pos += size
    if not out:
        raise RtpPayloadError("STAP-A with no unit")
    return out


@dataclass(frozen=True, slots=True)
class H264AccessUnit:
    nals: list[bytes]
    keyframe: bool
    sps: bytes | None
    pps: bytes | None


def h264_access_unit(payloads: Sequence[bytes]) -> H264AccessUnit:
    nals = h264_nals(payloads)
    sps = pps = None
    keyframe = False
    for nal in nals:
        kind = nal[0] & 0x1F
        if kind == NAL_SPS:
            sps = nal
        elif kind == NAL_PPS:
            pps = nal
        elif kind == NAL_IDR:
            keyframe = True
    return H264AccessUnit(nals, keyframe, sps, pps)


@dataclass(frozen=True, slots=True)
class Vp8Frame:
    data: bytes
    keyframe: bool
    width: int   # from a keyframe's header; 0 otherwise
    height: int


def _vp8_descriptor_size(payload: bytes) -> tuple[int, bool]:
    """Size of the payload descriptor and whether this packet starts partition 0 of a frame."""
    if not payload:
        raise RtpPayloadError("empty VP8 payload")
    first = payload[0]
    pos = 1
    if first & 0x80:  # X: extension byte
        if len(payload) < 2:
            raise RtpPayloadError("VP8 descriptor is truncated")
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if pos >= len(payload):
                raise RtpPayloadError("VP8 picture id is truncated")
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            pos += 1
    if pos > len(payload):
        raise RtpPayloadError("VP8 descriptor is truncated")
    start = bool(first & 0x10) and (first & 0x07) == 0
    return pos, start


def vp8_frame(payloads: Sequence[bytes]) -> Vp8Frame:
    """One VP8 frame from its RTP payloads; the first must start partition 0."""
    parts = []
    for i, payload in enumerate(payloads):
        size, start = _vp8_descriptor_size(payload)
        if i == 0 and not start:
            raise RtpPayloadError("VP8 frame does not begin at the start of partition 0")
        parts.append(payload[size:])
    data = b"".join(parts)
    if len(data) < 3:
        raise RtpPayloadError("VP8 frame is shorter than its frame tag")
    keyframe = not data[0] & 0x01
    width = height = 0
    if keyframe:
        if len(data) < 10 or data[3:6] != b"\x9d\x01\x2a":
            raise RtpPayloadError("VP8 keyframe without its start code")
        width, height = (struct.unpack_from("<H", data, 6)[0] & 0x3FFF,
                         struct.unpack_from("<H", data, 8)[0] & 0x3FFF)
    return Vp8Frame(data, keyframe, width, height)


_SILK_MS = (10, 20, 40, 60)
_CELT_TENTHS = (25, 50, 100, 200)


def opus_samples(packet: bytes) -> int:
    """Samples (at 48 kHz) one Opus packet decodes to, from its TOC byte (RFC 6716 §3.1); 0 if unreadable."""
    if not packet:
        return 0
    toc = packet[0]
    config = toc >> 3
    if config < 12:
        per_frame = _SILK_MS[config % 4] * 48
    elif config < 16:
        per_frame = (10, 20)[config % 2] * 48
    else:
        per_frame = _CELT_TENTHS[config % 4] * 48 // 10
    code = toc & 0x03
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        if len(packet) < 2:
            return 0
        frames = packet[1] & 0x3F
    return per_frame * frames


def opus_head(channels: int) -> bytes:
    """An OpusHead (RFC 7845) for a WebRTC track: 48 kHz, no pre-skip known, mapping family 0."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, max(1, min(2, channels)), 0, 48000, 0, 0)

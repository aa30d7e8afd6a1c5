"""FLV tag bodies for an RTMP push, built straight from Kiln packets (no muxer in between).

Kiln's packets are already what RTMP carries: AVCC H.264 with an avcC, raw AAC with an
AudioSpecificConfig. A tag body is a few header bytes in front of the payload, so building it
here costs less than muxing FLV with FFmpeg and parsing the tags back out of it.
"""

from __future__ import annotations

from fractions import Fraction

from kiln.media.formats import amf0
from kiln.media.formats.flv import (
    AAC_RAW,
    AAC_SEQUENCE_HEADER,
    AVC_NALU,
    AVC_SEQUENCE_HEADER,
    CODEC_AVC,
    FRAME_KEY,
    SOUND_AAC,
)
from kiln.media.formats.rtmp import messages
from kiln.media.model import Codec, MediaKind, Packet, Track

# SoundFormat AAC with the 44 kHz / 16 bit / stereo flags every encoder writes (the ASC has the truth)
AAC_HEADER = SOUND_AAC << 4 | 0x0F
FRAME_INTER = 2
AVC_KEY, AVC_INTER = FRAME_KEY << 4 | CODEC_AVC, FRAME_INTER << 4 | CODEC_AVC


def ms(value: int, time_base: Fraction) -> int:
    """``value`` in milliseconds, truncated toward zero (as ``int(Fraction)``), in integer arithmetic:
    Fraction arithmetic cost a push more than building the tag."""
    scaled = value * time_base.numerator * 1000
    den = time_base.denominator
    return scaled // den if scaled >= 0 else -(-scaled // den)


def metadata(tracks: list[Track]) -> bytes:
    """``@setDataFrame onMetaData`` with what players show before the first frame."""
    meta: dict[str, object] = {}
    for track in tracks:
        if track.kind is MediaKind.VIDEO:
            meta.update(width=float(track.width), height=float(track.height), videocodecid=7.0)
        elif track.kind is MediaKind.AUDIO:
            meta.update(audiocodecid=10.0, audiosamplerate=float(track.sample_rate),
                        stereo=track.channels > 1)
    return amf0.encode("@setDataFrame") + amf0.encode("onMetaData") + amf0.encode(meta)


def sequence_header(track: Track) -> tuple[int, bytes] | None:
    """(message type, body) of the decoder configuration tag, or None for a codec RTMP cannot carry."""
    if track.codec is Codec.H264 and track.config:
        return messages.VIDEO, bytes([AVC_KEY, AVC_SEQUENCE_HEADER, 0, 0, 0]) + track.config
    if track.codec is Codec.AAC and track.config:
        return messages.AUDIO, bytes([AAC_HEADER, AAC_SEQUENCE_HEADER]) + track.config
    return None


# the tag heads of the usual cases, built once: a frame with no composition offset (no B-frames), raw AAC
_AVC_KEY_CTS0 = bytes([AVC_KEY, AVC_NALU, 0, 0, 0])
_AVC_INTER_CTS0 = bytes([AVC_INTER, AVC_NALU, 0, 0, 0])
_AAC_HEAD = bytes([AAC_HEADER, AAC_RAW])


def media_tag(track: Track, packet: Packet, offset: int) -> tuple[int, int, bytes] | None:
    """(message type, timestamp ms, body) for one packet, zero-based by ``offset`` (packet time base)."""
    tb = packet.time_base
    dts_ms = ms(packet.dts - offset, tb)
    if track.codec is Codec.H264:
        cts_ticks = packet.pts - packet.dts
        if cts_ticks == 0:
            return messages.VIDEO, dts_ms, (_AVC_KEY_CTS0 if packet.keyframe else _AVC_INTER_CTS0) + packet.data
        cts = ms(cts_ticks, tb)
        head = bytes([AVC_KEY if packet.keyframe else AVC_INTER, AVC_NALU]) + cts.to_bytes(3, "big", signed=True)
        return messages.VIDEO, dts_ms, head + packet.data
    if track.codec is Codec.AAC:
        return messages.AUDIO, dts_ms, _AAC_HEAD + packet.data
    return None

"""Real RTP payloads for the WebRTC ingest tests, made by aiortc's own packetizers (a third party).

Frames are 320x180 test pictures encoded by aiortc's H.264 (libx264 baseline) and VP8 (libvpx)
encoders, so the depacketizer is tested against what another implementation sends.
"""

from __future__ import annotations

import fractions
import functools
import random
from dataclasses import dataclass

import av
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder

from kiln.media.ingest.webrtc.reorder import RtpIn


@dataclass
class EncodedFrame:
    timestamp: int
    payloads: list[bytes]


def _pictures(count: int) -> list[av.VideoFrame]:
    frames = []
    for i in range(count):
        frame = av.VideoFrame(320, 180, "yuv420p")
        noise = random.Random(i)  # noise, so that frames span several packets (FU-A)
        for plane in frame.planes:
            plane.update(noise.randbytes(plane.buffer_size))
        frame.pts = i * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        frames.append(frame)
    return frames


def h264_frames(count: int, keyframe_every: int = 0) -> list[EncodedFrame]:
    """The first ``count`` frames of one cached encode (encoding noise is slow; frames are never mutated)."""
    return _h264(max(count, 60), keyframe_every)[:count]


@functools.cache
def _h264(count: int, keyframe_every: int) -> list[EncodedFrame]:
    encoder = H264Encoder()
    out = []
    for i, picture in enumerate(_pictures(count)):
        payloads, ts = encoder.encode(picture, force_keyframe=bool(keyframe_every and i % keyframe_every == 0))
        out.append(EncodedFrame(ts, payloads))
    return out


@functools.cache
def vp8_frames(count: int) -> list[EncodedFrame]:
    encoder = Vp8Encoder()
    out = []
    for i, picture in enumerate(_pictures(count)):
        payloads, ts = encoder.encode(picture, force_keyframe=i == 0)
        out.append(EncodedFrame(ts, payloads))
    return out


def rtp_packets(frames: list[EncodedFrame], *, first_seq: int = 65530, ts_offset: int = 0,
                start: float = 100.0, frame_s: float = 1 / 30) -> list[RtpIn]:
    """The frames as RTP packets (marker on each frame's last packet), sequence numbers wrapping."""
    out = []
    seq = first_seq
    for n, frame in enumerate(frames):
        for i, payload in enumerate(frame.payloads):
            out.append(RtpIn(seq & 0xFFFF, (frame.timestamp + ts_offset) & 0xFFFFFFFF, i == len(frame.payloads) - 1,
                             payload, start + n * frame_s))
            seq += 1
    return out

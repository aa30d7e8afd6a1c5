"""A short H.264 + AAC clip made with PyAV (lavfi testsrc2 + sine → in-memory FLV), as Kiln packets.

Demuxing the FLV gives what RTMP ingest gives: avcC/ASC configs, length-prefixed H.264 and raw
AAC in a 1/1000 time base.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from fractions import Fraction

import av

from kiln.media.formats.codecs.describe import describe_track
from kiln.media.model import Codec, Packet, Track


@dataclass(frozen=True)
class Clip:
    video: Track
    audio: Track
    packets: tuple[Packet, ...]  # interleaved by dts (ms)


@functools.cache
def make_clip(width: int = 640, height: int = 360, seconds: float = 2.0, fps: int = 30, gop: int = 30) -> Clip:
    buf = io.BytesIO()
    vsrc = av.open(f"testsrc2=size={width}x{height}:rate={fps}", format="lavfi")
    asrc = av.open("sine=frequency=1000:sample_rate=48000", format="lavfi")
    with av.open(buf, "w", format="flv") as out:
        vs = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": str(gop), "bf": "0",
                                                          "sc_threshold": "0"})
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        aus = out.add_stream("aac", rate=48000, layout="stereo")
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000, frame_size=1024)
        frames = int(seconds * fps)
        for i, frame in enumerate(vsrc.decode(video=0)):
            if i == frames:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            frame.pict_type = av.video.frame.PictureType.NONE
            for p in vs.encode(frame):
                out.mux(p)
        samples = 0
        for frame in asrc.decode(audio=0):
            if samples >= seconds * 48000:
                break
            frame.pts = None
            for r in resampler.resample(frame):
                r.pts = samples
                samples += r.samples
                for p in aus.encode(r):
                    out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        for p in aus.encode(None):
            out.mux(p)
    vsrc.close()
    asrc.close()
    buf.seek(0)
    packets = []
    with av.open(buf, format="flv") as inp:
        v, a = inp.streams.video[0], inp.streams.audio[0]
        video = describe_track(0, Codec.H264, bytes(v.codec_context.extradata), Fraction(1, 1000))
        audio = describe_track(1, Codec.AAC, bytes(a.codec_context.extradata), Fraction(1, 1000))
        for p in inp.demux():
            if p.dts is None or not p.size:
                continue
            tid = 0 if p.stream is v else 1
            packets.append(Packet(tid, int(p.pts), int(p.dts), Fraction(1, 1000), bytes(p),
                                  keyframe=bool(p.is_keyframe) or tid == 1))
    packets.sort(key=lambda p: p.dts)
    return Clip(video, audio, tuple(packets))

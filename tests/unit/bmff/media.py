"""Real test media for the ISO-BMFF tests: a few frames encoded with PyAV, muxed into an in-memory MP4
and demuxed again, so packets are length-prefixed and extradata is the avcC/hvcC/ASC/OpusHead that
Kiln's tracks carry. Plus helpers that cut them into fragments with Kiln's writer and run ffprobe.
"""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType

from kiln.media.formats.bmff.fragment import Sample, TrafData, build_fragment
from kiln.media.model import Codec, MediaKind, Track
from tests.unit.sine import encode_sine

WIDTH, HEIGHT, FPS = 320, 180, 30
AUDIO_RATE = 48000


@dataclass(frozen=True)
class EncodedPacket:
    pts: int
    dts: int
    duration: int
    keyframe: bool
    data: bytes


@dataclass(frozen=True)
class Encoded:
    """One encoded track: the Kiln Track (time base, config, size/rate) and its packets in decode order."""

    track: Track
    packets: list[EncodedPacket]


def _demux(mp4: bytes, codec: Codec, track_id: int) -> Encoded:
    with av.open(io.BytesIO(mp4), format="mp4") as container:
        stream = container.streams[0]
        ctx = stream.codec_context
        is_video = stream.type == "video"
        track = Track(id=track_id, kind=MediaKind.VIDEO if is_video else MediaKind.AUDIO, codec=codec,
                      time_base=Fraction(stream.time_base), config=bytes(ctx.extradata or b""),
                      width=ctx.width if is_video else 0, height=ctx.height if is_video else 0,
                      sample_rate=0 if is_video else ctx.sample_rate,
                      channels=0 if is_video else ctx.channels)
        packets = [EncodedPacket(p.pts, p.dts, p.duration, p.is_keyframe, bytes(p))
                   for p in container.demux(stream) if p.size]
    return Encoded(track, packets)


def encode_video(encoder: str, *, bframes: int, frames: int = 45, gop: int = 15, track_id: int = 1) -> Encoded:
    source = av.open(f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}", format="lavfi")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        if encoder == "libx264":
            options = {"preset": "ultrafast", "bf": str(bframes), "g": str(gop), "sc_threshold": "0"}
        else:
            options = {"preset": "ultrafast", "x265-params": f"bframes={bframes}:keyint={gop}:log-level=error"}
        stream = out.add_stream(encoder, rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index, frame in enumerate(source.decode(video=0)):
            if index == frames:
                break
            frame.pts = index
            frame.pict_type = PictureType.NONE  # testsrc frames are marked I, which x264 would obey
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    source.close()
    return _demux(buf.getvalue(), Codec.H264 if encoder == "libx264" else Codec.H265, track_id)


def encode_audio(encoder: str, *, seconds: float = 1.0, track_id: int = 1) -> Encoded:
    codec = {"aac": Codec.AAC, "libopus": Codec.OPUS, "libmp3lame": Codec.MP3}[encoder]
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream(encoder, rate=AUDIO_RATE, layout="stereo")
        for packet in encode_sine(stream, samples=int(seconds * AUDIO_RATE), rate=AUDIO_RATE):
            out.mux(packet)
    return _demux(buf.getvalue(), codec, track_id)


@dataclass(frozen=True)
class ExpectedSample:
    """What a reader must find for one packet, with times relative to the first packet's dts."""

    dts: int
    pts: int
    duration: int
    keyframe: bool
    data: bytes


def sample_table(encoded: Encoded, scale: Fraction = Fraction(1)) -> list[ExpectedSample]:
    """Every packet as a fragment row: durations from the next dts (the last one's own duration).

    ``scale`` converts track time base units into another timescale (exactly, for the tests' values).
    """
    packets = encoded.packets
    dts0 = packets[0].dts
    rows = []
    for index, packet in enumerate(packets):
        end = packets[index + 1].dts if index + 1 < len(packets) else packet.dts + packet.duration
        rows.append(ExpectedSample(int((packet.dts - dts0) * scale), int((packet.pts - dts0) * scale),
                                   int((end - packet.dts) * scale), packet.keyframe, packet.data))
    return rows


def traf_for(track_id: int, rows: list[ExpectedSample]) -> TrafData:
    samples = [Sample(r.duration, len(r.data), r.keyframe, r.pts - r.dts) for r in rows]
    return TrafData(track_id, rows[0].dts, samples, [r.data for r in rows])


def fragments_for(track_id: int, rows: list[ExpectedSample], per_fragment: int, first_sequence: int = 1) -> list[bytes]:
    """Single-track fragments of ``per_fragment`` samples each (the last may be shorter)."""
    groups = [rows[i:i + per_fragment] for i in range(0, len(rows), per_fragment)]
    return [build_fragment(first_sequence + n, [traf_for(track_id, group)]) for n, group in enumerate(groups)]


def ffprobe(path: Path, *extra: str) -> dict:
    """ffprobe (Debian 5.1) JSON for streams and packets, with frames counted by decoding."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_packets", *extra, "-of", "json",
         str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    return json.loads(result.stdout)


def decode_all(data: bytes) -> dict[int, int]:
    """Frames decoded per stream index by PyAV (FFmpeg 8.1) from a complete fMP4 byte string."""
    counts: dict[int, int] = {}
    with av.open(io.BytesIO(data), format="mp4") as container:
        for packet in container.demux():
            for _frame in packet.decode():
                counts[packet.stream.index] = counts.get(packet.stream.index, 0) + 1
    return counts

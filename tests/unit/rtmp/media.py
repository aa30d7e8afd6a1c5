"""Real FLV for the RTMP tests: PyAV (FFmpeg 8.1) encodes testsrc/sine into an in-memory FLV, whose
tag bodies are exactly what an ffmpeg publisher sends as RTMP audio/video messages. PyAV's own FLV
demuxer on the same bytes is the independent reference for packets and timestamps.
"""

from __future__ import annotations

import functools
import io
import struct
from dataclasses import dataclass

import av
from av.video.frame import PictureType

from kiln.media.formats import amf0
from kiln.media.formats.rtmp.chunk import ChunkWriter
from kiln.media.formats.rtmp.messages import AUDIO, COMMAND_AMF0, DATA_AMF0, SET_CHUNK_SIZE, VIDEO
from tests.unit.sine import encode_sine


@dataclass(frozen=True)
class FlvTag:
    type_id: int      # 8 audio, 9 video, 18 script data
    timestamp: int    # 32-bit milliseconds
    body: bytes


@dataclass(frozen=True)
class RefPacket:
    """A packet as PyAV's FLV demuxer sees it (the reference)."""

    video: bool
    pts: int
    dts: int
    keyframe: bool
    data: bytes


@functools.cache
def make_flv(video: str = "libx264", bframes: int = 0, frames: int = 30, audio: bool = True,
             gop: int = 15) -> bytes:
    """``frames`` frames of 320x180 testsrc2 at 30 fps (+ 48 kHz stereo AAC) as an FLV file."""
    buf = io.BytesIO()
    vsrc = av.open("testsrc2=size=320x180:rate=30", format="lavfi")
    with av.open(buf, "w", format="flv") as out:
        if video == "libx264":
            opts = {"preset": "ultrafast", "bf": str(bframes), "g": str(gop), "sc_threshold": "0"}
        else:
            opts = {"preset": "ultrafast", "x265-params": f"log-level=error:bframes={bframes}:keyint={gop}"}
        vs = out.add_stream(video, rate=30, options=opts)
        vs.width, vs.height, vs.pix_fmt = 320, 180, "yuv420p"
        ast = out.add_stream("aac", rate=48000, layout="stereo") if audio else None
        for index, frame in enumerate(vsrc.decode(video=0)):
            if index == frames:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts = index
            frame.pict_type = PictureType.NONE
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
        if ast is not None:
            for packet in encode_sine(ast, samples=frames * 48000 // 30, rate=48000):
                out.mux(packet)
    vsrc.close()
    return buf.getvalue()


def flv_tags(flv: bytes) -> list[FlvTag]:
    """The tags of an FLV file (FLV spec: 9-byte header, then PreviousTagSize + tag, repeated)."""
    assert flv[:3] == b"FLV"
    pos = struct.unpack_from(">I", flv, 5)[0] + 4
    tags = []
    while pos + 11 <= len(flv):
        kind = flv[pos] & 0x1F
        size = int.from_bytes(flv[pos + 1:pos + 4], "big")
        ts = int.from_bytes(flv[pos + 4:pos + 7], "big") | (flv[pos + 7] << 24)
        tags.append(FlvTag(kind, ts, flv[pos + 11:pos + 11 + size]))
        pos += 11 + size + 4
    return tags


def sorted_tags(flv: bytes) -> list[FlvTag]:
    """The tags in timestamp order, as a live publisher interleaves them (PyAV writes the audio last)."""
    return sorted(flv_tags(flv), key=lambda t: (t.timestamp, t.type_id != 18))


def reference_packets(flv: bytes) -> list[RefPacket]:
    with av.open(io.BytesIO(flv), format="flv") as container:
        return [RefPacket(p.stream.type == "video", p.pts, p.dts, p.is_keyframe, bytes(p))
                for p in container.demux() if p.size]


def publish_stream(tags: list[FlvTag], chunk_size: int = 4096, stream_id: int = 1) -> bytes:
    """The chunk stream an ffmpeg-like publisher sends after connect: Set Chunk Size, then each tag as
    an RTMP message (video on csid 6, audio on csid 4, data on csid 5)."""
    writer = ChunkWriter(128)
    out = [writer.write(2, SET_CHUNK_SIZE, 0, 0, struct.pack(">I", chunk_size))]
    writer.set_chunk_size(chunk_size)
    for tag in tags:
        csid = {VIDEO: 6, AUDIO: 4, DATA_AMF0: 5}[tag.type_id]
        out.append(writer.write(csid, tag.type_id, tag.timestamp, stream_id, tag.body))
    return b"".join(out)


def command(writer: ChunkWriter, name: str, txn: float, *args: object, stream_id: int = 0, csid: int = 3) -> bytes:
    return writer.write(csid, COMMAND_AMF0, 0, stream_id, amf0.encode(name, txn, *args))

"""Real bitstreams for the codec tests: a few frames encoded with PyAV (libx264, libx265, aac), muxed
into an in-memory MP4 and demuxed again, so extradata is the avcC/hvcC/ASC a track carries and
packets are length-prefixed. ``ffprobe`` (Debian's, a separate build) gives the reference view.
"""

from __future__ import annotations

import functools
import io
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
from av.video.frame import PictureType

from tests.unit.sine import encode_sine


@dataclass(frozen=True)
class Encoded:
    extradata: bytes
    packets: tuple[tuple[bool, bytes], ...]  # (keyframe flag from the container, length-prefixed data)
    mp4: bytes


def _demux(mp4: bytes) -> Encoded:
    with av.open(io.BytesIO(mp4), format="mp4") as container:
        stream = container.streams[0]
        extradata = bytes(stream.codec_context.extradata or b"")
        packets = tuple((p.is_keyframe, bytes(p)) for p in container.demux(stream) if p.size)
    return Encoded(extradata, packets, mp4)


@functools.cache
def encode_video(encoder: str, width: int = 320, height: int = 180, pix_fmt: str = "yuv420p",
                 options: tuple[tuple[str, str], ...] = (), frames: int = 12) -> Encoded:
    """``frames`` frames of testsrc2 through ``encoder``; cached, since several tests share them."""
    source = av.open(f"testsrc2=size={width}x{height}:rate=30", format="lavfi")
    buf = io.BytesIO()
    opts = {"preset": "ultrafast"}
    if encoder == "libx265":
        opts["x265-params"] = "log-level=error"
    opts.update(dict(options))
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream(encoder, rate=30, options=opts)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for index, frame in enumerate(source.decode(video=0)):
            if index == frames:
                break
            frame = frame.reformat(format=pix_fmt)
            frame.pts = index
            frame.pict_type = PictureType.NONE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    source.close()
    return _demux(buf.getvalue())


@functools.cache
def encode_aac(sample_rate: int = 48000, layout: str = "stereo", seconds: float = 0.2) -> Encoded:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=sample_rate, layout=layout)
        for packet in encode_sine(stream, samples=int(seconds * sample_rate), rate=sample_rate, layout=layout):
            out.mux(packet)
    return _demux(buf.getvalue())


def ffprobe_stream(mp4: bytes, tmp_path: Path) -> dict:
    """ffprobe's first stream of this MP4 (written to a file: Debian's ffprobe reads files)."""
    path = tmp_path / "probe.mp4"
    path.write_bytes(mp4)
    result = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["streams"][0]


def ffmpeg_dash_codecs(mp4: bytes, tmp_path: Path) -> str:
    """The ``codecs`` attribute Debian's ffmpeg writes for this MP4's stream in a DASH manifest
    (its own reading of the configuration: an independent reference for RFC 6381 strings)."""
    src = tmp_path / "codecs.mp4"
    src.write_bytes(mp4)
    out = tmp_path / "dash"
    out.mkdir(exist_ok=True)
    result = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(src), "-c", "copy", "-f", "dash", "-y",
                             str(out / "manifest.mpd")], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    text = (out / "manifest.mpd").read_text()
    return text.split('codecs="', 1)[1].split('"', 1)[0]

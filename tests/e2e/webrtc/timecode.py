"""A live ffmpeg publisher whose every video frame carries the wall clock at its capture, for glass-to-glass.

The lavfi source is read in real time (``-re``); the first filter sets each frame's pts to ``RTCTIME``
(microseconds of the machine's clock, read as the frame enters the filter graph: its "capture"), a
tiny 32x2 copy of the frame gets ``geq`` bars of ``floor(T*1000) mod 2^32`` (milliseconds; row 0 the
value, row 1 its complement so a misread frame is rejected, not counted), scaled up with
nearest-neighbour and laid over the top of the picture; pts are reset to 30 fps before encoding
(libx264 ``-tune zerolatency``, no B-frames, as a low-latency camera encoder would). Any player on the
same machine reads the bars back from a shown frame and subtracts them from its own clock
(``glass_player.js``); ``decode_bars`` is the same reading in Python, for checking the stamp itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tests.peers.process import Peer

BITS = 32
MODULUS = 1 << BITS
ROWS = 2  # the value, then its complement
FPS = 30


@dataclass(frozen=True)
class Timecode:
    """The picture and the stamp's geometry: ``BITS`` cells per row, ``ROWS`` rows of ``row_height``."""

    width: int = 1280
    height: int = 720

    @property
    def row_height(self) -> int:
        return max(8, self.height // 12) // 2 * 2

    @property
    def cell_width(self) -> float:
        return self.width / BITS

    def filter_graph(self) -> str:
        """``-filter_complex`` text from input 0's video to ``[v]``: stamp at entry, bars on top, pts reset."""
        bit = "mod(floor(mod(floor(T*1000)\\,4294967296)/pow(2\\,X))\\,2)"
        bars = f"geq=lum='if(lt(Y\\,1)\\,255*{bit}\\,255-255*{bit})'"
        return (f"[0:v]settb=1/1000000,setpts=RTCTIME,split[main][small];"
                f"[small]scale={BITS}:{ROWS},format=gray,{bars},"
                f"scale={self.width}:{ROWS * self.row_height}:flags=neighbor,format=yuv420p[bars];"
                f"[main][bars]overlay=0:0,setpts=N/({FPS}*TB)[v]")

    def sources(self, audio: bool = True) -> list[str]:
        """The real-time lavfi inputs: testsrc2 at this size (input 0) and a sine tone (input 1)."""
        video = ["-re", "-f", "lavfi", "-i", f"testsrc2=size={self.width}x{self.height}:rate={FPS}"]
        return video + (["-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"] if audio else [])

    def decode_gray(self, frame: bytes) -> int | None:
        """The stamp (ms mod 2^32) of a gray ``width`` x ``height`` frame, or None if the rows disagree."""
        value = check = 0
        for i in range(BITS):
            x = int((i + 0.5) * self.cell_width)
            if frame[(self.row_height // 2) * self.width + x] > 128:
                value |= 1 << i
            if frame[(self.row_height + self.row_height // 2) * self.width + x] > 128:
                check |= 1 << i
        return value if value ^ check == MODULUS - 1 else None


def behind(stamp: int, now_ms: float) -> float:
    """How far ``now_ms`` (epoch ms) is after ``stamp`` (ms mod 2^32), across the modulus's wrap."""
    delta = (int(now_ms) - stamp) % MODULUS
    return delta - MODULUS if delta >= MODULUS // 2 else delta


def encode_args(bitrate: str = "2500k", gop: int = FPS, bufsize: str | None = None) -> list[str]:
    """libx264 as a live low-latency encoder (no B-frames, no lookahead), AAC audio. ``bufsize`` (the VBV,
    default one second of ``bitrate``) bounds how much larger than average a frame, a keyframe above all, may be."""
    return ["-map", "[v]", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
            "-bf", "0", "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
            "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bufsize or bitrate, "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-ac", "2"]


def publish_timecoded_rtmp(url: str, log_dir: Path, *, timecode: Timecode = Timecode(), bitrate: str = "2500k",
                           bufsize: str | None = None, name: str = "ffmpeg-timecoded") -> Peer:
    """ffmpeg encoding the stamped test picture live and publishing it over RTMP until stopped."""
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-nostdin", *timecode.sources(),
            "-filter_complex", timecode.filter_graph(), *encode_args(bitrate, bufsize=bufsize),
            "-f", "flv", "-flvflags", "no_duration_filesize", url]
    return Peer.spawn(name, argv, log_dir)


def stamp_check(timecode: Timecode = Timecode(320, 180), frames: int = 30) -> list[float]:
    """Run the stamping graph alone into a raw gray pipe: how far each frame arrives behind its stamp (ms).

    Proves the bars decode (a frame that does not decode raises) and measures ffmpeg's own hold between
    the stamp and a frame leaving the filter graph (one frame period with ffmpeg 5.1)."""
    import subprocess

    argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *timecode.sources(audio=False),
            "-filter_complex", timecode.filter_graph(), "-map", "[v]", "-frames:v", str(frames),
            "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]
    size = timecode.width * timecode.height
    delays: list[float] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            for n in range(frames):
                frame = proc.stdout.read(size)
                now = time.time() * 1000
                if len(frame) < size:
                    raise RuntimeError(f"ffmpeg ended after {n} frames: {proc.stderr.read().decode()[-500:]}")
                stamp = timecode.decode_gray(frame)
                if stamp is None:
                    raise ValueError(f"frame {n}: the stamp's two rows disagree")
                delays.append(behind(stamp, now))
        finally:
            proc.kill()
    return delays

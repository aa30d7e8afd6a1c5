"""Small synthetic test media, made once with ffmpeg's lavfi sources and cached on disk.

320x180 testsrc2 at 30 fps, H.264 with a 1 s GOP (no B-frames unless asked), 1 kHz sine as AAC-LC
48 kHz stereo 128 kbit/s. The cache (default `tests/.media`, ignored by git and removed by
`make clean`; override with KILN_MEDIA_DIR) is shared by all xdist workers; an fcntl lock per file
makes sure only one worker generates it, and the file appears atomically (rename).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from pathlib import Path

from tests.peers.process import run_checked

log = logging.getLogger(__name__)

WIDTH, HEIGHT, FPS = 320, 180, 30
SAMPLE_RATE = 48000
FFMPEG = "ffmpeg"

_FORMATS = {
    "flv": ["-f", "flv"],
    "ts": ["-f", "mpegts"],
    "mp4": ["-movflags", "+faststart", "-f", "mp4"],
}


def media_dir() -> Path:
    """Where generated media is cached (created on demand)."""
    path = Path(os.environ.get("KILN_MEDIA_DIR") or Path(__file__).resolve().parents[1] / ".media")
    path.mkdir(parents=True, exist_ok=True)
    return path


def encode_args(seconds: float, *, bframes: bool = False) -> list[str]:
    """ffmpeg arguments (inputs + codecs, no output) for the standard test pattern."""
    return [
        "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}",
        "-f", "lavfi", "-i", f"sine=frequency=1000:sample_rate={SAMPLE_RATE}",
        "-map", "0:v", "-map", "1:a", "-t", f"{seconds:g}",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        "-g", str(FPS), "-keyint_min", str(FPS), "-sc_threshold", "0", "-bf", "3" if bframes else "0",
        "-c:a", "aac", "-b:a", "128k", "-ar", str(SAMPLE_RATE), "-ac", "2",
    ]  # fmt: skip


def test_media(fmt: str, seconds: float = 4, *, bframes: bool = False) -> Path:
    """Path of a cached test file in container `fmt` ("flv", "ts" or "mp4"), generating it if needed."""
    if fmt not in _FORMATS:
        raise ValueError(f"unknown test media format {fmt!r}; one of {sorted(_FORMATS)}")
    directory = media_dir()
    name = f"testsrc2_{WIDTH}x{HEIGHT}_{seconds:g}s_{'bf3' if bframes else 'bf0'}.{fmt}"
    target = directory / name
    if target.exists():
        return target
    with open(directory / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():  # another worker made it while we waited
            return target
        partial = directory / f".{name}.{os.getpid()}.partial"
        try:
            run_checked(
                [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                 *encode_args(seconds, bframes=bframes), *_FORMATS[fmt], partial],
                timeout=120,
            )  # fmt: skip
            partial.rename(target)
        finally:
            partial.unlink(missing_ok=True)
        log.info("test media generated path=%s", target)
    return target


def test_flv(seconds: float = 4, *, bframes: bool = False) -> Path:
    """Cached FLV (H.264 + AAC) for RTMP publishing."""
    return test_media("flv", seconds, bframes=bframes)


def test_ts(seconds: float = 4, *, bframes: bool = False) -> Path:
    """Cached MPEG-TS for SRT and UDP publishing."""
    return test_media("ts", seconds, bframes=bframes)


def test_mp4(seconds: float = 4, *, bframes: bool = False) -> Path:
    """Cached MP4 (faststart)."""
    return test_media("mp4", seconds, bframes=bframes)


def have_ffmpeg() -> bool:
    return shutil.which(FFMPEG) is not None and shutil.which("ffprobe") is not None


# These are helpers, not tests: keep pytest from collecting them when a test module imports them by name.
for _f in (test_media, test_flv, test_ts, test_mp4):
    _f.__test__ = False  # type: ignore[attr-defined]

"""Peers for the SRT end-to-end tests: ffmpeg, ffprobe and srt-live-transmit on 127.0.0.1.

Every process runs under ``timeout -k 3 N`` (ffmpeg ignores the first SIGTERM during network I/O)
and is killed by PID on teardown. Listening peers are waited for with ``ss -lun``, never a sleep.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiln.media.net.srt import libsrt
from kiln.media.net.srt.errors import SrtUnavailable

TOOLS = ("ffmpeg", "ffprobe", "srt-live-transmit", "ss", "timeout")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    ours = [item for item in items if Path(str(item.fspath)).parent == Path(__file__).parent]
    if not ours:
        return
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    try:
        libsrt.lib()
    except SrtUnavailable as exc:
        missing.append(str(exc))
    if missing:
        skip = pytest.mark.skip(reason="SRT peers unavailable: " + ", ".join(missing))
        for item in ours:
            item.add_marker(skip)


def wait_udp_listening(port: int, proc: subprocess.Popen[bytes] | None = None, timeout_s: float = 15) -> None:
    """Poll ``ss -lun`` until something is bound to 127.0.0.1:port (and the peer is still alive)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = subprocess.run(["ss", "-Hlun", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
        if f"127.0.0.1:{port}" in out:
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"peer exited with {proc.returncode} before listening on {port}")
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on udp 127.0.0.1:{port} after {timeout_s} s")


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Procs:
    """Starts peers and kills every one of them by PID at teardown."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], seconds: int = 30, **kwargs: object) -> subprocess.Popen[bytes]:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(["timeout", "-k", "3", str(seconds), *args], **kwargs)  # type: ignore[call-overload]
        self.started.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            if proc.stdin is not None:
                proc.stdin.close()


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    yield p
    p.close()


FFMPEG = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error"]


def source_args(size: str = "320x180") -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc=size={size}:rate=30", "-f", "lavfi", "-i", "sine",
            "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30", "-pix_fmt", "yuv420p",
            "-c:a", "aac"]


def ffmpeg_push(seconds: float, url: str, size: str = "320x180") -> list[str]:
    """A paced (``-re``) H.264 + AAC MPEG-TS publisher to ``url``."""
    return [*FFMPEG, "-re", *source_args(size), "-t", str(seconds), "-f", "mpegts", url]


@pytest.fixture(scope="session")
def ts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three seconds of 320x180 H.264 + AAC in MPEG-TS, made once (not paced)."""
    path = tmp_path_factory.mktemp("srt-media") / "source.ts"
    subprocess.run([*FFMPEG, *source_args(), "-t", "3", "-f", "mpegts", "-y", str(path)], check=True, timeout=60)
    return path


def probe_streams(path: Path) -> list[dict[str, object]]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "json",
                          str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout).get("streams", []))


def probe_codecs(path: Path) -> list[str]:
    return sorted(str(s["codec_name"]) for s in probe_streams(path))


def probe_video_size(path: Path) -> str:
    return next(f"{s['width']}x{s['height']}" for s in probe_streams(path) if s["codec_name"] == "h264")


class Recorder:
    """An SrtReceiver that keeps everything, for assertions."""

    def __init__(self, streamid: str = "", peer: tuple[str, int] = ("", 0)) -> None:
        self.streamid = streamid
        self.peer = peer
        self.data = bytearray()
        self.messages: list[int] = []
        self.closes: list[str] = []
        self.closed = threading.Event()
        self._lock = threading.Lock()

    def on_data(self, data: bytes) -> None:
        with self._lock:
            self.data += data
            self.messages.append(len(data))

    def on_close(self, reason: str) -> None:
        self.closes.append(reason)
        self.closed.set()

    def snapshot(self) -> bytes:
        with self._lock:
            return bytes(self.data)

"""Peers and helpers for the RTMP ingest end-to-end tests: real ffmpeg publishers (and a PyAV one for Enhanced
RTMP HEVC) against an in-process RtmpServer on 127.0.0.1, port 0.

Every peer runs under ``timeout -k 3 N`` (ffmpeg ignores the first SIGTERM during network I/O) and is
killed by PID when the scenario ends. Readiness is awaited on events (listener bound, publish
accepted, packets seen), never with fixed sleeps.
"""

from __future__ import annotations

import asyncio
import struct
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from kiln.media.formats import amf0
from kiln.media.formats.rtmp.chunk import ChunkReader, ChunkWriter
from kiln.media.formats.rtmp.handshake import HANDSHAKE_SIZE
from kiln.media.formats.rtmp.messages import COMMAND_AMF0, RtmpMessage
from kiln.media.ingest.contract import PublishRejected
from kiln.media.ingest.rtmp.handler import RtmpPublish
from kiln.media.model import Packet, Track

FFMPEG = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error"]
PYTHON = sys.executable


def source_args(*, bframes: bool = False, size: str = "320x180") -> list[str]:
    """testsrc + sine -> H.264 + stereo AAC, as the brief's reference publisher."""
    video = ["-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-pix_fmt", "yuv420p"]
    video += ["-bf", "2"] if bframes else ["-tune", "zerolatency"]
    return ["-f", "lavfi", "-i", f"testsrc=size={size}:rate=30", "-f", "lavfi", "-i",
            "sine=frequency=1000:sample_rate=48000", *video, "-c:a", "aac", "-b:a", "128k", "-ac", "2"]


def ffmpeg_publish(url: str, seconds: float, *, realtime: bool = False, bframes: bool = False,
                   extra: list[str] | None = None) -> list[str]:
    return [*FFMPEG, *(["-re"] if realtime else []), *source_args(bframes=bframes), "-t", str(seconds),
            *(extra or []), "-f", "flv", url]


HEVC_PUBLISHER = """
import sys, av
src = av.open("testsrc=size=320x180:rate=30", format="lavfi")
out = av.open(sys.argv[1], "w", format="flv")
vs = out.add_stream("libx265", rate=30, options={"preset": "ultrafast", "x265-params": "log-level=error:keyint=30"})
vs.width, vs.height, vs.pix_fmt = 320, 180, "yuv420p"
for i, frame in enumerate(src.decode(video=0)):
    if i == 60:
        break
    frame = frame.reformat(format="yuv420p")
    frame.pts = i
    for p in vs.encode(frame):
        out.mux(p)
for p in vs.encode(None):
    out.mux(p)
out.close()
"""


def pyav_hevc_publish(url: str) -> list[str]:
    """PyAV's FFmpeg 8.1 writes HEVC in FLV as Enhanced RTMP (FourCC hvc1); Debian's ffmpeg 5.1 cannot."""
    return [PYTHON, "-c", HEVC_PUBLISHER, url]


class Peer:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr = b""

    async def wait(self, timeout_s: float) -> int:
        _, self.stderr = await asyncio.wait_for(self.proc.communicate(), timeout_s)
        assert self.proc.returncode is not None
        return self.proc.returncode


class Peers:
    """Starts peer processes and kills every one still running, by PID, when the block ends."""

    def __init__(self) -> None:
        self.started: list[Peer] = []

    async def start(self, args: list[str], seconds: int = 30) -> Peer:
        proc = await asyncio.create_subprocess_exec("timeout", "-k", "3", str(seconds), *args,
                                                    stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE)
        peer = Peer(proc)
        self.started.append(peer)
        return peer

    async def __aenter__(self) -> Peers:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for peer in self.started:
            if peer.proc.returncode is None:
                peer.proc.kill()
            await peer.proc.wait()


class RecordingSink:
    def __init__(self, request: RtmpPublish) -> None:
        self.request = request
        self.meta: list[dict[str, Any]] = []
        self.tracks: list[Track] = []
        self.packets: list[Packet] = []
        self.closes: list[str] = []
        self.closed = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Event]] = []

    def on_metadata(self, meta: dict[str, Any]) -> None:
        self.meta.append(meta)

    def on_track(self, track: Track) -> None:
        self.tracks.append(track)

    def on_packet(self, packet: Packet) -> None:
        self.packets.append(packet)
        for count, event in self._waiters:
            if len(self.packets) >= count:
                event.set()

    def on_close(self, reason: str) -> None:
        self.closes.append(reason)
        self.closed.set()

    async def wait_packets(self, count: int, timeout_s: float = 20) -> None:
        event = asyncio.Event()
        if len(self.packets) >= count:
            return
        self._waiters.append((count, event))
        await asyncio.wait_for(event.wait(), timeout_s)

    def video(self) -> list[Packet]:
        return [p for p in self.packets if p.track_id == 0]

    def audio(self) -> list[Packet]:
        return [p for p in self.packets if p.track_id == 1]


class RecordingHandler:
    """Accepts every publish (or rejects when told) and keeps a sink per publish."""

    def __init__(self, reject: str | None = None) -> None:
        self.reject = reject
        self.requests: list[RtmpPublish] = []
        self.sinks: list[RecordingSink] = []
        self._accepted = asyncio.Event()

    async def on_publish(self, request: RtmpPublish) -> RecordingSink:
        self.requests.append(request)
        if self.reject is not None:
            raise PublishRejected(self.reject)
        sink = RecordingSink(request)
        self.sinks.append(sink)
        self._accepted.set()
        return sink

    async def wait_accepted(self, count: int = 1, timeout_s: float = 20) -> list[RecordingSink]:
        async def until() -> None:
            while len(self.sinks) < count:
                self._accepted.clear()
                await self._accepted.wait()
        await asyncio.wait_for(until(), timeout_s)
        return self.sinks


class RawClient:
    """A hand-driven RTMP client for the misbehaving-peer tests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.chunks = ChunkWriter(128)
        self.incoming = ChunkReader()

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def handshake(self) -> None:
        self.writer.write(b"\x03" + bytes(HANDSHAKE_SIZE))
        await self.reader.readexactly(1 + 2 * HANDSHAKE_SIZE)
        self.writer.write(bytes(HANDSHAKE_SIZE))
        await self.writer.drain()

    def command(self, name: str, txn: float, *args: object, stream_id: int = 0) -> None:
        self.writer.write(self.chunks.write(3, COMMAND_AMF0, 0, stream_id, amf0.encode(name, txn, *args)))

    async def publish(self, port: int, app: str, stream: str) -> None:
        await self.handshake()
        self.command("connect", 1.0, {"app": app, "tcUrl": f"rtmp://127.0.0.1:{port}/{app}"})
        self.command("createStream", 2.0, None)
        self.command("publish", 3.0, None, stream, "live", stream_id=1)
        await self.writer.drain()

    async def read_messages(self, timeout_s: float = 5) -> list[RtmpMessage]:
        data = await asyncio.wait_for(self.reader.read(65536), timeout_s)
        return self.incoming.feed(data)

    async def closed_by_server(self, timeout_s: float = 10) -> bool:
        """True once the server has closed the connection (EOF or reset)."""
        async def drain_until_eof() -> None:
            while await self.reader.read(65536):
                pass
        try:
            await asyncio.wait_for(drain_until_eof(), timeout_s)
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()


def set_chunk_size_bytes(writer: ChunkWriter, size: int) -> bytes:
    return writer.write(2, 1, 0, 0, struct.pack(">I", size))


def run(scenario: Callable[[], Awaitable[None]], timeout_s: float = 90) -> None:
    """Run one scenario with an overall deadline, so a hang fails the test instead of the suite."""
    async def bounded() -> None:
        await asyncio.wait_for(scenario(), timeout_s)
    asyncio.run(bounded())

"""RTMP ingest cost: parser throughput, and the CPU a live 3 Mbit/s 720p publish costs the server.

1. Parser: an FLV of 720p30 H.264 at 3 Mbit/s + AAC (made here with ffmpeg) is turned into the chunk
   stream a publisher sends (Kiln's ChunkWriter, chunk size 4096 as ffmpeg and OBS use, and 128, the
   default), then fed to ChunkReader + FlvConverter in socket-sized pieces. Prints MB/s, packets/s
   and the share of one core a 3 Mbit/s stream needs at that rate.
2. Live: RtmpServer runs in its own process; ``ffmpeg -re -i file -c copy`` publishes the same file
   for ``--seconds``. Prints the server process's CPU (from /proc, over the publish) next to the
   ffmpeg publisher's own CPU (from wait4) in the same run, as the reference.

3. ``--path``: no sockets and no ffmpeg run; the same publish is replayed through one RtmpConnection
   (handshake, connect, publish, then each message as two reads, header and body, as ffmpeg's writes
   arrive) into a LiveStream with a bypass output: microseconds of CPU per media message for the whole
   ingest path, without and with an LL-HLS packager on the output, next to the chunk reader + FLV
   converter alone in the same run (the reference).
4. ``--path --cold KB``: the same replay, but KB of memory is written between reads (outside the timed
   part), as other processes do between a live server's wake-ups on a shared machine; prints the
   bypass path warm and cold, each read timed apart. On this machine's 2 MB L2, 4096 KB made a message
   cost what it costs live (issue 16: the "live factor"; see kiln/media/ingest/rtmp/pacer.py).

5. ``--latency``: what reading publishers on the pacer's tick adds. Publisher processes write each message's
   header and body apart at the file's own pace (as ``ffmpeg -re`` does, Nagle's algorithm on) to an
   RtmpServer on loopback; prints the time from the body's write to the packet reaching the sink (p50,
   p90, p99, max) with 1 publisher (below the pacer's threshold: read on arrival), with ``--publishers``
   (default 20: paced) and with as many read on readiness (tick 0, the reference), one after the other.

Usage: .venv/bin/python bench/rtmp_parse.py [--seconds 20] [--path [--cold 4096]]
       [--latency [--publishers 20] [--tick S]]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiln.media.formats.flv import FlvConverter  # noqa: E402
from kiln.media.formats.rtmp.chunk import ChunkReader, ChunkWriter  # noqa: E402
from kiln.media.formats.rtmp.messages import AUDIO, SET_CHUNK_SIZE, VIDEO  # noqa: E402
from kiln.media.model import Packet  # noqa: E402

READ_SIZE = 16384  # a typical recv() size for a few Mbit/s on loopback

SERVER = """
import asyncio, sys
from kiln.media.ingest.rtmp.server import RtmpServer

class Sink:
    def __init__(self):
        self.packets = 0
    def on_metadata(self, meta): pass
    def on_track(self, track): pass
    def on_packet(self, packet): self.packets += 1
    def on_close(self, reason):
        sys.stdout.write(f"CLOSED {self.packets} {reason}\\n"); sys.stdout.flush()

class Handler:
    async def on_publish(self, request):
        sys.stdout.write("PUBLISH\\n"); sys.stdout.flush()
        return Sink()

async def main():
    server = RtmpServer(Handler(), host="127.0.0.1", port=0)
    await server.start()
    sys.stdout.write(f"READY {server.port}\\n"); sys.stdout.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.close()

asyncio.run(main())
"""


def make_source(path: Path, seconds: int) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
                    "-c:v", "libx264", "-preset", "veryfast", "-b:v", "3M", "-maxrate", "3M", "-bufsize", "6M",
                    "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-t", str(seconds),
                    "-y", str(path)], check=True, timeout=300)


def flv_tags(data: bytes) -> list[tuple[int, int, bytes]]:
    pos = struct.unpack_from(">I", data, 5)[0] + 4
    tags = []
    while pos + 11 <= len(data):
        kind = data[pos] & 0x1F
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        ts = int.from_bytes(data[pos + 4:pos + 7], "big") | (data[pos + 7] << 24)
        if kind in (AUDIO, VIDEO):
            tags.append((kind, ts, data[pos + 11:pos + 11 + size]))
        pos += 11 + size + 4
    return tags


def chunk_stream(tags: list[tuple[int, int, bytes]], chunk_size: int) -> bytes:
    writer = ChunkWriter(128)
    out = [writer.write(2, SET_CHUNK_SIZE, 0, 0, struct.pack(">I", chunk_size))]
    writer.set_chunk_size(chunk_size)
    for kind, ts, body in tags:
        out.append(writer.write(6 if kind == VIDEO else 4, kind, ts, 1, body))
    return b"".join(out)


def parse_once(stream: bytes) -> int:
    reader = ChunkReader()
    conv = FlvConverter()
    packets = 0
    for start in range(0, len(stream), READ_SIZE):
        for msg in reader.feed(stream[start:start + READ_SIZE]):
            convert = conv.convert_video if msg.type_id == VIDEO else conv.convert_audio
            if isinstance(convert(msg.timestamp, msg.payload), Packet):
                packets += 1
    return packets


def bench_parser(tags: list[tuple[int, int, bytes]], seconds: int) -> None:
    media_bytes = sum(len(body) for _, _, body in tags)
    bitrate = media_bytes * 8 / seconds
    for chunk_size in (4096, 128):
        stream = chunk_stream(tags, chunk_size)
        parse_once(stream)  # warm up
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            packets = parse_once(stream)
            runs.append(time.perf_counter() - start)
        best = min(runs)
        mb_s = len(stream) / best / 1e6
        share = (len(stream) / seconds) / (len(stream) / best) * 100
        sys.stdout.write(f"parser chunk_size={chunk_size:<5} stream={len(stream) / 1e6:.1f} MB ({bitrate / 1e6:.2f} "
                         f"Mbit/s media) packets={packets} best_of_5={best * 1000:.1f} ms  {mb_s:.0f} MB/s  "
                         f"{packets / best:,.0f} packets/s  -> {share:.2f} % of a core for this stream\n")


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def bench_live(source: Path, seconds: int) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert server.stdout is not None and server.stdin is not None
        ready = server.stdout.readline().split()
        assert ready and ready[0] == "READY", ready
        port = int(ready[1])
        cpu0, wall0 = proc_cpu_seconds(server.pid), time.monotonic()
        ffmpeg = subprocess.Popen(["timeout", "-k", "3", str(seconds + 30), "ffmpeg", "-hide_banner", "-nostdin",
                                   "-loglevel", "error", "-re", "-i", str(source), "-c", "copy", "-f", "flv",
                                   f"rtmp://127.0.0.1:{port}/app/bench"])
        _, status, usage = os.wait4(ffmpeg.pid, 0)
        ffmpeg.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - wall0
        closed = ""
        while not closed.startswith("CLOSED"):
            closed = server.stdout.readline()
            if not closed:
                break
        cpu = proc_cpu_seconds(server.pid) - cpu0
        ff_cpu = usage.ru_utime + usage.ru_stime
        sys.stdout.write(f"live   publish={wall:.1f} s ffmpeg_rc={ffmpeg.returncode} server_saw={closed.strip()}\n")
        sys.stdout.write(f"live   kiln RtmpServer process: {cpu:.2f} s CPU = {cpu / wall * 100:.2f} % of one core\n")
        sys.stdout.write(f"live   reference, ffmpeg -re -c copy publisher: {ff_cpu:.2f} s CPU = "
                         f"{ff_cpu / wall * 100:.2f} % of one core\n")
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


BYPASS = {"name": "bypass", "outputStreamName": "${OriginStreamName}",
          "encodes": {"videos": [{"name": "v", "bypass": "true"}], "audios": [{"name": "a", "bypass": "true"}]}}


class _Transport(asyncio.Transport):
    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default


def split_reads(tags: list[tuple[int, int, bytes]], chunk_size: int, repeat: int) -> list[bytes]:
    """The publish as reads: Set Chunk Size, then every message's header apart from the rest."""
    writer = ChunkWriter(128)
    reads = [writer.write(2, SET_CHUNK_SIZE, 0, 0, struct.pack(">I", chunk_size))]
    writer.set_chunk_size(chunk_size)
    span = max(ts for _, ts, _ in tags) + 40
    for r in range(repeat):
        for kind, ts, body in tags:
            message = writer.write(6 if kind == VIDEO else 4, kind, ts + r * span, 1, body)
            header = len(message) - len(body) if len(body) <= chunk_size else 1 + (11, 7, 3, 0)[message[0] >> 6]
            reads += [message[:header], message[header:]]
    return reads


async def replay(reads: list[bytes], llhls: bool, cold: int | None = None) -> float:
    """CPU seconds to feed ``reads`` (after connect and publish) through an RtmpConnection into a LiveStream;
    with ``cold`` (bytes) each read is timed apart, after that much memory was written (0: timed apart only)."""
    from kiln.media.formats import amf0
    from kiln.media.formats.rtmp.handshake import HANDSHAKE_SIZE
    from kiln.media.formats.rtmp.messages import COMMAND_AMF0
    from kiln.media.ingest.rtmp.ingest import StreamSink
    from kiln.media.ingest.rtmp.session import RtmpConnection, SessionConfig
    from kiln.media.publish.llhls.publisher import settings_from
    from kiln.media.publish.llhls.stream import LlhlsStream
    from kiln.media.stream.live import LiveStream
    from kiln.metrics.tree import MetricsTree

    loop = asyncio.get_running_loop()
    tree = MetricsTree()
    tree.vhost_created("default")
    tree.app_created("default", "app")
    tree.stream_created("default", "app", "s")
    held: list[Any] = []

    class Handler:
        async def on_publish(self, request: Any) -> StreamSink:
            live = LiveStream("default", "app", "s", source_type="Rtmp", source_url="", profiles=[BYPASS], stats=tree)
            if llhls:
                settings = settings_from({"chunkDuration": 0.5, "segmentDuration": 2, "segmentCount": 5})
                live.on_started = lambda started: held.extend(
                    LlhlsStream(loop, started, out, settings) for out in started.outputs.values())
            held.append(live)
            return StreamSink(live)

    conn = RtmpConnection(Handler(), SessionConfig(), loop, lambda c: None, lambda t: None)  # type: ignore[arg-type]
    conn.connection_made(_Transport())
    conn.data_received(b"\x03" + bytes(HANDSHAKE_SIZE))
    conn.data_received(bytes(HANDSHAKE_SIZE))
    writer = ChunkWriter(128)
    for name, txn, args, sid in (("connect", 1.0, [{"app": "app", "tcUrl": "rtmp://127.0.0.1/app"}], 0),
                                 ("createStream", 2.0, [None], 0), ("publish", 3.0, [None, "s", "live"], 1)):
        conn.data_received(writer.write(3, COMMAND_AMF0, 0, sid, amf0.encode(name, txn, *args)))
    for _ in range(5):
        await asyncio.sleep(0)
    assert conn.publishing, "the replayed publish was not accepted"
    feed = conn.data_received
    if cold is None:
        start = time.process_time()
        for data in reads:
            feed(data)
        used = time.process_time() - start
    else:
        junk, lines, used = bytearray(cold), b"\x01" * (cold // 64), 0.0
        for data in reads:
            junk[::64] = lines  # one write per cache line
            start = time.process_time()
            feed(data)
            used += time.process_time() - start
    conn.shutdown("replay over")
    await asyncio.sleep(0.1)  # the LL-HLS segments' spills finish on the loop
    return used


def bench_cold(tags: list[tuple[int, int, bytes]], kib: int) -> None:
    reads = split_reads(tags, 4096, 1)
    messages = sum(1 for kind, _, _ in tags if kind in (AUDIO, VIDEO))
    for name, cold in (("bypass path, each read timed, warm", 0),
                       (f"bypass path, {kib} KB written between reads", kib)):
        used = min(asyncio.run(replay(reads, False, cold << 10)) for _ in range(2))
        sys.stdout.write(f"cold   {name:<45} {used * 1e6 / messages:6.2f} us/message ({messages} messages, "
                         f"{len(reads)} reads)\n")


class _StampSink:
    """Notes when each packet reaches the sink, keyed as the publisher keys its writes: (video?, dts ms)."""

    def __init__(self) -> None:
        self.arrived: dict[tuple[bool, int], float] = {}
        self.video: set[int] = set()

    def on_metadata(self, meta: dict[str, Any]) -> None:
        pass

    def on_track(self, track: Any) -> None:
        if track.kind.value == "video":
            self.video.add(track.id)

    def on_packet(self, packet: Packet) -> None:
        self.arrived[(packet.track_id in self.video, packet.dts)] = time.monotonic()

    def on_close(self, reason: str) -> None:
        pass


def _nagle_publisher(port: int, tags: list[tuple[int, int, bytes]], stream: str) -> dict[tuple[bool, int], float]:
    """One publisher (run in its own process): the publish at the file's pace, header and body written apart.
    Returns when each message's body was written (CLOCK_MONOTONIC, the same clock in every process)."""
    import socket

    from kiln.media.formats import amf0
    from kiln.media.formats.rtmp.handshake import HANDSHAKE_SIZE
    from kiln.media.formats.rtmp.messages import COMMAND_AMF0
    written: dict[tuple[bool, int], float] = {}
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"\x03" + bytes(HANDSHAKE_SIZE))
        got = b""
        while len(got) < 1 + 2 * HANDSHAKE_SIZE:
            got += sock.recv(1 + 2 * HANDSHAKE_SIZE - len(got))
        sock.sendall(bytes(HANDSHAKE_SIZE))
        writer = ChunkWriter(128)
        for name, txn, args, sid in (("connect", 1.0, [{"app": "app", "tcUrl": "rtmp://127.0.0.1/app"}], 0),
                                     ("createStream", 2.0, [None], 0), ("publish", 3.0, [None, stream, "live"], 1)):
            sock.sendall(writer.write(3, COMMAND_AMF0, 0, sid, amf0.encode(name, txn, *args)))
        time.sleep(1.0)  # every publisher has published (the pacer has counted them) before media flows
        reads = split_reads(tags, 4096, 1)
        sock.sendall(reads[0])
        start = time.monotonic()
        for i, (kind, ts, _) in enumerate(tags):
            wait = start + ts / 1000 - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            sock.sendall(reads[1 + 2 * i])
            sock.sendall(reads[2 + 2 * i])
            written[(kind == VIDEO, ts)] = time.monotonic()
        time.sleep(0.3)
    return written


async def _latency_once(tags: list[tuple[int, int, bytes]], publishers: int, tick: float) -> tuple[list[float], int]:
    """Latencies (ms) over every publisher's messages, and how many publishers the pacer read on its tick."""
    from concurrent.futures import ProcessPoolExecutor

    from kiln.media.ingest.rtmp.server import RtmpServer

    sinks: dict[str, _StampSink] = {}

    class Handler:
        async def on_publish(self, request: Any) -> _StampSink:
            return sinks.setdefault(request.stream, _StampSink())

    server = RtmpServer(Handler(), host="127.0.0.1", port=0, read_tick=tick)  # type: ignore[arg-type]
    await server.start()
    loop = asyncio.get_running_loop()
    paced = 0
    with ProcessPoolExecutor(publishers) as pool:  # processes: publisher threads would share the server's GIL
        runs = [loop.run_in_executor(pool, _nagle_publisher, server.port, tags, f"s{i}") for i in range(publishers)]
        done = asyncio.gather(*runs)
        while not done.done():
            paced = max(paced, server.paced)
            await asyncio.sleep(0.05)
        written = await done
    await server.close()
    lat = [(sinks[f"s{i}"].arrived[k] - t) * 1000 for i, w in enumerate(written) for k, t in w.items()
           if f"s{i}" in sinks and k in sinks[f"s{i}"].arrived]
    return sorted(lat), paced


def bench_latency(tags: list[tuple[int, int, bytes]], many: int = 20, read_tick: float | None = None) -> None:
    """One publisher (below the pacer's threshold: read on arrival), then ``many`` (paced on the default tick, or
    ``read_tick``), then ``many`` read on readiness (tick 0: the reference for what the tick costs at that count)."""
    import uvloop

    from kiln.media.ingest.rtmp.pacer import PACE_AT, READ_TICK_S
    tick_s = READ_TICK_S if read_tick is None else read_tick
    sys.stdout.write(f"pacer: tick {tick_s * 1000:.0f} ms from {PACE_AT} publishers; load {os.getloadavg()}\n")
    for publishers, tick in ((1, tick_s), (many, tick_s), (many, 0.0)):
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            lat, paced = runner.run(_latency_once(tags, publishers, tick))
        q = [lat[min(len(lat) - 1, int(p * len(lat)))] for p in (0.5, 0.9, 0.99)]
        how = f"{paced} paced" if paced else ("read on arrival" if tick else "tick 0 (reference)")
        name = f"{publishers} publisher{'s' if publishers > 1 else ''}, {how}"
        sys.stdout.write(f"latency {name:<34} write -> sink ms p50 {q[0]:6.2f}  p90 {q[1]:6.2f}  "
                         f"p99 {q[2]:6.2f}  max {lat[-1]:6.2f}  ({len(lat)} messages)\n")


def bench_path(tags: list[tuple[int, int, bytes]], repeat: int = 3) -> None:
    reads = split_reads(tags, 4096, repeat)
    messages = sum(1 for kind, _, _ in tags if kind in (AUDIO, VIDEO)) * repeat
    stream = b"".join(reads)
    best: dict[str, float] = {}
    for _ in range(3):  # interleaved, the best of three each
        start = time.process_time()
        parse_once(stream)
        best["reference: chunk reader + FLV converter"] = min(best.get("reference: chunk reader + FLV converter",
                                                                        1e9), time.process_time() - start)
        for name, llhls in (("session -> LiveStream (bypass output)", False),
                            ("session -> LiveStream -> LL-HLS packager", True)):
            best[name] = min(best.get(name, 1e9), asyncio.run(replay(reads, llhls)))
    for name, used in best.items():
        sys.stdout.write(f"path   {name:<45} {used * 1e6 / messages:6.2f} us/message ({messages} messages, "
                         f"{len(reads)} reads)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="length of the 720p source and the live publish")
    parser.add_argument("--path", action="store_true", help="only the in-process replay of the whole ingest path")
    parser.add_argument("--cold", type=int, metavar="KB", help="with --path: write KB of memory between reads")
    parser.add_argument("--latency", action="store_true", help="only the latency the pacer's tick adds")
    parser.add_argument("--publishers", type=int, default=20, help="with --latency: the many-publisher case")
    parser.add_argument("--tick", type=float, metavar="S", help="with --latency: the pacer's tick (default: Kiln's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiln-rtmp-bench-") as tmp:
        source = Path(tmp) / "src720p.flv"
        make_source(source, args.seconds)
        if args.latency:
            bench_latency(flv_tags(source.read_bytes()), args.publishers, args.tick)
            return
        if args.path and args.cold:
            bench_cold(flv_tags(source.read_bytes()), args.cold)
            return
        if args.path:
            bench_path(flv_tags(source.read_bytes()))
            return
        bench_parser(flv_tags(source.read_bytes()), args.seconds)
        bench_live(source, args.seconds)


if __name__ == "__main__":
    main()

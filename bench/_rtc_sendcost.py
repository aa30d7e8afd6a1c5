"""CPU per RTP packet of a WebRTC feed's send path, measured in CPU time so other jobs on the machine do not move
it (the wall-clock figures of bench/webrtc.py do: Kiln gets only its scheduler share).

One ``Feed`` of a tree's Kiln (``--compare TREE`` runs another checkout's first, in a child process each) with N
viewers: real SRTP sessions (libsrtp, as DTLS would key them) and one real non-blocking UDP socket sending to
loopback ports whose receivers never read (the kernel's send path is run, the receiving copy is not). A 2.5 Mbit/s
30 fps H.264 stream (a 90 KB keyframe every 2 s, 9 KB frames between) and 50 Opus frames a second are published
through the output's hub in real time. Printed per tree: packets, process CPU seconds, CPU microseconds per packet,
the feed's frame arrival -> first RTP out p50/p99 (wall clock: moves with the machine's load).

Usage: ``.venv/bin/python bench/webrtc.py --mode sendcost [--viewers 100] [--frames 300] [--compare /work/main]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

EXTENSIONS = (("urn:ietf:params:rtp-hdrext:sdes:mid", 1),
              ("http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", 2))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _protect() -> Any:
    from pylibsrtp import Policy, Session

    import kiln.media.rtc.aiortc_send as send
    policy = Policy(key=os.urandom(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    policy.allow_repeat_tx = True  # as aiortc's DTLS transport keys its sending session
    session = Session(policy)
    locked = getattr(send, "LockedSession", None)  # a tree before the send thread protects the session itself
    return send.protector(locked(session) if locked is not None else session)


async def _measure(viewers: int, frames: int) -> str:
    from kiln.media.model import Codec, MediaKind, Packet, Track
    from kiln.media.publish.webrtc.feed import Feed, Viewer
    from kiln.media.rtc.rtp_out import Negotiated, TrackOut
    from kiln.media.stream.hub import StreamHub
    from kiln.media.stream.live import OutputStream, OutputTrack

    video_tb, audio_tb = Fraction(1, 1000), Fraction(1, 48000)
    sinks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
    for sink in sinks:
        sink.bind(("127.0.0.1", 0))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    tracks = [OutputTrack(0, MediaKind.VIDEO, "video", {}, True, 0, Track(0, MediaKind.VIDEO, Codec.H264, video_tb)),
              OutputTrack(1, MediaKind.AUDIO, "opus", {}, False, 1, Track(1, MediaKind.AUDIO, Codec.OPUS, audio_tb))]
    output = OutputStream("cam", {}, tracks, StreamHub("bench/app/cam"), keyframe_wanted=lambda reason: True)
    feed = Feed(output, asyncio.get_running_loop(), lambda feed, reason: None)
    feed.start()
    for v in range(viewers):
        outs = {kind: TrackOut(Negotiated(ssrc=ssrc + v, payload_type=pt, mid=mid, extensions=EXTENSIONS), _protect())
                for kind, ssrc, pt, mid in (("video", 10, 102, "0"), ("audio", 9000, 111, "1"))}
        address = sinks[v % len(sinks)].getsockname()
        feed.add(Viewer({0: "video", 1: "audio"}, outs, lambda address=address: (sock, address),
                        lambda kind, out, size, arrival: None))

    def nal(key: bool, size: int) -> bytes:
        return (size + 1).to_bytes(4, "big") + bytes([0x65 if key else 0x41]) + os.urandom(size)

    gop = [nal(i == 0, 90_000 if i == 0 else 9_000) for i in range(60)]
    start_cpu, audio_pts = _cpu(), 0
    for f in range(frames):
        output.hub.publish(Packet(0, f * 33, f * 33, video_tb, gop[f % 60], keyframe=f % 60 == 0,
                                  arrival=time.monotonic()))
        if f % 3 != 2:
            output.hub.publish(Packet(1, audio_pts, audio_pts, audio_tb, b"\xfc" + os.urandom(120), keyframe=True,
                                      arrival=time.monotonic()))
            audio_pts += 960
        await asyncio.sleep(1 / 30)
    sender = getattr(feed, "sender", None)
    if sender is not None:
        await asyncio.to_thread(sender.flush, 60)
    await asyncio.sleep(0.5)
    cpu = _cpu() - start_cpu
    outs = [out for viewer in feed.viewers for out in viewer.outs.values()]
    packets = sum(out.packets for out in outs)
    dropped = sum(out.dropped for out in outs)
    feed.close("bench over")
    return (f"viewers={viewers} frames={frames} packets={packets} dropped={dropped} shed={feed.shed} cpu_s={cpu:.2f} "
            f"us_per_packet={1e6 * cpu / max(1, packets):.2f} first_rtp_ms_p50={feed.first_out.quantile(0.5):.1f} "
            f"p99={feed.first_out.quantile(0.99):.1f}")


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="bench/webrtc.py --mode sendcost")
    ap.add_argument("--viewers", type=int, default=100)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--compare", type=Path, help="another checkout measured first (e.g. /work/main)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per tree, alternating")
    args = ap.parse_args(argv)
    here = Path(__file__).resolve().parent.parent
    trees = ([("before", args.compare.resolve())] if args.compare else []) + [("this", here)]
    load = Path("/proc/loadavg").read_text().split()[:3]
    sys.stdout.write(f"send path CPU per packet, {args.viewers} viewers, {args.frames} frames; load {load}\n")
    for _ in range(args.repeat):
        for label, tree in trees:
            child = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(args.viewers),
                                    str(args.frames)], cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                                   capture_output=True, text=True, timeout=600)
            line = child.stdout.strip().splitlines()[-1] if child.stdout.strip() else child.stderr.strip()[-300:]
            sys.stdout.write(f"[{label}: {tree}] {line}\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        import uvloop  # as kiln serve runs

        sys.stdout.write(uvloop.run(_measure(int(sys.argv[2]), int(sys.argv[3]))) + "\n")
    else:
        main(sys.argv[1:])

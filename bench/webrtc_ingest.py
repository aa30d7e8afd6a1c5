"""WebRTC ingest cost: Kiln's CPU per stream-minute for N WHIP publishers next to the same streams over RTMP,
in one run.

Media: 640x360 30 fps testsrc2, H.264 constrained baseline 1 Mbit/s (GOP 1 s, no B-frames) with Opus 64k
for WebRTC (MPEG-TS, Annex B, made once and cached under $KILN_BENCH_DIR) and the same H.264 with AAC 64k
in FLV for RTMP. The N WHIP publishers are aiortc peers in one child process that send the pre-encoded
packets in real time without encoding (aiortc packetizes ``av.Packet``s), looping with increasing
timestamps; the RTMP publishers are ``ffmpeg -re -stream_loop -1 -c copy``. Both runs use a fresh Kiln with
the same application: WebRTC ingest enabled, one output profile that bypasses video and audio (no
transcoding), LL-HLS declared (packaged, nobody watches).

For each protocol: wait until all N streams are listed with a video track, ``--warmup`` seconds, then a
``--seconds`` window in which Kiln's utime+stime is read from /proc. Prints CPU seconds per stream-minute,
the share of one core, the publishers' own CPU, and the ratio WebRTC / RTMP.

Usage:
  .venv/bin/python bench/webrtc_ingest.py                       # 8 streams, 20 s windows (~1.5 min)
  .venv/bin/python bench/webrtc_ingest.py --streams 4 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _media import (  # noqa: E402
    ROOT,
    BenchKiln,
    CpuWindow,
    Peer,
    bench_dir,
    dead,
    ffmpeg_publish,
    out,
    run_dir,
    stop_all,
    table,
    wait_until,
)

sys.path.insert(0, str(ROOT))

from tests.e2e.kiln_process import BYPASS_PROFILE, KilnProcess  # noqa: E402
from tests.e2e.webrtc.ingest_kiln import ingest_server_xml  # noqa: E402
from tests.e2e.webrtc.play_kiln import RtcPorts  # noqa: E402
from tests.peers.process import run_checked  # noqa: E402

SECONDS_OF_MEDIA = 20


def media() -> tuple[Path, Path]:
    """(MPEG-TS with H.264 + Opus, FLV with the same H.264 + AAC), made once."""
    folder = bench_dir() / "media"
    folder.mkdir(parents=True, exist_ok=True)
    ts, flv = folder / "rtc_640x360_h264_opus.ts", folder / "rtc_640x360_h264_aac.flv"
    if not ts.exists():
        partial = ts.with_suffix(".partial.ts")
        run_checked(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                     "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
                     "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                     "-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast", "-b:v", "1M",
                     "-maxrate", "1M", "-bufsize", "1M", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
                     "-bf", "0", "-pix_fmt", "yuv420p", "-c:a", "libopus", "-b:a", "64k", "-ac", "2",
                     "-t", str(SECONDS_OF_MEDIA), "-f", "mpegts", str(partial)], timeout=300)  # fmt: skip
        partial.rename(ts)
    if not flv.exists():
        partial = flv.with_suffix(".partial.flv")
        run_checked(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(ts),
                     "-c:v", "copy", "-c:a", "aac", "-b:a", "64k", "-f", "flv", str(partial)], timeout=300)
        partial.rename(flv)
    return ts, flv


# -- the publishers' child process ---------------------------------------------------------------------

def _load(path: Path) -> dict[str, list[tuple[float, bytes, bool]]]:
    import av

    out_: dict[str, list[tuple[float, bytes, bool]]] = {"video": [], "audio": []}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size == 0 or packet.pts is None:
                continue
            kind = packet.stream.type
            if kind in out_:
                out_[kind].append((float(packet.pts * packet.time_base), bytes(packet), packet.is_keyframe))
    for kind, items in out_.items():
        base = items[0][0]
        out_[kind] = [(t - base, data, key) for t, data, key in items]
    return out_


def _publishers_main(url: str, count: int, ts: Path) -> None:
    """N aiortc WHIP publishers sending the file's packets in real time (no encoding)."""
    import aioice.ice
    import av
    import httpx
    from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamTrack
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    packets = _load(ts)
    period = max(packets["video"][-1][0], packets["audio"][-1][0]) + 1 / 30

    class PacketTrack(MediaStreamTrack):
        def __init__(self, kind: str) -> None:
            super().__init__()
            self.kind = kind
            self.items = packets[kind]
            self.rate = 90000 if kind == "video" else 48000
            self.index = 0
            self.loops = 0
            self.start = time.monotonic()

        async def recv(self) -> av.Packet:
            at, data, key = self.items[self.index]
            at += self.loops * period
            self.index += 1
            if self.index == len(self.items):
                self.index, self.loops = 0, self.loops + 1
            delay = self.start + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            packet = av.Packet(data)
            packet.pts = int(at * self.rate)
            packet.time_base = fractions.Fraction(1, self.rate)
            return packet

    async def one(n: int) -> RTCPeerConnection:
        pc = RTCPeerConnection()
        video = pc.addTransceiver(PacketTrack("video"), direction="sendonly")
        video.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                   if c.mimeType == "video/H264" and c.parameters.get("profile-level-id") == "42e01f"])
        pc.addTransceiver(PacketTrack("audio"), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.post(url.format(n=n), content=pc.localDescription.sdp,
                                  headers={"Content-Type": "application/sdp"})
        r.raise_for_status()
        await pc.setRemoteDescription(RTCSessionDescription(r.text, "answer"))
        return pc

    async def main() -> None:
        pcs = [await one(n) for n in range(count)]
        sys.stdout.write(json.dumps({"publishing": len(pcs)}) + "\n")
        sys.stdout.flush()
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the bench ------------------------------------------------------------------------------------------

def _start_kiln(workdir: Path) -> BenchKiln:
    """Kiln at log level info with WebRTC ingest and a bypass-only profile (no transcoding either way)."""
    ports = RtcPorts()
    kiln = BenchKiln(workdir, ports=ports)
    kiln.config_path.write_text(ingest_server_xml(ports, profiles=BYPASS_PROFILE))
    kiln.start()
    return kiln


def _video_streams(kiln: KilnProcess, count: int) -> bool:
    names = kiln.api.get("/v1/vhosts/default/apps/app/streams").json().get("response") or []
    if len(names) < count:
        return False
    for name in names:
        info = kiln.api.get(f"/v1/vhosts/default/apps/app/streams/{name}").json().get("response") or {}
        if not any(t.get("type") == "Video" for t in info.get("input", {}).get("tracks", [])):
            return False
    return True


def measure(protocol: str, streams: int, warmup: float, seconds: float, ts: Path, flv: Path) -> list[object]:
    workdir = run_dir(f"webrtc-ingest-{protocol}")
    kiln = _start_kiln(workdir)
    peers: list[Peer] = []
    try:
        if protocol == "webrtc":
            url = f"http://127.0.0.1:{kiln.ports.llhls}/app/rtc{{n}}?direction=whip"
            peers.append(Peer.spawn("aiortc-publishers", [sys.executable, __file__, "--child", url, str(streams),
                                                           str(ts)], workdir, env={"PYTHONPATH": str(ROOT)}))
        else:
            peers += [ffmpeg_publish(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/rtmp{n}", flv, workdir, f"ffmpeg-{n}")
                      for n in range(streams)]
        wait_until(lambda: _video_streams(kiln, streams), 90, f"{streams} {protocol} streams")
        time.sleep(warmup)
        assert kiln.proc is not None
        window = CpuWindow.measure({"kiln": [kiln.proc.pid], "publishers": [p.pid for p in peers]}, seconds)
        problems = dead(peers)
        bytes_in = 0
        for name in kiln.api.get("/v1/vhosts/default/apps/app/streams").json().get("response") or []:
            stats = kiln.api.get(f"/v1/stats/current/vhosts/default/apps/app/streams/{name}").json()["response"]
            bytes_in += int(stats.get("totalBytesIn", 0))
        return [protocol, streams, round(window.per_minute("kiln", streams), 3), round(window.core_pct("kiln"), 1),
                round(window.core_pct("publishers"), 1), round(window.machine_busy_pct, 1),
                f"{bytes_in / 1e6:.1f}", len(problems)]
    finally:
        stop_all(peers)
        kiln.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _publishers_main(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    ts, flv = media()
    rows = [measure(p, args.streams, args.warmup, args.seconds, ts, flv) for p in ("webrtc", "rtmp")]
    out(table(["protocol", "streams", "kiln cpu s/stream-min", "kiln % core", "publishers % core",
               "machine busy %", "MB in (total)", "dead peers"], rows))
    rtc, rtmp = float(str(rows[0][2])), float(str(rows[1][2]))
    out(f"webrtc / rtmp (Kiln CPU per stream-minute): {rtc / rtmp:.2f}" if rtmp else "rtmp figure is 0")


if __name__ == "__main__":
    main()

"""WebRTC over TCP through Kiln's TURN server (``TcpRelay``): what relaying costs Kiln, next to the same viewers
over plain UDP in the same run.

One stream (tests' 320x180 H.264 + AAC, Kiln adds Opus) is published by ffmpeg over RTMP to a Kiln with
``<TcpRelay>``. Then, in turn, (a) reference: N aiortc viewers over OME's signalling on UDP, (b) the same N
viewers with no host address of their own, so their only candidate is a relayed one on Kiln's TURN
server (``?transport=tcp``), every packet crossing a TCP connection and a relayed UDP socket in Kiln.
After ``--warmup`` seconds Kiln's CPU is read from /proc over ``--seconds``; each viewer reports RTP
packets received (getStats) and its nominated local candidate type. Kiln idle with the publisher is
printed first. The viewers decode on this machine too: the machine's busy share is printed.

Usage: .venv/bin/python bench/turn.py [--viewers 4] [--seconds 15] [--warmup 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _media import BenchKiln, CpuWindow, ffmpeg_publish, out, run_dir, stop_all, table  # noqa: E402

from tests.e2e.webrtc.play_kiln import RtcPorts, answer_offer, count_frames  # noqa: E402
from tests.e2e.webrtc.test_play_turn import TurnPorts, turn_xml  # noqa: E402
from tests.peers import media  # noqa: E402
from tests.peers.process import Peer  # noqa: E402


class TurnKiln(BenchKiln):
    def __init__(self, workdir: Path) -> None:
        ports = TurnPorts()
        super().__init__(workdir, ports=ports)
        self.config_path.write_text(turn_xml(ports, force=False))


async def _viewer(url: str, relay_only: bool, seconds: float) -> dict[str, Any]:
    import websockets
    from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

    async with websockets.connect(url + ("?transport=tcp" if relay_only else ""), open_timeout=30) as ws:
        await ws.send(json.dumps({"command": "request_offer"}))
        offer = json.loads(await asyncio.wait_for(ws.recv(), 30))
        servers = [RTCIceServer(urls=s["urls"], username=s["username"], credential=s["credential"])
                   for s in offer.get("iceServers", [])]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        count_frames(pc, {})  # decode what comes, as a player does

        await answer_offer(pc, ws, offer)
        await asyncio.sleep(seconds)
        packets = 0
        for stats in (await pc.getStats()).values():
            if getattr(stats, "type", "") == "inbound-rtp":
                packets += getattr(stats, "packetsReceived", 0)
        nominated = list(pc.getTransceivers()[0].receiver.transport.transport._connection._nominated.values())
        local = nominated[0].local_candidate.type if nominated else "none"
        await pc.close()
        return {"packets": packets, "local": local}


def viewers_main(url: str, mode: str, count: int, seconds: float) -> None:
    """In a child process: ``count`` viewers for ``seconds``, one JSON line each."""
    import aioice.ice

    # UDP viewers use loopback; relay-only viewers have no address of their own (UDP blocked)
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [] if mode == "turn" else ["127.0.0.1"]

    async def main() -> list[Any]:
        return await asyncio.gather(*(_viewer(url, mode == "turn", seconds) for _ in range(count)),
                                    return_exceptions=True)

    for result in asyncio.run(main()):
        sys.stdout.write(json.dumps(result if isinstance(result, dict) else {"error": repr(result)}) + "\n")


def run(args: argparse.Namespace) -> None:
    wd = run_dir("turn")
    kiln = TurnKiln(wd / "kiln").start()
    ports = kiln.ports
    assert isinstance(ports, RtcPorts)
    publisher = ffmpeg_publish(kiln.rtmp_url("cam"), media.test_flv(4), wd)
    rows: list[list[object]] = []
    over: dict[str, tuple[float, int, float]] = {}   # mode -> (kiln % over idle, viewers, packets/s per viewer)
    try:
        deadline = time.monotonic() + 30
        while "cam" not in kiln.stream_names() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
        idle = CpuWindow.measure({"kiln": [kiln.pid]}, 5)
        out(f"kiln idle with the publisher: {idle.core_pct('kiln'):.1f} % of a core; "
            f"load {Path('/proc/loadavg').read_text().split()[:3]}")
        url = f"ws://127.0.0.1:{ports.llhls}/app/cam"
        for mode in ("udp", "turn"):
            total = args.warmup + args.seconds
            peer = Peer.spawn(f"viewers-{mode}", [sys.executable, __file__, "--viewers-run", mode, url,
                                                  str(args.viewers), str(total)], wd)
            try:
                time.sleep(args.warmup)
                cpu = CpuWindow.measure({"kiln": [kiln.pid], "viewers": [peer.pid]}, args.seconds)
                peer.wait(total + 60)
            finally:
                stop_all([peer])
            results = [json.loads(line) for line in peer.stdout_text().splitlines() if line.startswith("{")]
            ok = [r for r in results if "packets" in r]
            packets = sum(r["packets"] for r in ok) / max(1, len(ok))
            over[mode] = (cpu.core_pct("kiln") - idle.core_pct("kiln"), len(ok), packets / total)
            rows.append([mode, f"{len(ok)}/{args.viewers}", ",".join(sorted({r["local"] for r in ok})) or "-",
                         f"{packets:.0f}", f"{cpu.core_pct('kiln'):.1f}",
                         f"{cpu.core_pct('kiln') - idle.core_pct('kiln'):.1f}",
                         f"{(cpu.core_pct('kiln') - idle.core_pct('kiln')) / max(1, len(ok)):.2f}",
                         f"{cpu.core_pct('viewers'):.0f}", f"{cpu.machine_busy_pct:.0f}"])
            for r in results:
                if "error" in r:
                    out(f"  {mode} viewer error: {r['error']}")
        out(table(["path", "viewers", "local cand", "rtp pkts/viewer", "kiln %core", "over idle",
                   "per viewer", "viewers %core", "machine %"], rows))
        if "udp" in over and "turn" in over and over["turn"][1] and over["turn"][2]:
            extra, viewers, rate = over["turn"][0] - over["udp"][0], over["turn"][1], over["turn"][2]
            out(f"TURN relaying costs {extra:.1f} % of a core more than UDP for {viewers} viewers at {rate:.0f} RTP "
                f"packets/s each: about {extra / 100 / viewers / rate * 1e6:.0f} us of Kiln CPU per relayed packet "
                "(noisy on a loaded machine: repeat)")
        allocations = kiln.log_lines("webrtc turn allocation client", limit=2)
        out(f"kiln TURN log (first lines): {allocations}")
    finally:
        stop_all([publisher])
        kiln.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--viewers-run":
        viewers_main(sys.argv[3], sys.argv[2], int(sys.argv[4]), float(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=5)
    run(parser.parse_args())


if __name__ == "__main__":
    main()

"""What the mypyc-compiled modules (setup.py) are worth: the same in-process ingest work, compiled and pure.

Child processes take turns, one with the install's extensions and one with ``KILN_PURE=1`` (every
compiled module loaded from its source instead, kiln/compiled.py), on the same inputs:

- ``rtmp_parse --path``'s measurements (bench/rtmp_parse.py): a 720p30 3 Mbit/s publish replayed
  through an RtmpConnection into a LiveStream (bypass output), then with an LL-HLS packager on it,
  and the chunk reader + FLV converter alone: CPU µs per media message;
- the bulk MPEG-TS demuxer over the same media remuxed to TS (``ffmpeg -c copy``), fed in 1,316-byte
  SRT payloads: CPU ns per TS packet.

Each figure is the best of ``--rounds`` turns; the ratio compiled / pure is printed next to each.
Needs a compiled install (``make install``); on a pure one both columns are pure and it says so.

Usage: .venv/bin/python bench/compiled.py [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TS_READ = 1316  # 7 TS packets: one SRT payload


def child(source: Path, ts: Path) -> dict[str, float | str]:
    import rtmp_parse as rp

    from kiln.compiled import install
    from kiln.media.formats.mpegts.demux import TsDemuxer

    tags = rp.flv_tags(source.read_bytes())
    reads = rp.split_reads(tags, 4096, 3)
    messages = sum(1 for kind, _, _ in tags if kind in (rp.AUDIO, rp.VIDEO)) * 3
    stream = b"".join(reads)
    result: dict[str, float | str] = {"state": install().state}
    start = time.process_time()
    rp.parse_once(stream)
    result["chunk reader + FLV converter"] = (time.process_time() - start) * 1e6 / messages
    result["session -> LiveStream (bypass)"] = asyncio.run(rp.replay(reads, False)) * 1e6 / messages
    result["session -> LiveStream -> LL-HLS"] = asyncio.run(rp.replay(reads, True)) * 1e6 / messages
    data = ts.read_bytes()
    demuxer = TsDemuxer()
    start = time.process_time()
    for at in range(0, len(data), TS_READ):
        demuxer.feed(data[at:at + TS_READ])
    demuxer.flush()
    result["TS demux, ns per TS packet"] = (time.process_time() - start) * 1e9 / (len(data) / 188)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of the 720p source")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("FLV", "TS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT / "bench"))
        sys.stdout.write(json.dumps(child(Path(args.child[0]), Path(args.child[1]))) + "\n")
        return
    sys.path.insert(0, str(ROOT / "bench"))
    import rtmp_parse as rp

    with tempfile.TemporaryDirectory(prefix="kiln-compiled-bench-") as tmp:
        source, ts = Path(tmp) / "src720p.flv", Path(tmp) / "src720p.ts"
        rp.make_source(source, args.seconds)
        subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(source), "-c", "copy",
                        "-f", "mpegts", "-y", str(ts)], check=True, timeout=120)
        best: dict[str, dict[str, float]] = {"compiled": {}, "pure": {}}
        states = {}
        for _ in range(args.rounds):
            for mode in ("compiled", "pure"):
                env = {**os.environ, "KILN_PURE": "1" if mode == "pure" else "0"}
                out = subprocess.run([sys.executable, __file__, "--child", str(source), str(ts)], env=env, cwd=ROOT,
                                     check=True, capture_output=True, text=True, timeout=600).stdout
                figures = json.loads(out.strip().splitlines()[-1])
                states[mode] = figures.pop("state")
                for name, value in figures.items():
                    best[mode][name] = min(best[mode].get(name, 1e18), value)
    sys.stdout.write(f"kiln.compiled state: with extensions={states['compiled']}, KILN_PURE=1 -> {states['pure']}; "
                     f"best of {args.rounds} rounds, taking turns; load {os.getloadavg()[0]:.2f}\n")
    for name, pure in best["pure"].items():
        comp = best["compiled"][name]
        unit = "ns/TS packet" if "TS" in name else "us/message"
        sys.stdout.write(f"{name:<34} pure {pure:8.2f}  compiled {comp:8.2f} {unit:<12}  compiled/pure "
                         f"{comp / pure:.2f}\n")


if __name__ == "__main__":
    main()

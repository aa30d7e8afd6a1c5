"""Transcoding speed: Kiln's transcoder classes next to the ffmpeg CLI with the same settings, in one run.

1. Kiln: the cached 720p30 FLV (``--seconds`` of input, default 60) is demuxed into Kiln packets up front,
   then pushed as fast as the transcoder takes them through the real path — input hub → bounded queue →
   worker thread (shared H.264 decoder, thread_type AUTO) → scale filter graph → libx264 → output hub.
   The only difference from a live stream is that the feeder waits while the worker's queue is nearly
   full instead of letting it skip (a live input cannot outrun real time).
2. ffmpeg: ``ffmpeg -threads <decoder threads> -i <same file> -map 0:v -vf scale=W:H -c:v libx264 -preset P -b:v B -g G
   -keyint_min G -sc_threshold 0 -bf 0 -f null -``, wall time of the process.
Both print frames per second; the ratio is Kiln fps / ffmpeg fps (target >= 0.95).
3. Bypass cost: the same packets through a LiveStream whose profile only bypasses (video and audio),
   CPU seconds spent per minute of media: it never decodes, so this is packet relabelling only.

Usage:
  .venv/bin/python bench/transcode.py                       # 60 s of 720p30 -> 360p veryfast
  .venv/bin/python bench/transcode.py --seconds 20 --preset faster --runs 3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402
from _media import media_720p, out  # noqa: E402

from kiln.media.formats.codecs.describe import describe_track  # noqa: E402
from kiln.media.model import Codec, Packet, Track  # noqa: E402
from kiln.media.stream.hub import StreamHub  # noqa: E402
from kiln.media.stream.live import LiveStream  # noqa: E402
from kiln.media.transcode.codecs import Target  # noqa: E402
from kiln.media.transcode.transcoder import DECODER_THREADS, StreamTranscoder  # noqa: E402
from kiln.metrics.track import TrackMeter  # noqa: E402


def demux(path: Path, seconds: float) -> tuple[Track, Track, list[Packet]]:
    packets: list[Packet] = []
    with av.open(str(path)) as inp:
        v, a = inp.streams.video[0], inp.streams.audio[0]
        tb = Fraction(1, 1000)
        video = describe_track(0, Codec.H264, bytes(v.codec_context.extradata), tb)
        audio = describe_track(1, Codec.AAC, bytes(a.codec_context.extradata), tb)
        for p in inp.demux():
            if p.dts is None or not p.size:
                continue
            pkt_tb = p.time_base
            ms = int(p.dts * pkt_tb * 1000)
            if ms > seconds * 1000:
                break
            tid = 0 if p.stream is v else 1
            packets.append(Packet(tid, int(p.pts * pkt_tb * 1000), ms, tb, bytes(p),
                                  keyframe=bool(p.is_keyframe) or tid == 1))
    return video, audio, packets


def kiln_run(video: Track, packets: list[Packet], encode: dict[str, str],
             decoder_threads: int) -> tuple[float, float, int]:
    """Wall and CPU seconds (all threads) to transcode every video packet through Kiln's transcoder; frames out."""
    hub_in, hub_out = StreamHub("bench/in"), StreamHub("bench/out")
    hub_in.set_track(video)
    tx = StreamTranscoder("bench/app/s", decoder_threads=decoder_threads)
    target = Target(hub_out, 0, TrackMeter())
    tx.add_video(encode, video, 30.0, target, "v360")
    tx.start(hub_in)
    worker = tx.workers[0]
    assert worker.queue is not None
    limit = worker.queue.max_packets - 10
    started, cpu0 = time.perf_counter(), time.process_time()
    for p in packets:
        if p.track_id != 0:
            continue
        while len(worker.queue) >= limit:
            time.sleep(0.0005)
        hub_in.publish(p)
    tx.finish()
    tx.join(600)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    return elapsed, cpu, target.meter.packets  # type: ignore[attr-defined]


def ffmpeg_run(path: Path, seconds: float, width: int, height: int, preset: str, bitrate: str,
               gop: int, decoder_threads: int) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the ffmpeg process) for the same transcode."""
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-threads", str(decoder_threads),
            "-t", str(seconds), "-i", str(path),
            "-map", "0:v", "-vf", f"scale={width}:{height}", "-c:v", "libx264", "-preset", preset,
            "-b:v", bitrate, "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-bf", "0",
            "-pix_fmt", "yuv420p", "-f", "null", "-"]
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, timeout=900)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - started, cpu


def bypass_cpu(video: Track, audio: Track, packets: list[Packet]) -> float:
    """CPU seconds a bypass-only LiveStream spends per minute of media (in-process, no network)."""
    profile = {"name": "bypass", "outputStreamName": "${OriginStreamName}", "encodes": {
        "videos": [{"name": "v", "bypass": "true"}], "audios": [{"name": "a", "bypass": "true"}]}}
    live = LiveStream("default", "app", "bypass", source_type="Rtmp", source_url="", profiles=[profile])
    live.on_track(video)
    live.on_track(audio)
    cpu0 = time.process_time()
    for p in packets:
        live.ingest(p)
    cpu = time.process_time() - cpu0
    media_s = (packets[-1].dts - packets[0].dts) / 1000.0
    live.end("bench over")
    assert not live.transcoder.workers, "a bypass-only profile must not open a decoder"
    return cpu / media_s * 60.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--bitrate", default="1M")
    ap.add_argument("--gop", type=int, default=60)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--decoder-threads", type=int, default=DECODER_THREADS,
                    help="H.264 decoder threads, the same for Kiln and ffmpeg (-threads before -i)")
    args = ap.parse_args()

    media = media_720p(max(args.seconds, 20))
    video, audio, packets = demux(media, args.seconds)
    frames_in = sum(1 for p in packets if p.track_id == 0)
    out(f"input: {media.name}, {frames_in} video frames ({args.seconds} s of 720p30) -> "
        f"{args.width}x{args.height} libx264 preset={args.preset} b={args.bitrate} g={args.gop} bf=0, "
        f"decoder threads {args.decoder_threads}")
    encode = {"codec": "h264", "width": str(args.width), "height": str(args.height), "bitrate": args.bitrate,
              "keyFrameInterval": str(args.gop), "preset": args.preset}
    kiln_fps, ffmpeg_fps, kiln_cpu, ffmpeg_cpu = [], [], [], []
    for run in range(args.runs):
        elapsed, cpu, frames_out = kiln_run(video, packets, encode, args.decoder_threads)
        kiln_fps.append(frames_out / elapsed)
        kiln_cpu.append(cpu * 1000 / frames_out)
        out(f"run {run + 1}: kiln   {elapsed:6.2f} s  {frames_out} frames  {frames_out / elapsed:6.1f} fps  "
            f"{kiln_cpu[-1]:5.2f} CPU ms/frame")
        elapsed, cpu = ffmpeg_run(media, args.seconds, args.width, args.height, args.preset, args.bitrate, args.gop,
                                  args.decoder_threads)
        ffmpeg_fps.append(frames_in / elapsed)
        ffmpeg_cpu.append(cpu * 1000 / frames_in)
        out(f"run {run + 1}: ffmpeg {elapsed:6.2f} s  {frames_in} frames  {frames_in / elapsed:6.1f} fps  "
            f"{ffmpeg_cpu[-1]:5.2f} CPU ms/frame")
    k, f = statistics.median(kiln_fps), statistics.median(ffmpeg_fps)
    kc, fc = statistics.median(kiln_cpu), statistics.median(ffmpeg_cpu)
    load = os.getloadavg()[0]
    out(f"transcode 720p30 -> {args.height}p (medians of {args.runs}): kiln {k:.1f} fps, ffmpeg CLI {f:.1f} fps, "
        f"ratio kiln/ffmpeg {k / f:.3f} (target >= 0.95); {k / 30:.1f}x real time")
    out(f"CPU per frame: kiln {kc:.2f} ms, ffmpeg {fc:.2f} ms, efficiency ratio ffmpeg/kiln {fc / kc:.3f}; "
        f"load average {load:.2f} on {os.cpu_count()} cores (wall-clock figures are noisy on a busy machine)")
    cpu_min = bypass_cpu(video, audio, packets)
    out(f"bypass-only stream: {cpu_min:.3f} CPU s per minute of media ({cpu_min / 60 * 100:.2f} % of a core), "
        f"no decoder opened")


if __name__ == "__main__":
    main()

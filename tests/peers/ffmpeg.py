"""ffmpeg / ffprobe as test peers: publishers, receivers and probes.

Publishers copy a cached test file (`tests.peers.media`) without re-encoding, paced in real time by
`-re`. Receivers bind 127.0.0.1 only. Every long-running ffmpeg is a `Peer`, stopped by PID.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.peers.ports import wait_udp_bound
from tests.peers.process import Peer, run_checked

log = logging.getLogger(__name__)

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
QUIET = ["-hide_banner", "-loglevel", "warning", "-nostdin"]


def _input_args(media: Path, *, loop: bool, realtime: bool, readrate: float = 1.0) -> list[str]:
    """``readrate`` > 1 paces the input that many times faster than real time (a test that needs N
    seconds of media, not N seconds of wall time, e.g. a DVR window to fill)."""
    args = (["-re"] if readrate == 1.0 else ["-readrate", f"{readrate:g}"]) if realtime else []
    if loop:
        args += ["-stream_loop", "-1"]
    return [*args, "-i", str(media)]


def _publish(
    name: str, media: Path, out: list[str], *, loop: bool, realtime: bool, log_dir: Path, extra_args: Sequence[str],
    readrate: float = 1.0,
) -> Peer:
    media = Path(media)
    if not media.exists():
        raise FileNotFoundError(media)
    argv = [FFMPEG, *QUIET, *_input_args(media, loop=loop, realtime=realtime, readrate=readrate), "-c", "copy",
            *extra_args, *out]
    return Peer.spawn(name, argv, log_dir)


def publish_rtmp(
    url: str,
    media: Path,
    *,
    loop: bool = False,
    realtime: bool = True,
    readrate: float = 1.0,
    log_dir: Path,
    extra_args: Sequence[str] = (),
) -> Peer:
    """Push `media` to an RTMP URL (rtmp://host:port/app/stream) as FLV, stream copy."""
    out = ["-f", "flv", "-flvflags", "no_duration_filesize", url]
    return _publish("ffmpeg-rtmp-pub", media, out, loop=loop, realtime=realtime, log_dir=log_dir,
                    extra_args=extra_args, readrate=readrate)


def publish_srt(
    url: str,
    media: Path,
    *,
    loop: bool = False,
    realtime: bool = True,
    log_dir: Path,
    extra_args: Sequence[str] = (),
) -> Peer:
    """Push `media` as MPEG-TS to an SRT URL, e.g. srt://127.0.0.1:P?mode=caller&streamid=...

    ffmpeg's SRT `latency` option is in microseconds.
    """
    return _publish("ffmpeg-srt-pub", media, ["-f", "mpegts", url], loop=loop, realtime=realtime, log_dir=log_dir,
                    extra_args=extra_args)


def publish_mpegts_udp(
    host: str,
    port: int,
    media: Path,
    *,
    loop: bool = False,
    realtime: bool = True,
    log_dir: Path,
    extra_args: Sequence[str] = (),
) -> Peer:
    """Send `media` as MPEG-TS over UDP to host:port (1316-byte datagrams)."""
    out = ["-f", "mpegts", f"udp://{host}:{port}?pkt_size=1316"]
    return _publish("ffmpeg-udp-pub", media, out, loop=loop, realtime=realtime, log_dir=log_dir,
                    extra_args=extra_args)


def _network_input_args(url: str) -> list[str]:
    if url.startswith("rtsp://"):
        return ["-rtsp_transport", "tcp", "-timeout", "10000000"]
    if url.startswith(("rtmp://", "http://", "https://", "tcp://")):
        return ["-rw_timeout", "10000000"]
    return []


def ffprobe_json(url_or_path: str | Path, timeout: float = 20, *, extra_args: Sequence[str] = ()) -> dict[str, Any]:
    """`ffprobe -show_streams -show_format` as a dict. RTSP URLs are read over TCP."""
    target = str(url_or_path)
    argv = [FFPROBE, "-hide_banner", "-v", "error", *_network_input_args(target), *extra_args,
            "-show_streams", "-show_format", "-of", "json", target]
    result: dict[str, Any] = json.loads(run_checked(argv, timeout).stdout or "{}")
    return result


def streams_by_type(probe: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The first stream of each codec_type ("video", "audio") in an ffprobe_json result."""
    found: dict[str, dict[str, Any]] = {}
    for stream in probe.get("streams", []):
        found.setdefault(stream.get("codec_type", "?"), stream)
    return found


def count_packets(path: str | Path, stream: str = "v:0", timeout: float = 60) -> int:
    """Number of packets of `stream` (an ffprobe stream specifier) in a file."""
    argv = [FFPROBE, "-v", "error", "-count_packets", "-select_streams", stream,
            "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)]
    text = run_checked(argv, timeout).stdout.strip().splitlines()
    return int(text[0].strip(",")) if text and text[0].strip(",").isdigit() else 0


def count_frames(path: str | Path, timeout: float = 60) -> int:
    """Number of video packets (= frames for H.264) in a file."""
    return count_packets(path, "v:0", timeout)


def record_from(
    url: str,
    out_path: Path,
    seconds: float,
    *,
    log_dir: Path | None = None,
    input_args: Sequence[str] = (),
) -> Peer:
    """Pull `url` and stream-copy `seconds` of it into `out_path` (container from its suffix).

    Network reads time out after 10 s without data, so the peer ends by itself if the source goes away.
    """
    out_path = Path(out_path)
    argv = [FFMPEG, *QUIET, *_network_input_args(url), *input_args, "-i", url,
            "-c", "copy", "-t", f"{seconds:g}", "-y", str(out_path)]
    return Peer.spawn("ffmpeg-record", argv, log_dir or out_path.parent)


def udp_ts_receiver(
    port: int,
    out_path: Path,
    seconds: float,
    *,
    log_dir: Path | None = None,
    idle_timeout: float = 10.0,
    ready_timeout: float = 10.0,
) -> Peer:
    """Listen for MPEG-TS on udp://127.0.0.1:port and save `seconds` of it; returns once the port is bound.

    The reader gives up `idle_timeout` seconds after data stops (or never starts).
    """
    out_path = Path(out_path)
    url = f"udp://127.0.0.1:{port}?localaddr=127.0.0.1&fifo_size=1000000&overrun_nonfatal=1"
    argv = [FFMPEG, *QUIET, "-timeout", str(int(idle_timeout * 1_000_000)), "-i", url,
            "-c", "copy", "-t", f"{seconds:g}", "-f", "mpegts", "-y", str(out_path)]
    peer = Peer.spawn("ffmpeg-udp-rx", argv, log_dir or out_path.parent)
    wait_udp_bound(port, ready_timeout, proc=peer)
    return peer


def srt_listener_receiver(
    port: int,
    out_path: Path,
    seconds: float,
    *,
    streamid: str | None = None,
    latency_us: int = 200_000,
    log_dir: Path | None = None,
    ready_timeout: float = 10.0,
) -> Peer:
    """An ffmpeg SRT listener on 127.0.0.1:port saving `seconds` of MPEG-TS; returns once the port is bound.

    `streamid` is passed to ffmpeg as the socket's streamid option; ffmpeg does not check a caller's
    streamid against it. ffmpeg's SRT latency is in microseconds.
    """
    out_path = Path(out_path)
    url = f"srt://127.0.0.1:{port}?mode=listener&latency={latency_us}"
    if streamid is not None:
        url += f"&streamid={quote(streamid, safe='')}"
    argv = [FFMPEG, *QUIET, "-i", url, "-c", "copy", "-t", f"{seconds:g}", "-f", "mpegts", "-y", str(out_path)]
    peer = Peer.spawn("ffmpeg-srt-rx", argv, log_dir or out_path.parent)
    wait_udp_bound(port, ready_timeout, proc=peer)
    return peer

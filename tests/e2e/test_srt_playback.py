"""SRT playback as a player sees it: ffmpeg and srt-live-transmit pull a stream from
Bind/Publishers/SRT with OME's streamid; the port's passphrase is enforced; an unknown stream is
refused with a logged reason; a stalled caller slows nobody; `srt` connections are counted."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import FFMPEG, QUIET, ffprobe_json, publish_rtmp, streams_by_type
from tests.peers.ports import free_udp_port
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"
PASSPHRASE = "playback-secret-1"
PLAYLIST_PROFILE = """
            <OutputProfile>
              <Name>bypass</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes>
                <Video><Name>bypass_video</Name><Bypass>true</Bypass></Video>
                <Audio><Name>bypass_audio</Name><Bypass>true</Bypass></Audio>
              </Encodes>
              <Playlist><Name>Video only</Name><FileName>picture</FileName>
                <Rendition><Name>v</Name><Video>bypass_video</Video></Rendition></Playlist>
            </OutputProfile>"""


def playback_xml(ports: Ports, root: Path, playback_port: int) -> str:
    """The e2e Server.xml with the SRT publisher bound (with a passphrase) and enabled in the app."""
    xml = server_xml(ports, root, profiles=PLAYLIST_PROFILE)
    bind = (f"<SRT><Port>{playback_port}</Port><Options>"
            f"<Option><Key>SRTO_PASSPHRASE</Key><Value>{PASSPHRASE}</Value></Option></Options></SRT>")
    xml = xml.replace("<OVT><Port>", bind + "<OVT><Port>", 1)
    assert "<Push/>" in xml
    return xml.replace("<Push/>", "<Push/><SRT/>", 1)


@pytest.fixture
def srt_kiln(kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> KilnProcess:
    ports = Ports()
    playback_port = free_udp_port()
    kiln = kiln_factory(xml=playback_xml(ports, tmp_path / "records", playback_port), ports=ports)
    kiln.playback_port = playback_port  # type: ignore[attr-defined]
    return kiln


def play_url(kiln: KilnProcess, path: str, *, passphrase: str | None = PASSPHRASE) -> str:
    """OME's form: the streamid is the percent-encoded srt://host:port/app/stream[/playlist]."""
    port = kiln.playback_port  # type: ignore[attr-defined]
    streamid = quote(f"srt://127.0.0.1:{port}/{path}", safe="")
    secret = f"&passphrase={passphrase}" if passphrase else ""
    return f"srt://127.0.0.1:{port}?mode=caller&latency=200000{secret}&streamid={streamid}"


def pull(url: str, out: Path, seconds: float, timeout: float) -> subprocess.CompletedProcess[str]:
    argv = [FFMPEG, *QUIET, "-y", "-i", url, "-t", str(seconds), "-c", "copy", "-f", "mpegts", str(out)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def srt_connections(kiln: KilnProcess, stream: str = "cam") -> int:
    r = kiln.api.get(f"/v1/stats/current{APP[3:]}/streams/{stream}")
    assert r.status_code == 200, r.text
    return int(r.json()["response"]["connections"]["srt"])


def bytes_in(kiln: KilnProcess, stream: str = "cam") -> int:
    return int(kiln.api.get(f"/v1/stats/current{APP[3:]}/streams/{stream}").json()["response"]["totalBytesIn"])


def publish_cam(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> Peer:
    source = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/cam", test_flv, loop=True, log_dir=peer_dir)
    kiln.wait_for(lambda: kiln.api.get(f"{APP}/streams").json()["response"] == ["cam"], what="cam listed")
    kiln.wait_for(lambda: bytes_in(kiln) > 50_000, what="cam has media")
    return source


def media_duration(path: Path) -> float:
    return float(ffprobe_json(path, timeout=30)["format"]["duration"])


def test_ffmpeg_pulls_h264_aac_from_a_keyframe_and_counts_one_srt_connection(
        srt_kiln: KilnProcess, test_flv: Path, peer_dir: Path, tmp_path: Path) -> None:
    kiln = srt_kiln
    source = publish_cam(kiln, test_flv, peer_dir)
    out = tmp_path / "pulled.ts"
    argv = [FFMPEG, *QUIET, "-y", "-i", play_url(kiln, "app/cam"), "-t", "4", "-c", "copy", "-f", "mpegts", str(out)]
    player = Peer.spawn("ffmpeg-srt-play", argv, peer_dir)
    try:
        assert kiln.wait_for(lambda: srt_connections(kiln) == 1, what="one srt connection while playing")
        assert player.wait(30) == 0, player.stderr_tail()
        kiln.wait_for(lambda: srt_connections(kiln) == 0, what="srt connection released when the player left")
        stats = kiln.api.get(f"/v1/stats/current{APP[3:]}/streams/cam").json()["response"]
        assert stats["totalBytesOut"] > 100_000  # what the player was sent (no other viewer)
        assert stats["maxTotalConnections"] >= 1
    finally:
        player.stop()
        source.stop()
    streams = streams_by_type(ffprobe_json(out, timeout=30))
    assert (streams["video"]["codec_name"], streams["audio"]["codec_name"]) == ("h264", "aac")
    assert (streams["video"]["width"], streams["video"]["height"]) == (320, 180)
    assert media_duration(out) >= 3.5
    first = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1",
                            "-show_entries", "packet=flags", "-of", "csv=p=0", str(out)],
                           capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert first and first[0].startswith("K"), f"first video packet is not a keyframe: {first}"
    kiln.wait_for_log("srt playback started session=default/app/cam@127.0.0.1:")


def test_playlist_carries_its_first_rendition_only(
        srt_kiln: KilnProcess, test_flv: Path, peer_dir: Path, tmp_path: Path) -> None:
    kiln = srt_kiln
    source = publish_cam(kiln, test_flv, peer_dir)
    out = tmp_path / "picture.ts"
    try:
        result = pull(play_url(kiln, "app/cam/picture"), out, 2, timeout=30)
    finally:
        source.stop()
    assert result.returncode == 0, result.stderr
    types = [s["codec_type"] for s in ffprobe_json(out, timeout=30)["streams"]]
    assert types == ["video"]


def test_wrong_passphrase_and_unknown_stream_are_refused(
        srt_kiln: KilnProcess, test_flv: Path, peer_dir: Path, tmp_path: Path) -> None:
    kiln = srt_kiln
    source = publish_cam(kiln, test_flv, peer_dir)
    try:
        wrong = pull(play_url(kiln, "app/cam", passphrase="not-the-secret-9"), tmp_path / "wrong.ts", 2, timeout=30)
        bare = pull(play_url(kiln, "app/cam", passphrase=None), tmp_path / "bare.ts", 2, timeout=30)
        unknown = pull(play_url(kiln, "app/nope"), tmp_path / "nope.ts", 2, timeout=30)
        playlist = pull(play_url(kiln, "app/cam/nolist"), tmp_path / "nolist.ts", 2, timeout=30)
        assert srt_connections(kiln) == 0
    finally:
        source.stop()
    for refused in (wrong, bare, unknown, playlist):
        assert refused.returncode != 0
    assert not (tmp_path / "wrong.ts").exists() or (tmp_path / "wrong.ts").stat().st_size == 0
    # the listener notices a handshake that failed after its streamid was accepted within a second or so
    kiln.wait_for_log("srt caller handshake failed", "reason=no stream 'nope' in application default/app",
                      "reason=no playlist 'nolist' in the output stream (playlists: picture)")


def test_a_stalled_caller_does_not_slow_a_second_one_nor_ingest(
        srt_kiln: KilnProcess, test_flv: Path, peer_dir: Path, tmp_path: Path) -> None:
    kiln = srt_kiln
    source = publish_cam(kiln, test_flv, peer_dir)
    # srt-live-transmit writes to a pipe nobody reads: once the pipe is full it never reads SRT again;
    # its small receive buffer (fc, rcvbuf) fills in a second instead of minutes
    stalled = Peer.spawn("srt-live-transmit-stalled", [
        "bash", "-c", f"srt-live-transmit -q '{play_url(kiln, 'app/cam')}&fc=32&rcvbuf=48000' file://con | sleep 600"],
        peer_dir)
    try:
        kiln.wait_for(lambda: srt_connections(kiln) == 1, what="the stalled caller connected")
        time.sleep(2)  # its pipe fills; it stops reading
        began, before = time.monotonic(), bytes_in(kiln)
        out = tmp_path / "second.ts"
        result = pull(play_url(kiln, "app/cam"), out, 6, timeout=40)
        took = time.monotonic() - began
        assert result.returncode == 0, result.stderr
        assert media_duration(out) >= 5.5
        assert took < 6 + 8, f"the second caller needed {took:.1f} s for 6 s of media"
        assert bytes_in(kiln) > before + 100_000  # ingest kept its pace
        assert kiln.api.get(f"{APP}/streams").json()["response"] == ["cam"]
        # the stall rule needs the caller's buffers full, then over 2 s of media unacknowledged for a second:
        # about 5 s after it connected, which the second caller's 6 s pull does not always outlast under load
        def dropped() -> str | None:
            text = kiln.log_path.read_text()
            return text if "reason=the caller is too slow: dropped to protect the stream" in text else None

        log = kiln.wait_for(dropped, 30, "the stalled caller dropped")
        assert "srt playback caller stalled session=default/app/cam@127.0.0.1:" in log
        kiln.wait_for(lambda: srt_connections(kiln) == 0, what="the stalled caller's connection released")
    finally:
        stalled.stop()
        source.stop()

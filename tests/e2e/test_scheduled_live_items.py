"""Scheduled channels with ``stream://`` items: a live RTMP stream of the server played as a program item, between
file items, on one LL-HLS stream whose timestamps only go forward; the fallback when the stream stops; the source
let go of when the channel ends."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.test_scheduled_channels import TV, TV_APP, make_item, watch
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

CAM = "stream://default/app/cam1"


def make_cam(path: Path) -> None:
    """Blue 320x180 at 20 fps, a keyframe every 30 frames, AAC: the camera, as FLV for RTMP (looped)."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=blue:s=320x180:r=20",
                    "-f", "lavfi", "-i", "sine=f=660:r=48000", "-t", "6", "-c:v", "libx264", "-preset", "veryfast",
                    "-g", "30", "-bf", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k", "-f", "flv",
                    str(path)], check=True, timeout=60)


def setup(kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> tuple[KilnProcess, Path, Path]:
    media = tmp_path / "media"
    media.mkdir()
    make_item(media / "red.mp4", "red", 440)
    cam = tmp_path / "cam.flv"
    make_cam(cam)
    workdir = tmp_path / "kiln"
    (workdir / "schedules").mkdir(parents=True)
    return kiln_factory(workdir=workdir, extra_apps=TV_APP.format(media=media)), workdir, cam


def threads(k: KilnProcess) -> list[str]:
    """The process's threads by name, but for the LL-HLS DVR pool, started at the first stream's end (cam1's)."""
    assert k.proc is not None
    tasks = Path(f"/proc/{k.proc.pid}/task")
    names = []
    for task in tasks.iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except OSError:
            continue  # ended meanwhile
    return sorted(re.sub(r"-\d+$", "", n) for n in names if not n.startswith("llhls-dvr"))


def publish_cam(k: KilnProcess, cam: Path, peer_dir: Path) -> Peer:
    peer = publish_rtmp(f"rtmp://127.0.0.1:{k.ports.rtmp}/app/cam1", cam, loop=True, log_dir=peer_dir)
    k.wait_for(lambda: k.api.get("/v1/vhosts/default/apps/app/streams/cam1").json()["statusCode"] == 200,
               what="cam1 live")
    return peer


def playlist(k: KilnProcess, name: str) -> str:
    url = f"http://127.0.0.1:{k.ports.llhls}/tv/{name}/llhls.m3u8"
    k.wait_for(lambda: subprocess.run(["curl", "-sf", url], capture_output=True).returncode == 0, timeout=30,
               what=f"{name}'s playlist")
    return url


def packets(url: str, seconds: int) -> dict[str, list[float]]:
    """codec type -> dts (s) of the packets ffprobe reads from ``url`` for ``seconds`` of media."""
    out = subprocess.run(["ffprobe", "-v", "error", "-read_intervals", f"%+{seconds}", "-show_entries",
                          "packet=stream_index,dts_time:stream=index,codec_type", "-of", "json", url],
                         capture_output=True, timeout=60, check=True)
    data: dict[str, Any] = json.loads(out.stdout)
    kinds = {s["index"]: s["codec_type"] for s in data["streams"]}
    found: dict[str, list[float]] = {}
    for p in data["packets"]:
        if p.get("dts_time") is not None:
            found.setdefault(kinds[p["stream_index"]], []).append(float(p["dts_time"]))
    return found


def test_a_live_stream_item_plays_between_file_items_with_timestamps_going_forward(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, peer_dir: Path) -> None:
    k, workdir, cam = setup(kiln_factory, tmp_path)
    peer = publish_cam(k, cam, peer_dir)
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
    body = {"stream": {"name": "ch"}, "programs": [{"name": "show", "scheduled": now, "repeat": True, "items": [
        {"url": "file://red.mp4"}, {"url": CAM, "duration": 2000}]}]}
    assert k.api.post(TV, json=body).json() == {"message": "Created", "statusCode": 201}
    items = k.api.get(f"{TV}/ch").json()["response"]["programs"][0]["items"]
    assert items[1] == {"url": CAM, "start": 0, "duration": 2000}  # the URL as given
    assert f'<Item url="{CAM}" start="0" duration="2000" />' in (workdir / "schedules" / "ch.sch").read_text()

    url = playlist(k, "ch")
    frames = watch(url, 9)
    times = [t for t, _ in frames]
    assert times == sorted(times) and len(set(times)) == len(times), "video timestamps go forward across items"
    colours = [c for _, c in frames]
    changes = [i for i in range(1, len(colours)) if colours[i] != colours[i - 1]]
    assert {"red", "blue"} <= set(colours) and len(changes) >= 2, colours  # file, live, file again (or live first)
    gaps = [times[i] - times[i - 1] for i in changes]
    assert max(gaps) < 0.2, f"an item starts where the last ended: {gaps}"  # 20 fps: 0.05 s a frame
    for kind, dts in packets(url, 8).items():
        assert all(b > a for a, b in zip(dts, dts[1:], strict=False)), f"{kind} dts go forward"
        assert max(b - a for a, b in zip(dts, dts[1:], strict=False)) < 0.3, f"{kind} has no hole"
    log = k.log_text()
    assert re.search(r"schedule item .*url=stream://default/app/cam1 play_ms=\d+ source_subscribers=\d+", log)
    assert re.search(r"schedule live item ended .*how=played its duration", log)

    k.kill9()  # the channel, its stream:// item with it, is kept by the journal
    peer.stop()
    k.start()
    assert k.api.get(f"{TV}/ch").json()["response"]["programs"][0]["items"][1] == {"url": CAM, "start": 0,
                                                                                  "duration": 2000}
    before = k.log_text().count("url=stream://default/app/cam1 play_ms=")
    peer = publish_cam(k, cam, peer_dir)
    k.wait_for(lambda: k.log_text().count("url=stream://default/app/cam1 play_ms=") > before, timeout=30,
               what="the live item playing after the restart")
    peer.stop()
    assert k.api.delete(f"{TV}/ch").json() == {"message": "OK", "statusCode": 200}
    assert "Traceback" not in k.log_text(), k.log_tail()


def test_a_live_item_whose_stream_stops_hands_over_to_the_fallback_and_the_channel_lets_go_of_it(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, peer_dir: Path) -> None:
    k, workdir, cam = setup(kiln_factory, tmp_path)
    peer = publish_cam(k, cam, peer_dir)
    playlist_url = f"http://127.0.0.1:{k.ports.llhls}/app/cam1/llhls.m3u8"
    k.wait_for(lambda: subprocess.run(["curl", "-sf", playlist_url], capture_output=True).returncode == 0,
               what="cam1's playlist")
    threads_before = threads(k)
    (workdir / "schedules" / "origin.sch").write_text(f"""<?xml version="1.0"?>
<Schedule><Stream><Name>origin</Name></Stream>
<FallbackProgram><Item url="file://red.mp4"/></FallbackProgram>
<Program name="live" scheduled="2000-01-01T00:00:00.000Z" repeat="true"><Item url="{CAM}" duration="-1"/></Program>
</Schedule>
""")  # OME's documented "live with a fallback" channel, as a file written while Kiln runs
    k.wait_for(lambda: k.api.get(f"{TV}/origin").json()["statusCode"] == 200, what="the file's channel")
    url = playlist(k, "origin")
    assert {c for _, c in watch(url, 2)} == {"blue"}  # the live stream
    k.wait_for_log("schedule item where=default/tv stream=origin program=live url=" + CAM)

    peer.stop()  # the camera stops mid-item: the fallback program plays
    k.wait_for_log("schedule live item ended where=default/tv stream=origin url=" + CAM)
    k.wait_for_log("schedule item where=default/tv stream=origin program=fallback url=file://red.mp4")
    assert "red" in {c for _, c in watch(url, 8)}  # a player starts a few segments behind the live edge
    current = k.api.get(f"{TV}/origin").json()["response"]["currentProgram"]
    assert current["currentItem"]["url"] == "file://red.mp4"

    peer = publish_cam(k, cam, peer_dir)  # back: the live program plays again
    k.wait_for(lambda: k.log_text().count("program=live url=" + CAM) >= 2, timeout=30, what="live again")
    k.wait_for(lambda: k.api.get(f"{TV}/origin").json()["response"]["currentProgram"]["currentItem"]["url"] == CAM,
               what="the live item on air again")

    started = re.findall(r"program=live url=\S+ play_ms=\d+ source_subscribers=(\d+)", k.log_text())
    with_channel = int(started[-1])
    (workdir / "schedules" / "origin.sch").unlink()  # the channel ends: its callback leaves cam1's hub
    k.wait_for(lambda: k.api.get(f"{TV}/origin").json()["statusCode"] == 404, what="the channel removed")
    ended = k.wait_for(lambda: len(found := re.findall(r"schedule live item ended where=default/tv stream=origin "
                                                       r"url=\S+ how=interrupted played_ms=\d+ "
                                                       r"source_subscribers=(\d+)", k.log_text())) >= 1 and found,
                       what="the live item interrupted")
    assert int(ended[-1]) == with_channel - 1, "cam1's subscribers back to what they were before the channel"
    k.wait_for(lambda: not Counter(threads(k)) - Counter(threads_before), timeout=20, what="threads back down")
    assert k.api.get("/v1/vhosts/default/apps/app/streams/cam1").json()["statusCode"] == 200  # cam1 untouched
    assert "Traceback" not in k.log_text(), k.log_tail()
    peer.stop()


def test_two_channels_playing_each_other_never_echo(kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> None:
    """Channel a plays stream://…/b while b plays stream://…/a: each replayed the other's last GOP for ever. The item
    that would close the loop cannot play (logged with the loop), so its channel plays its fallback file, and the
    other channel plays that."""
    k, _workdir, _cam = setup(kiln_factory, tmp_path)
    for name, other in (("a", "b"), ("b", "a")):
        body = {"stream": {"name": name}, "fallbackProgram": {"items": [{"url": "file://red.mp4"}]},
                "programs": [{"name": "loop", "scheduled": "2000-01-01T00:00:00.000Z", "repeat": True,
                              "items": [{"url": f"stream://default/tv/{other}", "duration": -1}]}]}
        assert k.api.post(TV, json=body).json() == {"message": "Created", "statusCode": 201}
    k.wait_for_log("schedule item plays a channel that plays this one", timeout=30)
    assert re.search(r"url=stream://default/tv/[ab] loop=default/tv/([ab]) -> default/tv/[ab] -> default/tv/\1:",
                     k.log_text()), k.log_tail()

    def on_air() -> list[str]:
        return [k.api.get(f"{TV}/{name}").json()["response"].get("currentProgram", {}).get("currentItem", {})
                .get("url", "") for name in ("a", "b")]

    k.wait_for(lambda: sorted(on_air()) in (["file://red.mp4", "stream://default/tv/a"],
                                            ["file://red.mp4", "stream://default/tv/b"]),
               timeout=30, what="one channel on its fallback file, the other playing it")
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:  # never both on their stream:// items
        assert "file://red.mp4" in on_air()
        time.sleep(0.2)
    for name in ("a", "b"):
        assert {c for _, c in watch(playlist(k, name), 2)} == {"red"}  # both show the fallback's picture
    assert "Traceback" not in k.log_text(), k.log_tail()

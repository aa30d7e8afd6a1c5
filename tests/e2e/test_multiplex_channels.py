"""Multiplex channels: two live RTMP streams of different sizes made one ABR LL-HLS stream through OME's API,
kept across kill -9; a ``.mux`` file in MuxFilesDir duplicates a stream into another app."""

from __future__ import annotations

import datetime
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.ffmpeg import ffprobe_json, publish_rtmp
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

MUX = "/v1/vhosts/default/apps/mux/multiplexChannels"
MUX_APP = """
        <Application>
          <Name>mux</Name>
          <Type>live</Type>
          <Providers><Multiplex><MuxFilesDir>mux_files</MuxFilesDir></Multiplex>
            <Schedule><MediaRootDir>media</MediaRootDir><ScheduleFilesDir>schedules</ScheduleFilesDir></Schedule>
          </Providers>
          <Publishers><LLHLS><ChunkDuration>0.5</ChunkDuration><SegmentDuration>1</SegmentDuration></LLHLS></Publishers>
        </Application>"""
DUP = """<?xml version="1.0" encoding="UTF-8"?>
<Multiplex>
  <OutputStream><Name>dup</Name></OutputStream>
  <SourceStreams><SourceStream><Name>small</Name><Url>stream://default/app/small</Url><TrackMap>
    <Track><SourceTrackName>bypass_video</SourceTrackName><NewTrackName>video</NewTrackName></Track>
    <Track><SourceTrackName>bypass_audio</SourceTrackName><NewTrackName>audio</NewTrackName></Track>
  </TrackMap></SourceStream></SourceStreams>
</Multiplex>
"""
ABR = {"outputStream": {"name": "abr"}, "sourceStreams": [
    {"name": "small", "url": "stream://default/app/small", "trackMap": [
        {"sourceTrackName": "bypass_video", "newTrackName": "small_video"},
        {"sourceTrackName": "bypass_audio", "newTrackName": "small_audio"}]},
    {"name": "big", "url": "stream://default/app/big", "trackMap": [
        {"sourceTrackName": "bypass_video", "newTrackName": "big_video"}]}],
    "playlists": [{"name": "ABR", "fileName": "abr", "renditions": [
        {"name": "360p", "video": "big_video", "audio": "small_audio"},
        {"name": "180p", "video": "small_video", "audio": "small_audio"}]}]}


def make_source(path: Path, size: str, tone: int) -> None:
    """Three seconds of a test pattern and a tone, a keyframe every half second, as FLV for RTMP."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={size}:r=20",
                    "-f", "lavfi", "-i", f"sine=f={tone}:r=48000", "-t", "3", "-c:v", "libx264", "-preset",
                    "veryfast", "-g", "10", "-bf", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k",
                    "-f", "flv", str(path)], check=True, timeout=60)


def publish(k: KilnProcess, media: dict[str, Path], log_dir: Path) -> list[Peer]:
    return [publish_rtmp(f"rtmp://127.0.0.1:{k.ports.rtmp}/app/{name}", path, loop=True, log_dir=log_dir)
            for name, path in media.items()]


def channel(k: KilnProcess, name: str) -> dict[str, Any]:
    response: dict[str, Any] = k.api.get(f"{MUX}/{name}").json()["response"]
    return response


def variants(k: KilnProcess) -> dict[str, str]:
    """RESOLUTION -> variant chunklist URL of the channel's ABR master playlist."""
    base = f"http://127.0.0.1:{k.ports.llhls}/mux/abr/"
    master = subprocess.run(["curl", "-sf", base + "abr.m3u8"], capture_output=True, timeout=10).stdout.decode()
    found = re.findall(r"RESOLUTION=(\d+x\d+)[^\n]*\n([^\n]+)", master)
    return {size: urljoin(base, uri) for size, uri in found}


def test_two_streams_become_one_abr_stream_that_survives_kill9(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path, peer_dir: Path) -> None:
    media = {"small": tmp_path / "small.flv", "big": tmp_path / "big.flv"}
    make_source(media["small"], "320x180", 440)
    make_source(media["big"], "640x360", 880)
    workdir = tmp_path / "kiln"
    (workdir / "mux_files").mkdir(parents=True)
    (workdir / "mux_files" / "dup.mux").write_text(DUP)  # there before the start: loaded as OME does
    k = kiln_factory(workdir=workdir, extra_apps=MUX_APP)

    assert k.api.post(MUX, json=ABR).json() == {"message": "Created", "statusCode": 201}
    assert k.api.post(MUX, json=ABR).json() == {"message": "[HTTP] Stream 'abr' already exists (409)",
                                                "statusCode": 409}
    no_provider = "/v1/vhosts/default/apps/app/multiplexChannels"
    forbidden = k.api.post(no_provider, json=ABR)
    assert (forbidden.status_code, forbidden.json()["message"]) == (403, "Forbidden")
    assert k.api.get(no_provider).json() == {
        "message": "[HTTP] Could not get the multiplex application (404)", "statusCode": 404}
    bad = k.api.post(MUX, json={"outputStream": {"name": "x"}, "sourceStreams": [{"name": "a", "url": "nope"}]})
    assert bad.json() == {"message": "[HTTP] Failed to parse url: nope (400)", "statusCode": 400}
    assert k.api.get(f"{MUX}/nope").json() == {
        "message": "[HTTP] Could not get the multiplex stream <nope> (404)", "statusCode": 404}
    # both kinds of channel are streams of the app: neither takes the other's name, even while it waits off air
    scheduled = "/v1/vhosts/default/apps/mux/scheduledChannels"
    assert k.api.post(scheduled, json={"stream": {"name": "abr"}}).json()["statusCode"] == 409
    assert k.api.post(scheduled, json={"stream": {"name": "sch"}}).json()["statusCode"] == 201
    assert k.api.post(MUX, json={**ABR, "outputStream": {"name": "sch"}}).json() == {
        "message": "[HTTP] Stream 'sch' already exists (409)", "statusCode": 409}
    assert sorted(k.api.get(MUX).json()["response"]) == ["abr", "dup"]
    mux_file = (workdir / "mux_files" / "abr.mux").read_text()
    assert "<Url>stream://default/app/big</Url>" in mux_file and "<Video>big_video</Video>" in mux_file

    waiting = k.wait_for(lambda: (c := channel(k, "abr"))["state"] == "Pulling" and c, what="the channel waiting")
    assert waiting["pullingMessage"].startswith("Multiplex Channel : #default#mux/abr: Wait for stream ")
    assert waiting["playlists"][0]["renditions"][0] == {"name": "360p", "video": "big_video", "audio": "small_audio"}

    peers = publish(k, media, peer_dir)
    k.wait_for(lambda: channel(k, "abr")["state"] == "Playing", what="the channel playing")
    found = k.wait_for(lambda: len(v := variants(k)) == 2 and v, timeout=30, what="two variants in the master")
    assert set(found) == {"320x180", "640x360"}
    for size, url in found.items():
        streams = ffprobe_json(url)["streams"]
        video = next(s for s in streams if s["codec_type"] == "video")
        assert f"{video['width']}x{video['height']}" == size
    master = ffprobe_json(f"http://127.0.0.1:{k.ports.llhls}/mux/abr/abr.m3u8")["streams"]
    assert {f"{s['width']}x{s['height']}" for s in master if s["codec_type"] == "video"} == set(found)
    assert any(s["codec_type"] == "audio" for s in master)  # the audio rendition both variants share
    stream = k.api.get("/v1/vhosts/default/apps/mux/streams/abr").json()["response"]
    assert stream["input"]["sourceType"] == "Multiplex" and "sourceUrl" not in stream["input"]
    names = sorted(t.get("name", "") for t in stream["input"]["tracks"] if t["type"] != "Data")
    assert names == ["big_video", "small_audio", "small_video"]
    k.wait_for(lambda: k.api.get("/v1/vhosts/default/apps/mux/streams/dup").json()["statusCode"] == 200,
               what="the file's channel duplicating a stream into the mux app")

    k.kill9()
    for peer in peers:
        peer.stop()
    k.start()
    assert sorted(k.api.get(MUX).json()["response"]) == ["abr", "dup"]
    assert channel(k, "abr")["state"] == "Pulling"  # its sources were lost with the server
    peers = publish(k, media, peer_dir)
    k.wait_for(lambda: k.api.get("/v1/vhosts/default/apps/mux/streams/abr").json()["statusCode"] == 200,
               timeout=30, what="the channel's stream after the restart")
    assert set(k.wait_for(lambda: len(v := variants(k)) == 2 and v, timeout=30, what="variants again")) == {
        "320x180", "640x360"}

    streams_abr = "/v1/vhosts/default/apps/mux/streams/abr"
    created = k.api.get(streams_abr).json()["response"]["input"]["createdTime"]
    assert k.api.delete(streams_abr).json() == {"message": "OK", "statusCode": 200}
    k.wait_for(lambda: (r := k.api.get(streams_abr).json()).get("statusCode") == 200
               and r["response"]["input"]["createdTime"] != created, what="the channel's stream made again")

    peers[1].stop()  # a source goes away: the channel's stream ends, and the channel waits for it again
    k.wait_for(lambda: channel(k, "abr")["state"] == "Pulling", what="the channel waiting for its source")
    k.wait_for(lambda: k.api.get("/v1/vhosts/default/apps/mux/streams/abr").json()["statusCode"] == 404,
               what="the channel's stream ended")

    assert k.api.delete(f"{MUX}/abr").json() == {"message": "OK", "statusCode": 200}
    assert not (workdir / "mux_files" / "abr.mux").exists()
    assert k.api.get(MUX).json()["response"] == ["dup"]
    for peer in peers:
        peer.stop()

    # MuxFilesDir is watched while Kiln runs, as OME's: a new file is a channel, a changed one replaces it, a
    # deleted one removes it
    late = workdir / "mux_files" / "late.mux"
    late.write_text(DUP.replace("<Name>dup</Name>", "<Name>late</Name>"))
    k.wait_for(lambda: sorted(k.api.get(MUX).json()["response"]) == ["dup", "late"], what="the new file's channel")
    late.write_text(DUP.replace("<Name>dup</Name>", "<Name>late</Name>").replace(">video<", ">picture<"))
    k.wait_for(lambda: channel(k, "late")["sourceStreams"][0]["trackMap"][1]["newTrackName"] == "picture",
               what="the changed file's channel")
    late.unlink()
    k.wait_for(lambda: k.api.get(MUX).json()["response"] == ["dup"], what="the deleted file's channel gone")
    assert k.api.get(f"{MUX}/late").json()["statusCode"] == 404


def test_an_app_that_gets_the_provider_loads_the_files_and_keeps_its_channels_without_it(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> None:
    k = kiln_factory()
    assert k.api.post("/v1/vhosts", json=[{"name": "sv", "host": {"names": ["sv.test"]}}]).status_code == 200
    app = {"name": "tv", "type": "live", "providers": {"rtmp": {}},
           "publishers": {"llhls": {"chunkDuration": 0.5, "segmentDuration": 1}}}
    assert k.api.post("/v1/vhosts/sv/apps", json=[app]).json()[0]["statusCode"] == 200
    channels = "/v1/vhosts/sv/apps/tv/multiplexChannels"
    assert k.api.get(channels).json()["statusCode"] == 404
    files = tmp_path / "mux"
    files.mkdir()
    (files / "dup.mux").write_text(DUP)

    provider = {"providers": {"multiplex": {"muxFilesDir": str(files)}}}
    assert k.api.patch("/v1/vhosts/sv/apps/tv", json=provider).status_code == 200
    k.wait_for(lambda: k.api.get(channels).json().get("response") == ["dup"], what="the file loaded")
    assert k.api.post(channels, json=ABR).status_code == 201
    assert (files / "abr.mux").exists()

    assert k.api.patch("/v1/vhosts/sv/apps/tv", json={"providers": {"multiplex": None}}).status_code == 200
    assert k.api.get(channels).json()["statusCode"] == 404
    assert k.api.post(channels, json={**ABR, "outputStream": {"name": "x"}}).status_code == 403
    assert k.api.patch("/v1/vhosts/sv/apps/tv", json=provider).status_code == 200
    assert sorted(k.api.get(channels).json()["response"]) == ["abr", "dup"]
    k.wait_for(lambda: k.api.get(f"{channels}/abr").json()["response"]["state"] == "Pulling",
               what="the channel waiting for its sources again")


LOOP_APP = """
        <Application>
          <Name>loop</Name>
          <Type>live</Type>
          <OutputProfiles><OutputProfile><Name>bypass</Name><OutputStreamName>${{OriginStreamName}}</OutputStreamName>
            <Encodes><Video><Name>bypass_video</Name><Bypass>true</Bypass></Video>
              <Audio><Name>bypass_audio</Name><Bypass>true</Bypass></Audio></Encodes>
          </OutputProfile></OutputProfiles>
          <Providers><Multiplex><MuxFilesDir>mux_files</MuxFilesDir></Multiplex>
            <Schedule><MediaRootDir>{media}</MediaRootDir><ScheduleFilesDir>schedules</ScheduleFilesDir></Schedule>
          </Providers>
        </Application>"""


def test_a_scheduled_and_a_multiplex_channel_taking_each_other_never_close_the_loop(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> None:
    """Scheduled ``a`` plays multiplex ``m`` while ``m`` takes ``a``: ``m`` plays ``a``'s fallback and ``a`` stays on
    it (playing ``m`` would replay its own last GOP for ever), saying why; a multiplex taking itself waits, saying
    why in its pulling message."""
    media = tmp_path / "media"
    media.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=red:s=160x90:r=20", "-f", "lavfi",
                    "-i", "sine=f=440:r=48000", "-t", "2", "-c:v", "libx264", "-g", "10", "-bf", "0", "-pix_fmt",
                    "yuv420p", "-c:a", "aac", "-b:a", "32k", str(media / "red.mp4")], check=True, timeout=30)
    k = kiln_factory(extra_apps=LOOP_APP.format(media=media))
    app = "/v1/vhosts/default/apps/loop"
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
    schedule = {"stream": {"name": "a"}, "fallbackProgram": {"items": [{"url": "file://red.mp4"}]},
                "programs": [{"name": "show", "scheduled": now, "repeat": True, "items": [
                    {"url": "stream://default/loop/m", "duration": -1}]}]}
    assert k.api.post(f"{app}/scheduledChannels", json=schedule).json()["statusCode"] == 201
    mux = {"outputStream": {"name": "m"}, "sourceStreams": [{"name": "a", "url": "stream://default/loop/a",
                                                             "trackMap": [
        {"sourceTrackName": "bypass_video", "newTrackName": "video"},
        {"sourceTrackName": "bypass_audio", "newTrackName": "audio"}]}]}
    assert k.api.post(f"{app}/multiplexChannels", json=mux).json()["statusCode"] == 201

    def a_plays() -> str:
        return str(k.api.get(f"{app}/scheduledChannels/a").json()["response"]["currentProgram"].get("name"))

    k.wait_for(lambda: k.api.get(f"{app}/multiplexChannels/m").json()["response"]["state"] == "Playing",
               what="m playing a")
    k.wait_for_log("schedule item plays a channel that plays this one where=default/loop stream=a "
                   "url=stream://default/loop/m loop=default/loop/a -> default/loop/m -> default/loop/a")
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:  # a's program is on air all along: its item counts as failing
        assert a_plays() == "fallback"
        assert k.api.get(f"{app}/multiplexChannels/m").json()["response"]["state"] == "Playing"
        time.sleep(0.1)

    itself = {"outputStream": {"name": "self"}, "sourceStreams": [{"name": "me", "url": "stream://default/loop/self",
                                                                   "trackMap": [
        {"sourceTrackName": "video", "newTrackName": "video"}]}]}
    assert k.api.post(f"{app}/multiplexChannels", json=itself).json()["statusCode"] == 201
    k.wait_for(lambda: k.api.get(f"{app}/multiplexChannels/self").json()["response"].get("pullingMessage") == (
        "Multiplex Channel : #default#loop/self: Failed to mirror stream stream://default/loop/self (a loop back to "
        "this channel: default/loop/self -> default/loop/self)"), what="self naming its loop")
    assert k.api.get(f"{app}/multiplexChannels/self").json()["response"]["state"] == "Pulling"

"""Scheduled channels: files played as a live channel by a schedule, made through OME's API, kept across kill -9."""

from __future__ import annotations

import datetime
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.kiln_process import KilnProcess

pytestmark = pytest.mark.e2e

TV = "/v1/vhosts/default/apps/tv/scheduledChannels"
TV_APP = """
        <Application>
          <Name>tv</Name>
          <Type>live</Type>
          <OutputProfiles><OutputProfile><Name>bypass</Name><OutputStreamName>${{OriginStreamName}}</OutputStreamName>
            <Encodes><Video><Bypass>true</Bypass></Video><Audio><Bypass>true</Bypass></Audio></Encodes>
          </OutputProfile></OutputProfiles>
          <Providers><Schedule><MediaRootDir>{media}</MediaRootDir><ScheduleFilesDir>schedules</ScheduleFilesDir></Schedule>
          </Providers>
          <Publishers><LLHLS><ChunkDuration>0.5</ChunkDuration><SegmentDuration>1</SegmentDuration></LLHLS></Publishers>
        </Application>"""
PRESET = """<?xml version="1.0"?>
<Schedule><Stream><Name>preset</Name></Stream><FallbackProgram><Item url="file://red.mp4"/></FallbackProgram></Schedule>
"""


def make_item(path: Path, colour: str, tone: int, size: str = "160x90") -> None:
    """Two seconds of one colour and one tone, a keyframe every half second."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"color={colour}:s={size}:r=20",
                    "-f", "lavfi", "-i", f"sine=f={tone}:r=48000", "-t", "2", "-c:v", "libx264", "-g", "10",
                    "-bf", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k", str(path)],
                   check=True, timeout=30)


def watch(url: str, seconds: int) -> list[tuple[float, str]]:
    """(pts in s, 'red' or 'blue') of every frame a player decodes from ``url`` for ``seconds`` of media."""
    out = subprocess.run(["ffmpeg", "-v", "info", "-copyts", "-i", url, "-frames:v", str(seconds * 20), "-an",
                          "-vf", "scale=1:1,showinfo", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, timeout=30, check=True)
    pts = [float(t) for t in re.findall(rb"pts_time:\s*([-0-9.]+)", out.stderr)]
    pixels = [out.stdout[i:i + 3] for i in range(0, len(out.stdout), 3)]
    assert len(pts) >= len(pixels) > 0  # showinfo may see a frame or two the output stops before
    return [(t, "red" if px[0] > px[2] else "blue") for t, px in zip(pts, pixels, strict=False)]


def test_a_channel_made_through_the_api_plays_its_items_in_turn_and_survives_kill9(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_item(media / "red.mp4", "red", 440)
    make_item(media / "blue.mp4", "blue", 880, "192x108")  # another size: players must still see it
    workdir = tmp_path / "kiln"
    (workdir / "schedules").mkdir(parents=True)
    (workdir / "schedules" / "preset.sch").write_text(PRESET)  # there before the start: loaded as OME does
    k = kiln_factory(workdir=workdir, extra_apps=TV_APP.format(media=media))

    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
    body = {"stream": {"name": "ch"}, "programs": [{"name": "show", "scheduled": now, "repeat": True, "items": [
        {"url": "file://red.mp4"}, {"url": "file://blue.mp4"}]}]}
    assert k.api.post(TV, json=body).json() == {"message": "Created", "statusCode": 201}
    assert k.api.post(TV, json=body).json() == {"message": "[HTTP] Stream 'ch' already exists (409)",
                                                "statusCode": 409}
    no_provider = k.api.post("/v1/vhosts/default/apps/app/scheduledChannels", json=body)
    assert (no_provider.status_code, no_provider.json()["message"]) == (403, "Forbidden")
    live_item = {"stream": {"name": "x"}, "fallbackProgram": {"items": [{"url": "stream://default/cam"}]}}
    refused = k.api.post(TV, json=live_item).json()
    assert refused["statusCode"] == 400 and "stream://{vhost}/{app}/{stream}" in refused["message"]
    assert k.api.get(f"{TV}/nope").json()["statusCode"] == 404
    assert sorted(k.api.get(TV).json()["response"]) == ["ch", "preset"]
    sch = (workdir / "schedules" / "ch.sch").read_text()
    assert '<Item url="file://blue.mp4" start="0" duration="-1" />' in sch and "<Name>ch</Name>" in sch

    current = k.wait_for(lambda: (c := k.api.get(f"{TV}/ch").json()["response"]["currentProgram"])["state"] == "onair"
                         and c, what="the channel on air")
    assert current["name"] == "show" and current["currentItem"]["url"] in ("file://red.mp4", "file://blue.mp4")
    url = f"http://127.0.0.1:{k.ports.llhls}/tv/ch/llhls.m3u8"
    k.wait_for(lambda: subprocess.run(["curl", "-sf", url], capture_output=True).returncode == 0, what="playlist")
    frames = watch(url, 6)
    times = [t for t, _ in frames]
    assert times == sorted(times) and len(set(times)) == len(times), "timestamps go forward across items"
    colours = [c for _, c in frames]
    changes = [i for i in range(1, len(colours)) if colours[i] != colours[i - 1]]
    assert {"red", "blue"} <= set(colours) and len(changes) >= 2, colours  # red, blue, red again
    gaps = [times[i] - times[i - 1] for i in changes]
    assert max(gaps) < 0.2, f"an item starts where the last ended: {gaps}"  # 20 fps: 0.05 s a frame

    k.kill9()
    k.start()
    assert sorted(k.api.get(TV).json()["response"]) == ["ch", "preset"]
    k.wait_for(lambda: k.api.get("/v1/vhosts/default/apps/tv/streams/ch").json()["statusCode"] == 200,
               what="the channel's stream after the restart")
    # and players get it: the channel resumed as the actor tree started, before the LL-HLS publisher was
    # attached to the loop, and what that publisher was told then was dropped (404 for the stream's whole life)
    k.wait_for(lambda: subprocess.run(["curl", "-sf", url], capture_output=True).returncode == 0, timeout=30,
               what="the channel's playlist after the restart")
    assert k.api.get(f"{TV}/ch").json()["response"]["programs"][0]["name"] == "show"

    assert k.api.delete(f"{TV}/ch").json() == {"message": "OK", "statusCode": 200}
    assert not (workdir / "schedules" / "ch.sch").exists()
    assert k.api.get(TV).json()["response"] == ["preset"]
    k.wait_for(lambda: k.api.get("/v1/vhosts/default/apps/tv/streams/ch").json()["statusCode"] == 404,
               what="the deleted channel's stream gone")


BYPASS = {"outputProfile": [{"name": "bypass", "outputStreamName": "${OriginStreamName}", "encodes": {
    "videos": [{"name": "v", "bypass": True}], "audios": [{"name": "a", "bypass": True}]}}]}


def test_patch_replaces_what_plays_and_an_app_change_brings_the_channel_back(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_item(media / "red.mp4", "red", 440)
    make_item(media / "blue.mp4", "blue", 880)
    k = kiln_factory()
    assert k.api.post("/v1/vhosts", json=[{"name": "sv", "host": {"names": ["sv.test"]}}]).status_code == 200
    app = {"name": "tv", "type": "live", "providers": {"rtmp": {}}, "outputProfiles": BYPASS,
           "publishers": {"llhls": {"chunkDuration": 0.5, "segmentDuration": 1}}}
    assert k.api.post("/v1/vhosts/sv/apps", json=[app]).json()[0]["statusCode"] == 200
    channels = "/v1/vhosts/sv/apps/tv/scheduledChannels"
    body = {"stream": {"name": "ch"}, "fallbackProgram": {"items": [{"url": "file://red.mp4"}]}}
    assert k.api.post(channels, json=body).status_code == 403

    files = tmp_path / "schedules"
    schedule = {"mediaRootDir": str(media), "scheduleFilesDir": str(files)}
    assert k.api.patch("/v1/vhosts/sv/apps/tv", json={"providers": {"schedule": schedule}}).status_code == 200
    assert k.api.post(channels, json=body).status_code == 201

    def playing() -> str | None:
        current = k.api.get(f"{channels}/ch").json()["response"]["currentProgram"]
        return current["currentItem"]["url"] if current["state"] == "onair" else None

    assert k.wait_for(playing, what="the fallback on air") == "file://red.mp4"
    assert k.api.get(f"{channels}/ch").json()["response"]["currentProgram"]["name"] == "fallback"
    patch = {"fallbackProgram": {"items": [{"url": "file://blue.mp4"}]}}
    assert k.api.patch(f"{channels}/ch", json=patch).json() == {"message": "Created", "statusCode": 201}
    k.wait_for(lambda: playing() == "file://blue.mp4", what="the patched fallback on air")
    assert 'url="file://blue.mp4"' in (files / "ch.sch").read_text()
    refused = k.api.patch(f"{channels}/ch", json={"stream": {"name": "ch"}}).json()
    assert refused == {"message": "[HTTP] Stream object could not be patched (400)", "statusCode": 400}

    stream = "/v1/vhosts/sv/apps/tv/streams/ch"
    created = k.api.get(stream).json()["response"]["input"]["createdTime"]
    assert k.api.patch("/v1/vhosts/sv/apps/tv", json={"publishers": {"llhls": {"chunkDuration": 0.4}}}).status_code \
        == 200
    k.wait_for(lambda: (r := k.api.get(stream).json()).get("statusCode") == 200
               and r["response"]["input"]["createdTime"] != created, what="the channel's stream in the new app")
    k.wait_for(lambda: playing() == "file://blue.mp4", what="the channel on air again")

    # without the provider the channel stays defined but cannot play; with it back, it plays again
    assert k.api.patch("/v1/vhosts/sv/apps/tv", json={"providers": {"schedule": None}}).status_code == 200
    k.wait_for(lambda: k.api.get(stream).json()["statusCode"] == 404, what="the channel's stream gone")
    assert k.api.get(channels).json()["response"] == ["ch"]
    assert k.api.patch("/v1/vhosts/sv/apps/tv", json={"providers": {"schedule": schedule}}).status_code == 200
    k.wait_for(lambda: playing() == "file://blue.mp4", what="the channel on air with its provider back")


def test_a_file_written_changed_and_deleted_while_kiln_runs_adds_updates_and_removes_its_channel(
        kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> None:
    """OME follows ScheduleFilesDir: a ``.sch`` file written there makes a channel, a change updates it, a
    deletion removes it. Kiln's own API writes land in the same directory and change nothing more."""
    media = tmp_path / "media"
    media.mkdir()
    make_item(media / "red.mp4", "red", 440)
    make_item(media / "blue.mp4", "blue", 880)
    workdir = tmp_path / "kiln"
    files = workdir / "schedules"
    k = kiln_factory(workdir=workdir, extra_apps=TV_APP.format(media=media))
    assert k.api.get(TV).json()["response"] == []

    def playing(name: str) -> str | None:
        answer = k.api.get(f"{TV}/{name}").json()
        current = answer["response"]["currentProgram"] if answer["statusCode"] == 200 else {"state": "absent"}
        return current["currentItem"]["url"] if current["state"] == "onair" else None

    files.mkdir(exist_ok=True)
    (files / "desk.sch").write_text(PRESET)  # <Name>preset</Name> inside: the file's name names the stream
    assert k.wait_for(lambda: playing("desk"), what="the channel of the file written") == "file://red.mp4"
    k.wait_for(lambda: subprocess.run(["curl", "-sf", f"http://127.0.0.1:{k.ports.llhls}/tv/desk/llhls.m3u8"],
                                      capture_output=True).returncode == 0, what="its playlist")

    # changed: a program on air now, whose second item cannot play (OME's fallbackOnErr, true by default)
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
    program = f'<Program name="show" scheduled="{now}" repeat="true"><Item url="file://blue.mp4"/>' \
              '<Item url="file://missing.mp4"/></Program></Schedule>'
    (files / "desk.sch").write_text(PRESET.replace("</Schedule>", program))
    k.wait_for(lambda: playing("desk") == "file://blue.mp4", what="the changed file followed")
    k.wait_for(lambda: playing("desk") == "file://red.mp4", what="the fallback in the missing item's place")
    assert k.api.get(f"{TV}/desk").json()["response"]["currentProgram"]["name"] == "fallback"

    body = {"stream": {"name": "api"}, "programs": [{"name": "show", "scheduled": now, "repeat": True,
                                                     "items": [{"url": "file://red.mp4"}]}]}
    assert k.api.post(TV, json=body).status_code == 201
    assert (files / "api.sch").exists()

    (files / "desk.sch").unlink()
    k.wait_for(lambda: k.api.get(TV).json()["response"] == ["api"], what="the deleted file's channel removed")
    k.wait_for(lambda: k.api.get("/v1/vhosts/default/apps/tv/streams/desk").json()["statusCode"] == 404,
               what="its stream gone")
    records = k.api.get("/v1/journal", params={"entity": "schedule:default/tv/", "limit": 100}).json()["response"]
    kinds = [(r["entity"].rsplit("/", 1)[1], r["type"]) for r in records["records"]]
    # the watcher saw the API's own file at least once by now (three looks of the deletion): not journaled again
    assert kinds.count(("api", "ScheduleDefined")) == 1, kinds
    assert kinds.count(("desk", "ScheduleDefined")) == 2 and ("desk", "ScheduleRemoved") in kinds, kinds

    k.kill9()
    k.start()
    assert k.api.get(TV).json()["response"] == ["api"]  # the deletion was journaled like any other
    assert not (files / "desk.sch").exists()

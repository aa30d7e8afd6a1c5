"""A VP8 WebRTC input (aiortc publisher without H.264) pushed over RTMP and recorded to MP4: neither can carry
VP8, and each says so where a user looks (issue 13 item 5): a warning log line, and the task's
``lastWarning`` while the rest goes (or ``lastError`` when nothing can)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.webrtc.ingest_kiln import Publisher, ingest_server_xml, input_tracks
from tests.e2e.webrtc.play_kiln import RtcPorts
from tests.peers.ffmpeg import ffprobe_json
from tests.peers.nginx_rtmp import NginxRtmp

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"


def _task(kiln: KilnProcess, kind: str, task_id: str) -> dict[str, Any]:
    found = [t for t in kiln.api.post(f"{APP}:{kind}").json()["response"] if t["id"] == task_id]
    return found[0] if found else {}


def test_vp8_input_push_and_record_say_the_video_cannot_go(kiln_factory: Callable[..., KilnProcess],
                                                           nginx_rtmp: NginxRtmp, tmp_path: Path) -> None:
    ports = RtcPorts()
    xml = ingest_server_xml(ports, records=str(tmp_path / "records"))
    kiln = kiln_factory(xml.replace("<WebRTC/><FILE>", "<WebRTC/><RTMPPush/><FILE>"), ports)
    publisher = Publisher(codec="vp8")
    try:
        assert publisher.whip(f"http://127.0.0.1:{kiln.ports.llhls}/app/v8?direction=whip").status_code == 201
        tracks = kiln.wait_for(input_tracks(kiln, "v8"), 30, "the VP8 stream")
        assert tracks["Video"]["video"]["codec"] == "VP8"

        # RTMP: the AAC encode goes, the VP8 video is named as left out
        start = kiln.api.post(f"{APP}:startPush", json={"id": "p1", "stream": {"name": "v8"}, "protocol": "rtmp",
                                                        "url": f"rtmp://127.0.0.1:{nginx_rtmp.port}/live",
                                                        "streamKey": "v8"})
        assert start.status_code == 200, start.text
        pushing = kiln.wait_for(lambda: (t := _task(kiln, "pushes", "p1")).get("state") == "pushing" and t, 30,
                                "push pushing")
        assert re.search(r"is VP8, which rtmp cannot carry", pushing.get("lastWarning", "")), pushing
        assert "lastError" not in pushing

        # nothing this protocol can carry: an error that says why, not a silent empty push
        only_video = kiln.api.post(f"{APP}:startPush", json={
            "id": "p2", "stream": {"name": "v8", "variantNames": ["bypass_video"]}, "protocol": "rtmp",
            "url": f"rtmp://127.0.0.1:{nginx_rtmp.port}/live", "streamKey": "v8video"})
        assert only_video.status_code == 200, only_video.text
        failed = kiln.wait_for(lambda: (t := _task(kiln, "pushes", "p2")).get("state") == "error" and t, 30,
                               "push error")
        assert "VP8, which rtmp cannot carry" in failed.get("lastError", ""), failed

        # MP4 recording: the AAC encode is stored, VP8 and Opus are named as left out
        rec = kiln.api.post(f"{APP}:startRecord", json={"id": "r1", "stream": {"name": "v8"},
                                                        "filePath": "v8/${Id}.mp4"})
        assert rec.status_code == 200, rec.text
        recording = kiln.wait_for(lambda: (t := _task(kiln, "records", "r1")).get("state") == "recording" and t,
                                  30, "recording")
        assert "VP8) cannot be stored in mp4" in recording.get("lastWarning", ""), recording

        log = kiln.wait_for_log("record track skipped", "push track skipped", timeout=20)
        assert re.search(r"WARNING .*push track skipped .*id=p1 stream=v8 reason=track \d+ \(bypass_video\) is VP8",
                         log), log[-3000:]
        assert re.search(r"WARNING .*record track skipped .*id=r1 stream=v8 reason=.*VP8\) cannot be stored in mp4",
                         log), log[-3000:]

        kiln.wait_for(lambda: _task(kiln, "records", "r1").get("recordBytes", 0) > 4000, 30, "bytes recorded")
        assert kiln.api.post(f"{APP}:stopRecord", json={"id": "r1"}).status_code == 200
        assert kiln.api.post(f"{APP}:stopPush", json={"id": "p1"}).status_code == 200
        stored = tmp_path / "records" / "v8" / "r1.mp4"
        kiln.wait_for(stored.exists, 30, "the recording file")
        probe = ffprobe_json(stored, timeout=30)
        assert {s["codec_type"]: s["codec_name"] for s in probe["streams"]} == {"audio": "aac"}
        pushed = ffprobe_json(nginx_rtmp.wait_recorded("v8", min_bytes=4000), timeout=30)
        assert {s["codec_type"]: s["codec_name"] for s in pushed["streams"]} == {"audio": "aac"}
    finally:
        publisher.close()

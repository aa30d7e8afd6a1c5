"""Recording as a user checks it: files that ffprobe reads, interval splits, the info XML, stop."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.ffmpeg import ffprobe_json, publish_rtmp
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"


@pytest.fixture
def source(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> Iterator[Peer]:
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/rec", test_flv, loop=True, log_dir=peer_dir)
    kiln.wait_for(lambda: "rec" in kiln.api.get(f"{APP}/streams").json()["response"], what="source stream")
    yield pub
    pub.stop()


def record(kiln: KilnProcess, task_id: str) -> dict[str, Any]:
    found = [p for p in kiln.api.post(f"{APP}:records").json()["response"] if p["id"] == task_id]
    return found[0] if found else {}


def test_record_mp4_with_interval_splits_and_info(kiln: KilnProcess, source: Peer) -> None:
    out = kiln.workdir / "records" / "out"  # the app's <FILE><RootPath>; paths are joined to it as in OME
    r = kiln.api.post(f"{APP}:startRecord", json={
        "id": "r1", "stream": {"name": "rec"}, "interval": 2000, "metadata": "match 7",
        "filePath": "out/${Id}_${Sequence}.mp4", "infoPath": "out/${Id}.xml"})
    assert r.status_code == 200, r.text
    task = kiln.wait_for(lambda: (t := record(kiln, "r1")).get("state") == "recording" and t, what="recording")
    assert (task["outputFilePath"], task["outputInfoPath"]) == ("out/r1_0.mp4", "out/r1.xml")
    kiln.wait_for(lambda: len(list(out.glob("r1_*.mp4"))) >= 2, timeout=30, what="two split files")
    stopped = kiln.api.post(f"{APP}:stopRecord", json={"id": "r1"})
    assert stopped.status_code == 200 and stopped.json()["response"]["state"] == "stopping"
    kiln.wait_for(lambda: record(kiln, "r1") == {}, what="task removed")
    files = sorted(out.glob("r1_*.mp4"), key=lambda p: int(p.stem.split("_")[1]))
    assert len(files) >= 3 and not list(out.glob("tmp_*"))
    for path in files[:-1]:  # the last file is cut by stopRecord and may hold a single frame
        probe = ffprobe_json(path, timeout=30)
        assert {s["codec_type"]: s["codec_name"] for s in probe["streams"]} == {"video": "h264", "audio": "aac"}
        assert probe["format"]["format_name"].startswith("mov")
    for path in files[:2]:
        assert 1.9 <= float(ffprobe_json(path)["format"]["duration"]) <= 2.2, path
    info = ElementTree.parse(out / "r1.xml").getroot()
    entries = info.findall("file")
    assert len(entries) == len(files)
    assert [e.findtext("sequence") for e in entries] == [str(i) for i in range(len(files))]
    assert entries[0].findtext("metadata") == "match 7" and entries[-1].findtext("lastSequence") == "true"
    assert entries[0].findtext("filePath").strip() == str(files[0])


def test_record_ts_starts_a_new_file_when_the_source_returns(kiln: KilnProcess, test_flv: Path,
                                                             peer_dir: Path) -> None:
    out = kiln.workdir / "records" / "ts"
    r = kiln.api.post(f"{APP}:startRecord", json={"id": "r2", "stream": {"name": "again"},
                                                  "filePath": "ts/${Sequence}.ts"})
    assert r.status_code == 200 and r.json()["response"]["state"] == "ready"
    for _ in range(2):
        pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/again", test_flv, log_dir=peer_dir)
        kiln.wait_for(lambda: record(kiln, "r2").get("state") == "recording", what="recording")
        pub.wait(30)
        kiln.wait_for(lambda: record(kiln, "r2").get("state") == "ready", what="ready after source ended")
    files = sorted(out.glob("*.ts"))
    assert [p.name for p in files] == ["0.ts", "1.ts"]
    for path in files:
        probe = ffprobe_json(path, timeout=30)
        assert probe["format"]["format_name"] == "mpegts" and float(probe["format"]["duration"]) >= 2


def _first_video_frame_is_key(path: Path) -> bool:
    import subprocess

    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=key_frame",
                          "-read_intervals", "%+#1", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, timeout=30).stdout.split()
    return bool(out) and out[0].split(",")[0] == "1"


def test_interval_files_start_on_keyframes_and_variants_are_honoured(kiln: KilnProcess, source: Peer) -> None:
    out = kiln.workdir / "records" / "kv"
    r = kiln.api.post(f"{APP}:startRecord", json={
        "id": "v1", "stream": {"name": "rec", "variantNames": ["bypass_video"]}, "interval": 2000,
        "filePath": "kv/${Sequence}.mp4"})
    assert r.status_code == 200, r.text
    kiln.wait_for(lambda: len(list(out.glob("*.mp4"))) >= 3, timeout=30, what="three files")
    kiln.api.post(f"{APP}:stopRecord", json={"id": "v1"})
    kiln.wait_for(lambda: record(kiln, "v1") == {}, what="task removed")
    for path in sorted(out.glob("*.mp4"))[:3]:
        probe = ffprobe_json(path)
        assert [s["codec_type"] for s in probe["streams"]] == ["video"], path
        assert _first_video_frame_is_key(path), path
        assert 1.9 <= float(probe["format"]["duration"]) <= 2.2, (path, probe["format"]["duration"])


def test_schedule_splits_on_three_second_wall_clock_boundaries(kiln: KilnProcess, source: Peer) -> None:
    out = kiln.workdir / "records" / "sched"
    r = kiln.api.post(f"{APP}:startRecord", json={
        "id": "s1", "stream": {"name": "rec"}, "schedule": "*/3 * *",
        "filePath": "sched/${Sequence}_${StartTime:hhmmss}_${EndTime:hhmmss}.ts"})
    assert r.status_code == 200, r.text
    kiln.wait_for(lambda: len(list(out.glob("*.ts"))) >= 3, timeout=30, what="three scheduled files")
    kiln.api.post(f"{APP}:stopRecord", json={"id": "s1"})
    files = sorted(out.glob("*.ts"), key=lambda p: int(p.name.split("_")[0]))
    for path in files[1:3]:  # the first file starts whenever the task started
        start, end = path.stem.split("_")[1:]
        assert int(start[-2:]) % 3 <= 1, path.name  # next keyframe after the boundary: within one GOP (1 s)
        assert ffprobe_json(path)["format"]["format_name"] == "mpegts"


def test_kill9_mid_recording_leaves_a_playable_file_listed_in_info(kiln: KilnProcess, source: Peer,
                                                                  test_flv: Path, peer_dir: Path) -> None:
    out = kiln.workdir / "records" / "crash"
    r = kiln.api.post(f"{APP}:startRecord", json={"id": "c1", "stream": {"name": "rec"},
                                                  "filePath": "crash/${Id}.mp4", "infoPath": "crash/${Id}.xml"})
    assert r.status_code == 200
    kiln.wait_for(lambda: record(kiln, "c1").get("recordTime", 0) >= 4000, timeout=30, what="4 s recorded")
    kiln.kill9()
    kiln.start()
    path = out / "c1.mp4"
    assert path.exists()
    duration = float(ffprobe_json(path)["format"]["duration"])
    assert duration >= 3.4, duration
    info = ElementTree.parse(out / "c1.xml").getroot()
    assert [e.findtext("filePath").strip() for e in info.findall("file")] == [str(path)]
    import io
    import json

    from kiln.journal.cli import run

    text = io.StringIO()
    run(["show", "-d", str(kiln.data_dir), "--type", "RecordFileFinished", "--json"], text)
    finished = [json.loads(line)["payload"] for line in text.getvalue().splitlines()]
    assert finished and finished[-1]["recovered"] is True and finished[-1]["id"] == "c1"
    # the task resumes into the next sequence when its stream comes back
    assert record(kiln, "c1")["state"] == "ready"
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/rec", test_flv, loop=True, log_dir=peer_dir)
    try:
        task = kiln.wait_for(lambda: (t := record(kiln, "c1")).get("state") == "recording" and t, what="resumed")
        assert task["sequence"] == 1
    finally:
        pub.stop()


def test_unwritable_path_is_an_error_with_a_reason(kiln: KilnProcess, source: Peer) -> None:
    blocker = kiln.workdir / "records" / "blocked"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where a directory should be")
    r = kiln.api.post(f"{APP}:startRecord", json={"id": "e1", "stream": {"name": "rec"},
                                                  "filePath": "blocked/x/${Id}.mp4"})
    assert r.status_code == 200
    task = kiln.wait_for(lambda: (t := record(kiln, "e1")).get("state") == "error" and t, what="state error")
    assert task["lastError"]
    ok = kiln.api.post(f"{APP}:startRecord", json={"id": "e2", "stream": {"name": "rec"}, "filePath": "fine/${Id}.ts"})
    assert ok.status_code == 200
    kiln.wait_for(lambda: record(kiln, "e2").get("state") == "recording", what="other task unaffected")
    assert "rec" in kiln.api.get(f"{APP}/streams").json()["response"]


OPUS_PROFILE = """
            <OutputProfile>
              <Name>opus</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes>
                <Video><Name>bypass_video</Name><Bypass>true</Bypass></Video>
                <Audio><Name>opus_audio</Name><Codec>opus</Codec><Bitrate>64000</Bitrate><Samplerate>48000</Samplerate>
                  <Channel>2</Channel></Audio>
              </Encodes>
            </OutputProfile>"""


def test_a_track_mp4_cannot_hold_is_named_in_the_task_and_the_log(kiln_factory: Callable[..., KilnProcess],
                                                                  test_flv: Path, peer_dir: Path) -> None:
    kiln = kiln_factory(profiles=OPUS_PROFILE)
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/op", test_flv, loop=True, log_dir=peer_dir)
    try:
        kiln.wait_for(lambda: "op" in kiln.api.get(f"{APP}/streams").json()["response"], what="source stream")
        r = kiln.api.post(f"{APP}:startRecord", json={"id": "o1", "stream": {"name": "op"},
                                                      "filePath": "opus/${Id}.mp4"})
        assert r.status_code == 200, r.text
        task = kiln.wait_for(lambda: (t := record(kiln, "o1")).get("state") == "recording" and t, what="recording")
        warning = task.get("lastWarning", "")
        assert re.fullmatch(r"track \d+ \(opus_audio, OPUS\) cannot be stored in mp4", warning), task
        assert "lastError" not in task
        # the task's warning (journal, projection) and the worker's log line are written on different threads
        kiln.wait_for_log("record track skipped")
        logged = [line for line in kiln.log_path.read_text().splitlines() if "record track skipped" in line]
        assert len(logged) == 1 and " WARNING " in logged[0], logged
        assert "id=o1 stream=op" in logged[0] and f"reason={warning}" in logged[0], logged
        stopped = kiln.api.post(f"{APP}:stopRecord", json={"id": "o1"}).json()["response"]
        assert stopped["state"] == "stopping" and stopped["lastWarning"] == warning
        kiln.wait_for(lambda: record(kiln, "o1") == {}, what="task removed")
        files = list((kiln.workdir / "records" / "opus").glob("o1.mp4"))
        assert len(files) == 1
        assert [s["codec_type"] for s in ffprobe_json(files[0], timeout=30)["streams"]] == ["video"]
        assert "hub dropped subscriber" not in kiln.log_path.read_text()  # stopRecord is not a drop
    finally:
        pub.stop()

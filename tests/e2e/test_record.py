"""Recording as a user checks it: files that ffprobe reads, interval splits, the info XML, stop."""

from __future__ import annotations

from collections.abc import Iterator
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
    kiln.wait_for(lambda: record(kiln, "r1").get("state") == "recording", what="recording")
    kiln.wait_for(lambda: len(list(out.glob("r1_*.mp4"))) >= 2, timeout=30, what="two split files")
    stopped = kiln.api.post(f"{APP}:stopRecord", json={"id": "r1"})
    assert stopped.status_code == 200 and stopped.json()["response"]["state"] == "stopping"
    kiln.wait_for(lambda: record(kiln, "r1") == {}, what="task removed")
    files = sorted(out.glob("r1_*.mp4"), key=lambda p: int(p.stem.split("_")[1]))
    assert len(files) >= 3 and not list(out.glob("tmp_*"))
    for path in files:
        probe = ffprobe_json(path, timeout=30)
        assert {s["codec_type"]: s["codec_name"] for s in probe["streams"]} == {"video": "h264", "audio": "aac"}
        assert probe["format"]["format_name"].startswith("mov")
    assert 1.5 <= float(ffprobe_json(files[0])["format"]["duration"]) <= 3.5
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

"""A record task's totals across kill -9 (issue 20 item 8): the file in flight is recovered and
counted (never below its last checkpoint), so a restart loses at most a few seconds and the totals
never go back while recording, across file splits too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"
LOST_AT_MOST_S = 4.0  # the checkpoint interval (2 s), half an interval of nudging, and slack


@pytest.fixture
def sources() -> Iterator[list[Peer]]:
    started: list[Peer] = []
    yield started
    for peer in started:
        peer.stop()


def record(kiln: KilnProcess) -> dict[str, Any]:
    found = [p for p in kiln.api.post(f"{APP}:records").json()["response"] if p["id"] == "t1"]
    assert found, "record t1 is gone"
    return found[0]


@pytest.mark.parametrize(("interval", "file_lost"), [(0, False), (3000, False), (0, True)])
def test_record_totals_survive_kill9(kiln: KilnProcess, test_flv: Path, peer_dir: Path, sources: list[Peer],
                                     interval: int, file_lost: bool) -> None:
    """``file_lost``: the file in flight is gone when Kiln restarts, so recovery cannot finish it;
    what it had recorded (as far as the last checkpoint) stays in the totals."""
    def publish() -> None:
        sources.append(publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/rec", test_flv, loop=True,
                                    log_dir=peer_dir))

    publish()
    kiln.wait_for(lambda: "rec" in kiln.api.get(f"{APP}/streams").json()["response"], what="source stream")
    r = kiln.api.post(f"{APP}:startRecord", json={"id": "t1", "stream": {"name": "rec"}, "interval": interval,
                                                  "filePath": "t/${Id}_${Sequence}.mp4"})
    assert r.status_code == 200, r.text
    seen: list[tuple[int, int]] = []

    def recorded_for(ms: int) -> bool:
        task = record(kiln)
        seen.append((task.get("totalRecordBytes", 0), task.get("totalRecordTime", 0)))
        return task.get("state") == "recording" and seen[-1][1] >= ms

    kiln.wait_for(lambda: recorded_for(7000), timeout=40, what="7 s recorded")
    assert [b for b, _ in seen] == sorted(b for b, _ in seen), "totalRecordBytes went back while recording"
    before_bytes, before_ms = seen[-1]

    kiln.kill9()
    if file_lost:
        in_flight = list((kiln.workdir / "records" / "t").glob("tmp_*"))
        assert len(in_flight) == 1, in_flight
        in_flight[0].unlink()
    kiln.start()
    assert record(kiln)["state"] == "ready"
    publish()
    seen.clear()
    kiln.wait_for(lambda: recorded_for(0), timeout=30, what="recording again")
    rate = before_bytes / (before_ms / 1000)  # bytes per second of this stream
    after_bytes, after_ms = seen[-1]
    assert after_bytes >= before_bytes - rate * LOST_AT_MOST_S, (after_bytes, before_bytes, rate)
    assert after_ms >= before_ms - LOST_AT_MOST_S * 1000, (after_ms, before_ms)
    kiln.wait_for(lambda: recorded_for(before_ms + 1000), timeout=40, what="past the totals before the crash")
    assert seen == sorted(seen) and seen[-1][0] > before_bytes, seen

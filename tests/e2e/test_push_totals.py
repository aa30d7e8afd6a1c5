"""A push's totals across kill -9 (issue 20 item 8): checkpointed every few seconds, so a restart
loses at most those seconds, and once the stream is back the totals go on from there."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.nginx_rtmp import NginxRtmp
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"
LOST_AT_MOST_S = 4.0  # the checkpoint interval (2 s), half an interval of nudging, and slack


def totals(kiln: KilnProcess) -> tuple[int, int, str]:
    found = [p for p in kiln.api.post(f"{APP}:pushes").json()["response"] if p["id"] == "n1"]
    assert found, "push n1 is gone"
    return found[0]["totalsentBytes"], found[0]["totalsentTime"], found[0]["state"]


@pytest.fixture
def sources() -> Iterator[list[Peer]]:
    started: list[Peer] = []
    yield started
    for peer in started:
        peer.stop()


def test_push_totals_survive_kill9(kiln_factory: Callable[..., KilnProcess], test_flv: Path, peer_dir: Path,
                                   nginx_rtmp: NginxRtmp, sources: list[Peer]) -> None:
    kiln = kiln_factory()

    def publish() -> None:
        sources.append(publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/src", test_flv, loop=True,
                                    log_dir=peer_dir))

    publish()
    r = kiln.api.post(f"{APP}:startPush", json={"id": "n1", "stream": {"name": "src"}, "protocol": "rtmp",
                                                "url": f"rtmp://127.0.0.1:{nginx_rtmp.port}/live", "streamKey": "k1"})
    assert r.status_code == 200, r.text
    nginx_rtmp.wait_publishing("k1")
    seen: list[tuple[int, int]] = []

    def pushed_for(ms: int) -> bool:
        sent_bytes, sent_ms, _ = totals(kiln)
        seen.append((sent_bytes, sent_ms))
        return sent_ms >= ms

    kiln.wait_for(lambda: pushed_for(7000), timeout=40, what="7 s pushed")
    assert seen == sorted(seen), "the totals went back while pushing"
    before_bytes, before_ms, _ = totals(kiln)
    rate = before_bytes / (before_ms / 1000)  # bytes per second of this stream

    kiln.kill9()  # the source's connection dies with it
    kiln.start()
    after_bytes, after_ms, state = totals(kiln)
    assert state == "ready"
    assert 0 <= before_bytes - after_bytes <= rate * LOST_AT_MOST_S, (before_bytes, after_bytes, rate)
    assert 0 <= before_ms - after_ms <= LOST_AT_MOST_S * 1000, (before_ms, after_ms)

    # the stream comes back: a new session counts on top, the totals never go below what was shown
    publish()
    kiln.wait_for(lambda: totals(kiln)[2] == "pushing", timeout=30, what="pushing again")
    seen.clear()
    kiln.wait_for(lambda: pushed_for(before_ms + 1000), timeout=40, what="past the totals before the crash")
    assert seen[0][0] >= after_bytes and seen == sorted(seen), seen
    assert totals(kiln)[0] > before_bytes

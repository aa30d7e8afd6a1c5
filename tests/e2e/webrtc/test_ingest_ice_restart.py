"""WHIP ICE restart (RFC 9725 §4.3.2) through a running Kiln: an aiortc publisher whose network path dies
mid-stream restarts ICE from a new socket with a PATCH; Kiln answers its new credentials, media resumes over
the new pair, and the stream never notices (same stream, LL-HLS parts keep coming, nothing journaled).
Headless Chromium restarts too (``pc.restartIce()``: its own ICE agent, new candidates)."""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.webrtc.ice_restart_client import TRICKLE, ice_connection, restart_ice
from tests.e2e.webrtc.ingest_kiln import Publisher, ingest_server_xml, input_tracks, stream_json
from tests.e2e.webrtc.play_kiln import RtcPorts
from tests.e2e.webrtc.test_ingest_whip import _journal, _probe
from tests.peers.browser import CHROMIUM, NODE, NODE_MODULES, _kill_processes_using, browser_available
from tests.peers.fixtures import require
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e


@pytest.fixture
def rtc_kiln(kiln_factory: Callable[..., KilnProcess]) -> KilnProcess:
    ports = RtcPorts()
    return kiln_factory(ingest_server_xml(ports, timeout_ms=10000), ports)


def _parts(base: str, name: str) -> list[str]:
    """The part URIs of the stream's first chunklist (empty while there is none)."""
    try:
        master = httpx.get(f"{base}/app/{name}/llhls.m3u8", timeout=10)
        if master.status_code != 200:
            return []
        child = next(line for line in master.text.splitlines() if line and not line.startswith("#"))
        chunklist = httpx.get(base + child if child.startswith("/") else f"{base}/app/{name}/{child}", timeout=10)
    except (httpx.HTTPError, StopIteration):
        return []
    return re.findall(r'#EXT-X-PART:.*URI="([^"]+)"', chunklist.text) if chunklist.status_code == 200 else []


def _bytes_in(kiln: KilnProcess, name: str) -> int:
    stats = kiln.api.get(f"/v1/stats/current/vhosts/default/apps/app/streams/{name}")
    return int(stats.json()["response"]["totalBytesIn"]) if stats.status_code == 200 else -1


def test_a_publisher_that_changes_network_restarts_ice_and_its_stream_goes_on(rtc_kiln: KilnProcess) -> None:
    base = f"http://127.0.0.1:{rtc_kiln.ports.llhls}"
    publisher = Publisher()
    try:
        created = publisher.whip(f"{base}/app/roam?direction=whip")
        assert created.status_code == 201, created.text
        resource = base + publisher.location
        rtc_kiln.wait_for(input_tracks(rtc_kiln, "roam"), 30, "described tracks")
        rtc_kiln.wait_for(lambda: len(_parts(base, "roam")) >= 2, 40, "LL-HLS parts")
        old_ufrag = re.search(r"a=ice-ufrag:(\S+)", created.text).group(1)  # type: ignore[union-attr]
        old_port = ice_connection(publisher.pc)._nominated[1].local_addr[1]

        # the publisher's path dies; it restarts ICE from a new socket
        moved = publisher.run(restart_ice(publisher.pc, resource, move=True))
        assert moved.status == 200, moved.answer
        assert moved.content_type.startswith(TRICKLE)
        assert moved.etag and moved.etag != created.headers["etag"]
        assert moved.server_ufrag != old_ufrag and "a=end-of-candidates" in moved.answer
        assert moved.local_port != old_port
        restarted = rtc_kiln.wait_for(lambda: re.search(r"webrtc ice restarted .*->\('127\.0\.0\.1', (\d+)\)",
                                                        rtc_kiln.log_path.read_text()), 20, "Kiln on the new pair")
        assert int(restarted.group(1)) == moved.local_port  # Kiln sends to the new socket
        # packets resume over the new pair (the old socket is closed) and LL-HLS keeps producing parts
        at_switch, parts_before = _bytes_in(rtc_kiln, "roam"), set(_parts(base, "roam"))
        rtc_kiln.wait_for(lambda: _bytes_in(rtc_kiln, "roam") > at_switch + 6_000, 30, "media after the restart")
        rtc_kiln.wait_for(lambda: len(set(_parts(base, "roam")) - parts_before) >= 4, 40, "new LL-HLS parts")
        assert rtc_kiln.wait_for(lambda: _probe(f"{base}/app/roam/llhls.m3u8"), 40, "LL-HLS readable")
        # a trickle naming the old ETag is refused; the stream is the same one
        stale = httpx.patch(resource, content="a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n",
                            headers={"Content-Type": TRICKLE, "If-Match": created.headers["etag"]}, timeout=30)
        assert stale.status_code == 412

        # a second restart, in place (same socket, new credentials): the pair changes generation again
        again = publisher.run(restart_ice(publisher.pc, resource, move=False))
        assert again.status == 200 and again.etag not in (moved.etag, created.headers["etag"])
        rtc_kiln.wait_for(lambda: rtc_kiln.log_path.read_text().count("webrtc ice restarted ") >= 2, 20,
                          "the second restart completed")
        at_second = _bytes_in(rtc_kiln, "roam")
        rtc_kiln.wait_for(lambda: _bytes_in(rtc_kiln, "roam") > at_second + 4_000, 30, "media after the second")
        assert stream_json(rtc_kiln, "roam") is not None
        assert [e["name"] for e in _journal(rtc_kiln, "StreamStarted")] == ["roam"]
        assert _journal(rtc_kiln, "StreamEnded") == []
        sys.stdout.write(f"\nice restart: new pair carrying media {moved.switched_after_s * 1000:.0f} ms after the "
                         f"PATCH (moved socket), {again.switched_after_s * 1000:.0f} ms (in place)\n")
        assert publisher.whip_delete(base).status_code == 200
        rtc_kiln.wait_for(lambda: stream_json(rtc_kiln, "roam") is None, 20, "stream gone after DELETE")
        assert "Traceback" not in rtc_kiln.log_path.read_text()
    finally:
        publisher.close()


def test_ice_restart_patches_that_cannot_be_served_leave_the_session_as_it_was(rtc_kiln: KilnProcess) -> None:
    base = f"http://127.0.0.1:{rtc_kiln.ports.llhls}"
    frag = {"Content-Type": TRICKLE}
    new = "a=ice-ufrag:zz99\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    assert httpx.patch(f"{base}/app/x/unknown?direction=whip", content=new, headers={**frag, "If-Match": "*"},
                       timeout=30).status_code == 404
    publisher = Publisher()
    try:
        created = publisher.whip(f"{base}/app/y?direction=whip")
        assert created.status_code == 201
        rtc_kiln.wait_for(input_tracks(rtc_kiln, "y"), 30, "the stream publishes")
        resource, etag = base + publisher.location, created.headers["etag"]
        cases = [
            ({"If-Match": '"not-it"'}, new, 412),                    # wrong ETag
            ({"If-Match": "*"}, "this is not sdp\r\n", 400),          # garbage
            ({"If-Match": "*"}, "a=ice-ufrag:zz99\r\n", 400),         # new ufrag without its password
            ({"If-Match": "*"}, "a=ice-ufrag:z\r\na=ice-pwd:short\r\n", 400),  # not ice-chars of the right size
            ({"If-Match": "*"}, new + "a=candidate:1 1 udp\r\n", 400),  # a broken candidate
            ({}, new, 428),                                          # a restart must say If-Match: *
            ({"If-Match": etag}, new, 422),                          # new credentials under a trickle's ETag
        ]
        for headers, body, status in cases:
            answer = httpx.patch(resource, content=body, headers={**frag, **headers}, timeout=30)
            assert answer.status_code == status, (body, answer.status_code, answer.text)
            assert "etag" not in answer.headers
        # nothing was restarted: the session's ETag still works for a trickle and media still flows
        trickle = httpx.patch(resource, content="a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n",
                              headers={**frag, "If-Match": etag}, timeout=30)
        assert trickle.status_code == 204
        assert "webrtc ice restart started" not in rtc_kiln.log_path.read_text()
        at = _bytes_in(rtc_kiln, "y")
        rtc_kiln.wait_for(lambda: _bytes_in(rtc_kiln, "y") > at + 4_000, 20, "media still flowing")
    finally:
        publisher.close()


def test_chromium_restarts_ice_through_whip_patch_and_keeps_publishing(rtc_kiln: KilnProcess, tmp_path: Path) -> None:
    require("chromium (node, playwright-core)", browser_available)
    port = rtc_kiln.ports.llhls
    user_data_dir = Path(tempfile.mkdtemp(prefix="chromium-restart-", dir=tmp_path))
    options = {"url": f"http://127.0.0.1:{port}/app/chrome?direction=whip",
               "page_origin": f"http://localhost:{port + 1}", "user_data_dir": str(user_data_dir),
               "chromium": CHROMIUM, "before_s": 4, "after_s": 6, "timeout_ms": 30000}
    peer = Peer.spawn("chromium-restart", [NODE, str(Path(__file__).with_name("ingest_restart.js")),
                                           json.dumps(options)], tmp_path,
                      env={"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1", "NODE_PATH": str(NODE_MODULES)})
    try:
        rtc_kiln.wait_for(lambda: "webrtc ice restarted " in rtc_kiln.log_path.read_text(), 60,
                          "Chromium's new ICE generation chosen by Kiln")
        at_switch = _bytes_in(rtc_kiln, "chrome")
        rtc_kiln.wait_for(lambda: _bytes_in(rtc_kiln, "chrome") > at_switch + 20_000, 30, "media after the restart")
        peer.wait(60)
    finally:
        peer.stop()
        _kill_processes_using(f"--user-data-dir={user_data_dir}")
        shutil.rmtree(user_data_dir, ignore_errors=True)
    lines = peer.stdout_text().strip().splitlines()
    assert lines, peer.stderr_tail(30)
    report = json.loads(lines[-1])
    assert report["posted"] == 201 and report["connected"] and not report["errors"], report
    patched = report["patched"]
    assert patched["status"] == 200 and patched["contentType"].startswith(TRICKLE), report
    assert patched["etag"] and patched["etag"] != report["etag"], report
    assert report["ufrags"][0] != report["ufrags"][1] and report["state"] == "connected", report
    assert report["sent"][1] > report["sent"][0] + 30, report  # Chromium kept sending after the restart
    log = rtc_kiln.log_path.read_text()
    assert [e["name"] for e in _journal(rtc_kiln, "StreamStarted")] == ["chrome"]
    assert "Traceback" not in log
    sys.stdout.write(f"\nchromium ice restart: pair {report['pairs'][0]} -> {report['pairs'][1]}, "
                     f"{report['sent'][1] - report['sent'][0]} video packets sent after the restart\n")

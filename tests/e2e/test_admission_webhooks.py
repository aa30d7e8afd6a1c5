"""AdmissionWebhooks as publishers meet them (issue 14): a control server in its own process
(tests/peers/webhook_server.py) allows, denies, redirects, leases, answers slowly and fails; Kiln follows
it and sends closing notifications. Every request's ``X-OME-Signature`` is checked with the test's own
HMAC code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import publish_rtmp, publish_srt
from tests.peers.webhook_server import SLOW_S, WebhookServer

pytestmark = pytest.mark.e2e

KEY = "hook#key-1"
TIMEOUT_MS = 1500
APP = "/v1/vhosts/default/apps/app"


@pytest.fixture
def control(tmp_path: Path) -> Iterator[WebhookServer]:
    server = WebhookServer(tmp_path / "control").start()
    yield server
    server.stop()


@pytest.fixture
def kiln(kiln_factory: Callable[..., KilnProcess], tmp_path: Path, control: WebhookServer) -> KilnProcess:
    ports = Ports()
    hooks = f"""<AdmissionWebhooks><ControlServerUrl>{control.url}</ControlServerUrl><SecretKey>{KEY}</SecretKey>
        <Timeout>{TIMEOUT_MS}</Timeout><Enables><Providers>rtmp,srt</Providers></Enables></AdmissionWebhooks>"""
    xml = server_xml(ports, tmp_path / "records").replace(
        "<Host><Names><Name>*</Name></Names></Host>", f"<Host><Names><Name>*</Name></Names></Host>{hooks}")
    return kiln_factory(xml=xml, ports=ports)


def streams(k: KilnProcess) -> list[str]:
    return k.api.get(f"{APP}/streams").json()["response"]


def rtmp_url(k: KilnProcess, stream: str) -> str:
    return f"rtmp://127.0.0.1:{k.ports.rtmp}/app/{stream}"


def journal(k: KilnProcess, event_type: str) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "show", "-d", str(k.data_dir), "--json",
                          "--type", event_type], capture_output=True, text=True, timeout=30, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def ome_signature(body: str) -> str:
    """The test's own X-OME-Signature: base64url without padding of HMAC-SHA1(SecretKey, body)."""
    return base64.urlsafe_b64encode(hmac.new(KEY.encode(), body.encode(), hashlib.sha1).digest()).decode().rstrip("=")


def received(control: WebhookServer, stream: str, status: str) -> list[dict[str, Any]]:
    """Requests the control server got for ``stream`` with ``status``; every signature is verified."""
    out = []
    for r in control.requests():
        assert r["signature"] == ome_signature(r["body"]), r
        assert r["content_type"] == "application/json"
        body = json.loads(r["body"])
        if body["request"]["url"].split("?")[0].endswith(f"/app/{stream}") and body["request"]["status"] == status:
            out.append({**body, "at": r["at"]})
    return out


def test_allowed_publish_is_reported_opening_and_closing(kiln: KilnProcess, control: WebhookServer,
                                                        test_flv: Path, peer_dir: Path) -> None:
    pub = publish_rtmp(rtmp_url(kiln, "ok") + "?token=abc", test_flv, loop=True, log_dir=peer_dir)
    try:
        kiln.wait_for(lambda: "ok" in streams(kiln), what="allowed publish listed")
        [opening] = received(control, "ok", "opening")
    finally:
        pub.stop()
    assert opening["client"]["address"] == "127.0.0.1" and isinstance(opening["client"]["port"], int)
    req = opening["request"]
    assert (req["direction"], req["protocol"]) == ("incoming", "RTMP")
    assert req["url"] == f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/ok?token=abc"
    assert req["time"][10] == "T" and req["time"][23] in "+-"
    [closing] = kiln.wait_for(lambda: received(control, "ok", "closing"), what="closing notification")
    assert closing["request"]["url"] == req["url"] and closing["client"] == opening["client"]


def test_denied_and_failing_webhooks_refuse_the_publish(kiln: KilnProcess, control: WebhookServer,
                                                       test_flv: Path, peer_dir: Path) -> None:
    peers = {name: publish_rtmp(rtmp_url(kiln, name), test_flv, loop=True, log_dir=peer_dir)
             for name in ("denyme", "failme")}
    try:
        for name, pub in peers.items():
            kiln.wait_for(lambda p=pub: not p.alive, what=f"ffmpeg {name} refused and exited")
        assert not {"denyme", "failme"} & set(streams(kiln))
        denied = kiln.wait_for(lambda: len(journal(kiln, "AdmissionDenied")) >= 2 and journal(kiln, "AdmissionDenied"),
                               what="denials journaled")
    finally:
        for pub in peers.values():
            pub.stop()
    reasons = {e["payload"]["stream"]: (e["payload"]["rule"], e["payload"]["reason"]) for e in denied}
    assert reasons == {"denyme": ("AdmissionWebhooks", "denyme is not on the list"),
                       "failme": ("AdmissionWebhooks", "control server answered HTTP 500")}
    assert received(control, "denyme", "closing") == [] and received(control, "failme", "closing") == []


def test_new_url_redirects_the_publish(kiln: KilnProcess, control: WebhookServer, test_flv: Path,
                                       peer_dir: Path) -> None:
    pub = publish_rtmp(rtmp_url(kiln, "redirect"), test_flv, loop=True, log_dir=peer_dir)
    try:
        kiln.wait_for(lambda: "redirect-moved" in streams(kiln), what="publish listed under the new name")
        assert "redirect" not in streams(kiln)
    finally:
        pub.stop()
    [closing] = kiln.wait_for(lambda: received(control, "redirect", "closing"), what="closing notification")
    assert closing["request"]["new_url"] == f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/redirect-moved"
    [allowed] = [e["payload"] for e in journal(kiln, "AdmissionAllowed")]
    assert (allowed["stream"], allowed["rule"], allowed["new_url"]) == (
        "redirect", "AdmissionWebhooks", f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/redirect-moved")


def test_lifetime_cuts_the_publish(kiln: KilnProcess, control: WebhookServer, test_flv: Path,
                                   peer_dir: Path) -> None:
    pub = publish_rtmp(rtmp_url(kiln, "short"), test_flv, loop=True, log_dir=peer_dir)
    try:
        kiln.wait_for(lambda: "short" in streams(kiln), what="leased publish listed")
        listed = time.time()
        [opening] = received(control, "short", "opening")
        kiln.wait_for(lambda: "short" not in streams(kiln), timeout=15, what="publish cut at its lifetime")
        assert time.time() - opening["at"] >= 2.9
        assert time.time() - listed < 10
        kiln.wait_for(lambda: not pub.alive, what="ffmpeg sees the connection closed")
    finally:
        pub.stop()


def test_a_slow_webhook_denies_at_timeout_without_delaying_another_publisher(
        kiln: KilnProcess, control: WebhookServer, test_flv: Path, peer_dir: Path) -> None:
    slow = publish_rtmp(rtmp_url(kiln, "slowpoke"), test_flv, loop=True, log_dir=peer_dir)
    try:
        kiln.wait_for(lambda: received(control, "slowpoke", "opening"), what="slow webhook asked")
        asked = time.time()
        fast = publish_rtmp(rtmp_url(kiln, "quick"), test_flv, loop=True, log_dir=peer_dir)
        try:
            kiln.wait_for(lambda: "quick" in streams(kiln), timeout=TIMEOUT_MS / 1000 * 3,
                          what="second publisher listed while the first waits")
            [quick] = received(control, "quick", "opening")
            assert quick["at"] - asked < TIMEOUT_MS / 1000   # asked while the slow call was still pending
            kiln.wait_for(lambda: not slow.alive, timeout=SLOW_S + 5, what="slow publisher refused")
            denied = [e["payload"] for e in journal(kiln, "AdmissionDenied")]
            assert [(d["stream"], d["reason"]) for d in denied] == [
                ("slowpoke", f"control server did not answer within {TIMEOUT_MS} ms")]
            assert "slowpoke" not in streams(kiln)
        finally:
            fast.stop()
    finally:
        slow.stop()


def test_publishers_ended_by_a_server_stop_are_reported_closing(kiln: KilnProcess, control: WebhookServer,
                                                                test_flv: Path, test_ts: Path, peer_dir: Path) -> None:
    """OME tells the control server "closing" for every admitted session; a shutdown ends them all at once,
    the SRT caller's on libsrt's thread, and the server must not stop before the notifications went out."""
    streamid = quote(f"srt://127.0.0.1:{kiln.ports.srt}/app/srtstop", safe="")
    pubs = [publish_rtmp(rtmp_url(kiln, "rtmpstop"), test_flv, loop=True, log_dir=peer_dir),
            publish_srt(f"srt://127.0.0.1:{kiln.ports.srt}?mode=caller&latency=200000&pkt_size=1316"
                        f"&streamid={streamid}", test_ts, loop=True, log_dir=peer_dir)]
    try:
        kiln.wait_for(lambda: {"rtmpstop", "srtstop"} <= set(streams(kiln)), timeout=30, what="both publishers listed")
        assert received(control, "rtmpstop", "closing") == received(control, "srtstop", "closing") == []
        assert kiln.stop() == 0
    finally:
        for pub in pubs:
            pub.stop()
    for name, protocol in (("rtmpstop", "RTMP"), ("srtstop", "SRT")):
        [opening] = received(control, name, "opening")
        [closing] = received(control, name, "closing")
        assert closing["request"]["protocol"] == opening["request"]["protocol"] == protocol
        assert closing["client"] == opening["client"]

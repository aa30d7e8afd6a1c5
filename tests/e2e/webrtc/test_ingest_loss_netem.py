"""A WHIP publisher behind a lossy link: aiortc runs in a network namespace the test makes (root, ``ip``,
``tc``), whose way to Kiln drops about 5 % of UDP datagrams (``tc netem``, or where the kernel has no netem a
u32 filter into a dropping class: ``netns.drop_some_udp``). Kiln repairs what it can (NACKs), asks for
keyframes (PLIs), and its LL-HLS output decodes without an error; the repair counters are in /metrics.
Chromium publishing simulcast through the same link has its layers' retransmissions (RTX, no SSRCs
signalled) matched to them by rid."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.webrtc.ingest_browser import publishers_available, start_publisher
from tests.e2e.webrtc.ingest_kiln import ingest_server_xml, input_tracks
from tests.e2e.webrtc.netns import Namespace, can_make_namespaces, drop_some_udp, dropped, veth_namespace
from tests.e2e.webrtc.play_kiln import RtcPorts
from tests.e2e.webrtc.test_ingest_browser import SIM_HEIGHT, SIM_PROFILE, SIM_WIDTH, _layers
from tests.e2e.webrtc.test_ingest_whip import _probe
from tests.peers.fixtures import require
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def lossy() -> Iterator[tuple[Namespace, str]]:
    require("tc (root, ip netns)", can_make_namespaces)
    with veth_namespace("kiln-loss") as ns:
        yield ns, drop_some_udp(ns, inside=True)  # publisher → Kiln


def _repairs(kiln: KilnProcess, stream: str) -> dict[str, float]:
    text = kiln.api.get("/metrics").text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("kiln_webrtc_ingest_") and sample.labels.get("stream") == stream:
                found[sample.name[len("kiln_webrtc_ingest_"):-len("_total")]] = sample.value
    return found


def _lossy_kiln(kiln_factory: Callable[..., KilnProcess], ns: Namespace, **options: str) -> KilnProcess:
    """Kiln on every address, advertising the veth's: a publisher in the namespace reaches it only through the
    lossy link."""
    ports = RtcPorts()
    xml = ingest_server_xml(ports, timeout_ms=10000, **options).replace("<IP>127.0.0.1</IP>", "<IP>*</IP>").replace(
        "<IceCandidate>*:", f"<IceCandidate>{ns.host_ip}:")
    return kiln_factory(xml, ports)


def test_five_percent_loss_toward_kiln_keeps_ll_hls_decodable_and_moves_nack_and_pli_counters(
        kiln_factory: Callable[..., KilnProcess], lossy: tuple[Namespace, str], tmp_path: Path) -> None:
    require("ffmpeg")
    ns, how = lossy
    kiln = _lossy_kiln(kiln_factory, ns)
    ports = kiln.ports
    url = f"http://{ns.host_ip}:{ports.llhls}/app/lossy?direction=whip"
    publisher = Peer.spawn("whip-lossy", ["ip", "netns", "exec", ns.name, sys.executable, "-m",
                                          "tests.e2e.webrtc.whip_publisher", url, "60"], tmp_path, cwd=ROOT)
    try:
        posted = kiln.wait_for(lambda: next((json.loads(line) for line in publisher.stdout_text().splitlines()
                                             if line.startswith("{")), None), 40, "the WHIP POST's answer")
        assert posted["status"] == 201, posted
        kiln.wait_for(input_tracks(kiln, "lossy"), 40, "described tracks")
        repairs = kiln.wait_for(lambda: (r := _repairs(kiln, "lossy")) and r["nacks"] >= 5 and r["plis"] >= 1 and r,
                                60, "NACKs and PLIs counted in /metrics")
        base = f"http://127.0.0.1:{ports.llhls}"
        kiln.wait_for(lambda: _probe(f"{base}/app/lossy/llhls.m3u8"), 60, "LL-HLS readable")
        decode = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i",
                                 f"{base}/app/lossy/llhls.m3u8", "-t", "4", "-f", "null", "-"],
                                capture_output=True, text=True, timeout=60)
        assert decode.returncode == 0 and not decode.stderr.strip(), decode.stderr[-2000:]
        lost = dropped(ns, inside=True)
        assert lost > 0
        repairs = _repairs(kiln, "lossy")
        sys.stdout.write(f"\n{how} toward Kiln: {lost} packets dropped by the link, Kiln received "
                         f"{repairs['packets']:.0f} RTP packets, sent {repairs['nacks']:.0f} NACKs and "
                         f"{repairs['plis']:.0f} PLIs; LL-HLS decoded (4 s) without an error\n")
        assert "Traceback" not in kiln.log_path.read_text()
    finally:
        publisher.stop()


def test_simulcast_retransmissions_through_a_lossy_link_are_matched_to_their_layer_by_rid(
        kiln_factory: Callable[..., KilnProcess], lossy: tuple[Namespace, str], tmp_path: Path) -> None:
    """Chromium signals no SSRCs for its rid layers; aiortc alone dropped their RTX. Kiln learns each layer's
    SSRC from its rid and each RTX stream's from the rid it repairs, so NACKed losses come back as RTX."""
    require("chromium publishers (node, playwright-core, @eyevinn/whip-web-client, esbuild)", publishers_available)
    ns, how = lossy
    kiln = _lossy_kiln(kiln_factory, ns, profiles=SIM_PROFILE)
    port = kiln.ports.llhls
    # publish_s is a budget, not a duration: finish(now=True) ends it once the test has seen all it needs, so a
    # loaded machine gets time enough without the quiet case paying for it
    browser = start_publisher("whip", f"http://{ns.host_ip}:{port}/app/simloss?direction=whip", workdir=tmp_path,
                              page_origin=f"http://localhost:{port + 1}", publish_s=90, simulcast=True,
                              width=SIM_WIDTH, height=SIM_HEIGHT, netns=ns.name)
    try:
        kiln.wait_for(_layers(kiln, "simloss", 3), 60, "three simulcast layers as input tracks")
        matched = kiln.wait_for(lambda: (n := kiln.log_path.read_text().count("webrtc ingest rtx matched by rid")) >= 3
                                and n, 60, "each layer's RTX matched by rid")
        kiln.wait_for(lambda: (r := _repairs(kiln, "simloss")) and r["nacks"] >= 3 and r["layer_retransmissions"] > 0
                      and r, 60, "NACKs sent and layers' retransmissions taken, in /metrics")
        base = f"http://127.0.0.1:{port}"
        kiln.wait_for(lambda: _probe(f"{base}/app/simloss/llhls.m3u8"), 60, "LL-HLS readable")
    finally:
        report = browser.finish(90, now=True)
    assert report["connected"] and report["simulcastOffered"], report
    closed = kiln.wait_for(lambda: re.search(r"webrtc publish closed .*stream=default/app/simloss .*nacks=(\d+) "
                                             r"plis=(\d+) rtx=(\d+)", kiln.log_path.read_text()), 30,
                           "the session's closing line")
    nacks, plis, rtx = (int(closed.group(n)) for n in (1, 2, 3))
    assert rtx > 0 and nacks > 0, closed.group(0)
    log = kiln.log_path.read_text()
    assert "beyond the simulcast layers" not in log and "Traceback" not in log
    assert sorted(re.findall(r"rtx matched by rid rid=(\w+)", log)) == ["h", "l", "m"]
    sys.stdout.write(f"\nsimulcast over {how}: {matched} RTX streams matched by rid, {rtx} retransmissions "
                     f"taken, {nacks} NACKs, {plis} PLIs, {dropped(ns, inside=True)} packets dropped by the link\n")

"""SignedPolicy as publishers and players meet it (issue 14): signed RTMP publishes are accepted,
every kind of bad URL is refused and journaled, ``stream_expire`` cuts a running publish, LL-HLS
answers 401 the same way. Signatures come from the test's own OME signer (tests/peers/ome_signer.py),
not from Kiln; ``kiln sign`` output is checked against it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import ffprobe_json, publish_rtmp, publish_srt, streams_by_type
from tests.peers.ome_signer import flip_signature_byte, ome_policy, ome_sign, ome_signature_ok

pytestmark = pytest.mark.e2e

KEY = "s3cr#t-key"
APP = "/v1/vhosts/default/apps/app"
POLICY_XML = f"""<SignedPolicy><PolicyQueryKeyName>policy</PolicyQueryKeyName>
        <SignatureQueryKeyName>signature</SignatureQueryKeyName><SecretKey>{KEY}</SecretKey>
        <Enables><Providers>rtmp,srt</Providers><Publishers>llhls</Publishers></Enables></SignedPolicy>"""


@pytest.fixture
def kiln(kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> KilnProcess:
    ports = Ports()
    xml = server_xml(ports, tmp_path / "records").replace(
        "<Host><Names><Name>*</Name></Names></Host>", f"<Host><Names><Name>*</Name></Names></Host>{POLICY_XML}")
    return kiln_factory(xml=xml, ports=ports)


def now_ms() -> int:
    return int(time.time() * 1000)


def streams(k: KilnProcess) -> list[str]:
    return k.api.get(f"{APP}/streams").json()["response"]


def journal(k: KilnProcess, event_type: str) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "show", "-d", str(k.data_dir), "--json",
                          "--type", event_type], capture_output=True, text=True, timeout=30, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def rtmp_url(k: KilnProcess, stream: str) -> str:
    return f"rtmp://127.0.0.1:{k.ports.rtmp}/app/{stream}"


def test_signed_publish_is_accepted(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> None:
    url = ome_sign(rtmp_url(kiln, "ok"), KEY, {"url_expire": now_ms() + 60_000})
    pub = publish_rtmp(url, test_flv, loop=True, log_dir=peer_dir)
    try:
        kiln.wait_for(lambda: "ok" in streams(kiln), what="signed publish listed")
        assert pub.alive
    finally:
        pub.stop()
    assert journal(kiln, "AdmissionDenied") == []


REFUSALS: dict[str, tuple[Callable[[str], str], str]] = {
    "unsigned": (lambda url: url, "no signature in the URL"),
    "flipped": (lambda url: flip_signature_byte(ome_sign(url, KEY, {"url_expire": now_ms() + 60_000})),
                "signature does not match"),
    "expired": (lambda url: ome_sign(url, KEY, {"url_expire": now_ms() - 1}), "url expired at "),
    "not_active": (lambda url: ome_sign(url, KEY, {"url_expire": now_ms() + 120_000,
                                                   "url_activate": now_ms() + 60_000}), "url not active before "),
    "outside_ip": (lambda url: ome_sign(url, KEY, {"url_expire": now_ms() + 60_000, "allow_ip": "10.1.0.0/16"}),
                   "client 127.0.0.1 not in allow_ip 10.1.0.0/16"),
}


def test_bad_urls_are_refused_and_journaled(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> None:
    peers = {name: publish_rtmp(make(rtmp_url(kiln, name)), test_flv, loop=True, log_dir=peer_dir)
             for name, (make, _reason) in REFUSALS.items()}
    try:
        for name, pub in peers.items():
            kiln.wait_for(lambda p=pub: not p.alive, what=f"ffmpeg {name} refused and exited")
        assert not set(REFUSALS) & set(streams(kiln))
        denied = {e["payload"]["stream"]: e for e in
                  kiln.wait_for(lambda: len(journal(kiln, "AdmissionDenied")) >= len(REFUSALS) and
                                journal(kiln, "AdmissionDenied"), what="denials journaled")}
    finally:
        for pub in peers.values():
            pub.stop()
    assert set(denied) == set(REFUSALS)
    for name, (_make, reason) in REFUSALS.items():
        ev = denied[name]
        assert ev["entity"] == f"admission:default/app/{name}"
        p = ev["payload"]
        assert p["reason"].startswith(reason), p
        assert (p["rule"], p["protocol"], p["direction"]) == ("SignedPolicy", "RTMP", "incoming")
        assert p["client"].startswith("127.0.0.1:")
        assert "signature=" not in p["url"] or "signature=***" in p["url"]
        assert p["url"].startswith(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/{name}")


def test_stream_expire_cuts_a_running_publish(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> None:
    expire = now_ms() + 5_000
    url = ome_sign(rtmp_url(kiln, "lease"), KEY, {"url_expire": now_ms() + 60_000, "stream_expire": expire})
    pub = publish_rtmp(url, test_flv, loop=True, log_dir=peer_dir)
    try:
        kiln.wait_for(lambda: "lease" in streams(kiln), what="publish with stream_expire listed")
        kiln.wait_for(lambda: "lease" not in streams(kiln), timeout=15, what="stream cut at stream_expire")
        assert now_ms() >= expire
        kiln.wait_for(lambda: not pub.alive, what="ffmpeg sees the connection closed")
    finally:
        pub.stop()


def kiln_sign(k: KilnProcess, url: str, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "kiln.cli", "sign", url, "--vhost", "default", "-c",
                           str(k.config_path), *args], capture_output=True, text=True, timeout=30,
                          check=True).stdout.strip()


def test_kiln_sign_output_is_omes_signature(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> None:
    before = now_ms()
    signed = kiln_sign(kiln, rtmp_url(kiln, "signed"), "--expire", "60", "--allow-ip", "127.0.0.0/8")
    assert ome_signature_ok(signed, KEY)
    policy = ome_policy(signed)
    assert policy["allow_ip"] == "127.0.0.0/8" and before + 59_000 <= policy["url_expire"] <= now_ms() + 60_000
    pub = publish_rtmp(signed, test_flv, loop=True, log_dir=peer_dir)
    try:
        kiln.wait_for(lambda: "signed" in streams(kiln), what="publish signed by kiln sign listed")
    finally:
        pub.stop()


@pytest.fixture
def live(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> Iterator[tuple[KilnProcess, str]]:
    url = ome_sign(rtmp_url(kiln, "live"), KEY, {"url_expire": now_ms() + 120_000})
    pub = publish_rtmp(url, test_flv, loop=True, log_dir=peer_dir)
    base = f"http://127.0.0.1:{kiln.ports.llhls}/app/live"
    with httpx.Client(timeout=15) as http:
        def playable() -> bool:
            r = http.get(master_url(base, {"url_expire": now_ms() + 60_000}))
            return r.status_code == 200 and "#EXT-X-STREAM-INF" in r.text
        kiln.wait_for(playable, timeout=30, what="signed master playlist")
    yield kiln, base
    pub.stop()


def master_url(base: str, policy: dict[str, Any]) -> str:
    return ome_sign(f"{base}/llhls.m3u8", KEY, policy)


def child_urls(http: httpx.Client, master: str, base: str) -> list[str]:
    r = http.get(master)
    assert r.status_code == 200, r.status_code
    uris = re.findall(r'URI="([^"]+)"', r.text) + [ln for ln in r.text.splitlines() if ln and not ln.startswith("#")]
    root = base.split("/app/")[0]
    return [f"{root}{u}" if u.startswith("/") else f"{base}/{u}" for u in uris]


def test_llhls_master_needs_a_valid_signature(live: tuple[KilnProcess, str]) -> None:
    kiln, base = live
    with httpx.Client(timeout=15) as http:
        for name, (make, _reason) in REFUSALS.items():
            r = http.get(make(f"{base}/llhls.m3u8"))
            assert r.status_code == 401, (name, r.status_code)
        denied = [e["payload"] for e in journal(kiln, "AdmissionDenied") if e["payload"]["protocol"] == "LLHLS"]
        assert [d["reason"][:12] for d in denied] == [reason[:12] for _make, reason in REFUSALS.values()]
        assert all(d["direction"] == "outgoing" and d["url"].startswith(f"{base}/llhls.m3u8") for d in denied)
        chunklist = next(u for u in child_urls(http, master_url(base, {"url_expire": now_ms() + 60_000}), base)
                         if "chunklist_" in u)
        assert http.get(chunklist).status_code == 200
        invented = re.sub(r"session=\d+_[A-Za-z0-9]+", "session=987654_abcdefgh", chunklist)
        assert http.get(invented).status_code == 401


def test_ffprobe_plays_a_signed_master(live: tuple[KilnProcess, str]) -> None:
    _kiln, base = live
    probe = ffprobe_json(master_url(base, {"url_expire": now_ms() + 60_000}), timeout=40)
    assert streams_by_type(probe)["video"]["codec_name"] == "h264"


def test_llhls_answers_401_after_stream_expire(live: tuple[KilnProcess, str]) -> None:
    _kiln, base = live
    expire = now_ms() + 4_000
    with httpx.Client(timeout=15) as http:
        chunklist = next(u for u in child_urls(http, master_url(base, {"url_expire": now_ms() + 60_000,
                                                                        "stream_expire": expire}), base)
                         if "chunklist_" in u)
        assert http.get(chunklist).status_code == 200
        while now_ms() < expire:
            time.sleep(0.2)
        assert http.get(chunklist).status_code == 401
        assert http.get(master_url(base, {"url_expire": now_ms() + 60_000, "stream_expire": expire})).status_code \
            == 401


def srt_publish(k: KilnProcess, signed: str, media: Path, peer_dir: Path) -> Any:
    """ffmpeg as an SRT caller whose streamid is the signed ``srt://default/app/<stream>?...`` without
    its scheme, percent-encoded (Kiln decodes it once, as OME)."""
    streamid = quote(signed.removeprefix("srt://"), safe="")
    url = f"srt://127.0.0.1:{k.ports.srt}?mode=caller&latency=200000&pkt_size=1316&streamid={streamid}"
    return publish_srt(url, media, loop=True, log_dir=peer_dir)


def test_srt_publish_needs_a_signed_streamid(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> None:
    good = srt_publish(kiln, ome_sign("srt://default/app/srtok", KEY, {"url_expire": now_ms() + 60_000}),
                       test_flv, peer_dir)
    bad = srt_publish(kiln, flip_signature_byte(ome_sign("srt://default/app/srtbad", KEY,
                                                         {"url_expire": now_ms() + 60_000})), test_flv, peer_dir)
    try:
        kiln.wait_for(lambda: "srtok" in streams(kiln), timeout=30, what="signed SRT publish listed")

        def denied() -> list[dict[str, Any]]:
            return [e["payload"] for e in journal(kiln, "AdmissionDenied") if e["payload"]["protocol"] == "SRT"]

        [ev] = kiln.wait_for(denied, what="SRT denial journaled")
        assert (ev["stream"], ev["reason"]) == ("srtbad", "signature does not match")
        assert ev["url"] == "srt://default/app/srtbad?policy=***&signature=***"
        assert "srtbad" not in streams(kiln)
    finally:
        good.stop()
        bad.stop()


THUMB_PROFILE = """
            <OutputProfile>
              <Name>bypass</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes>
                <Video><Name>bypass_video</Name><Bypass>true</Bypass></Video>
                <Image><Codec>jpeg</Codec><Width>160</Width><Height>90</Height><Framerate>2</Framerate></Image>
              </Encodes>
            </OutputProfile>"""


def test_thumbnails_need_a_signed_url_when_enabled(kiln_factory: Callable[..., KilnProcess], tmp_path: Path,
                                                   test_flv: Path, peer_dir: Path) -> None:
    ports = Ports()
    policy_xml = POLICY_XML.replace("<Providers>rtmp,srt</Providers><Publishers>llhls</Publishers>",
                                    "<Providers>srt</Providers><Publishers>thumbnail</Publishers>")
    xml = server_xml(ports, tmp_path / "records", profiles=THUMB_PROFILE).replace(
        "<Host><Names><Name>*</Name></Names></Host>", f"<Host><Names><Name>*</Name></Names></Host>{policy_xml}")
    kiln = kiln_factory(xml=xml, ports=ports)
    pub = publish_rtmp(rtmp_url(kiln, "cam"), test_flv, loop=True, log_dir=peer_dir)  # rtmp not enabled: unsigned
    thumb = f"http://127.0.0.1:{ports.thumbnail}/app/cam/thumb.jpg"
    try:
        with httpx.Client(timeout=15) as http:
            kiln.wait_for(lambda: http.get(ome_sign(thumb, KEY, {"url_expire": now_ms() + 60_000})).status_code
                          == 200, timeout=30, what="signed thumbnail served")
            image = http.get(ome_sign(thumb, KEY, {"url_expire": now_ms() + 60_000}))
            assert image.headers["content-type"] == "image/jpeg" and image.content[:2] == b"\xff\xd8"
            assert http.get(thumb).status_code == 401
            assert http.get(ome_sign(thumb, KEY, {"url_expire": now_ms() - 1})).status_code == 401
            # LL-HLS is not in this vhost's Enables: it plays without a signature
            assert http.get(f"http://127.0.0.1:{ports.llhls}/app/cam/llhls.m3u8").status_code == 200
    finally:
        pub.stop()

"""WebRTC ingest through a running Kiln: aiortc publishers over WHIP and over OME's signalling
(``direction=send``) become input streams that are listed with their tracks, packaged as LL-HLS
(Opus → AAC by the profile) and ended by DELETE, a second publisher, or silence."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.webrtc.ingest_kiln import Publisher, ingest_server_xml, input_tracks, stream_json
from tests.e2e.webrtc.play_kiln import RtcPorts
from tests.peers.ffmpeg import ffprobe_json

pytestmark = pytest.mark.e2e


@pytest.fixture
def rtc_kiln(kiln_factory: Callable[..., KilnProcess]) -> KilnProcess:
    ports = RtcPorts()
    return kiln_factory(ingest_server_xml(ports, timeout_ms=3000), ports)


def _base(kiln: KilnProcess) -> str:
    return f"http://127.0.0.1:{kiln.ports.llhls}"


def test_whip_publish_is_listed_packaged_and_deleted(rtc_kiln: KilnProcess) -> None:
    base = _base(rtc_kiln)
    publisher = Publisher()
    try:
        response = publisher.whip(f"{base}/app/cam?direction=whip")
        assert response.status_code == 201, response.text
        assert response.headers["content-type"].startswith("application/sdp")
        assert response.headers["location"].startswith("/app/cam/") and "direction=whip" in response.headers["location"]
        assert response.headers["etag"]
        assert response.headers["access-control-allow-origin"] == "*"
        tracks = rtc_kiln.wait_for(input_tracks(rtc_kiln, "cam"), 30, "described tracks")
        assert tracks["Video"]["video"]["codec"] == "H264"  # chosen over aiortc's VP8-first offer
        assert (tracks["Video"]["video"]["width"], tracks["Video"]["video"]["height"]) == (640, 480)
        assert tracks["Audio"]["audio"]["codec"] == "OPUS"
        assert stream_json(rtc_kiln, "cam")["input"]["sourceType"] == "WebRTC"
        # a second publisher to the live name is refused, as for RTMP
        second = Publisher()
        try:
            refused = second.whip(f"{base}/app/cam?direction=whip")
            assert refused.status_code == 409, refused.text
        finally:
            second.close()
        # LL-HLS: H.264 passed through, the Opus input transcoded to AAC by the profile
        probe = rtc_kiln.wait_for(lambda: _probe(f"{base}/app/cam/llhls.m3u8"), 40, "LL-HLS readable")
        codecs = {s["codec_type"]: s["codec_name"] for s in probe["streams"]}
        assert codecs.get("video") == "h264" and codecs.get("audio") == "aac", codecs
        stats = rtc_kiln.api.get("/v1/stats/current/vhosts/default/apps/app/streams/cam").json()["response"]
        assert stats["totalBytesIn"] > 0 and stats["lastRecvTime"]
        deleted = publisher.whip_delete(base)
        assert deleted.status_code == 200
        rtc_kiln.wait_for(lambda: stream_json(rtc_kiln, "cam") is None, 20, "stream gone after DELETE")
        assert publisher.whip_delete(base).status_code == 404
        started = _journal(rtc_kiln, "StreamStarted")
        ended = _journal(rtc_kiln, "StreamEnded")
        assert [(e["name"], e["source_type"]) for e in started] == [("cam", "WebRTC")]
        assert [(e["name"], e["reason"]) for e in ended] == [("cam", "deleted by the WHIP client")]
    finally:
        publisher.close()


def _journal(kiln: KilnProcess, event_type: str) -> list[dict]:  # type: ignore[type-arg]
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "show", "-d", str(kiln.data_dir), "--json",
                          "--type", event_type], capture_output=True, text=True, timeout=30, check=True).stdout
    return [json.loads(line)["payload"] for line in out.splitlines() if line.strip()]


def _probe(url: str) -> dict | None:  # type: ignore[type-arg]
    try:
        found = ffprobe_json(url, timeout=20)
    except Exception:
        return None
    types = {s.get("codec_type") for s in found.get("streams", [])}
    return found if {"video", "audio"} <= types else None


def test_ome_signalling_send_publishes_vp8_and_delete_stream_closes_it(rtc_kiln: KilnProcess) -> None:
    publisher = Publisher(codec="vp8")  # a publisher without H.264: VP8 is received as is
    try:
        offer = publisher.signal(f"ws://127.0.0.1:{rtc_kiln.ports.llhls}/app/rtc1?direction=send")
        assert offer.get("command") == "offer", offer
        assert "a=recvonly" in offer["sdp"]["sdp"] and offer["candidates"]
        tracks = rtc_kiln.wait_for(input_tracks(rtc_kiln, "rtc1"), 30, "described tracks")
        assert tracks["Video"]["video"]["codec"] == "VP8"
        deleted = rtc_kiln.api.delete("/v1/vhosts/default/apps/app/streams/rtc1")
        assert deleted.status_code == 200, deleted.text
        rtc_kiln.wait_for(publisher.ws_closed, 20, "signalling socket closed by DELETE /streams")
        rtc_kiln.wait_for(lambda: stream_json(rtc_kiln, "rtc1") is None, 20, "stream gone")
    finally:
        publisher.close()


def test_a_publisher_that_stops_sending_is_ended_by_the_provider_timeout(rtc_kiln: KilnProcess) -> None:
    publisher = Publisher()
    try:
        assert publisher.whip(f"{_base(rtc_kiln)}/app/quiet?direction=whip").status_code == 201
        rtc_kiln.wait_for(input_tracks(rtc_kiln, "quiet"), 30, "described tracks")
        for sender in publisher.pc.getSenders():
            publisher.run(sender.stop())  # media stops; nobody says goodbye
        rtc_kiln.wait_for(lambda: stream_json(rtc_kiln, "quiet") is None, 20, "stream ended by Timeout (3 s)")
        rtc_kiln.wait_for_log("no media for 3 s")
    finally:
        publisher.close()


BAD_OFFERS = [
    ("garbage", 400, "v=0"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n"
     "a=fingerprint:sha-256 00:11\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
     "a=sendonly\r\na=rtpmap:96 AV1/90000\r\n", 400, "no video codec Kiln can receive"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n"
     "a=fingerprint:sha-256 00:11\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
     "a=recvonly\r\na=rtpmap:111 opus/48000/2\r\n", 400, "a publisher must send"),
]


def test_bad_offers_get_a_clear_error_and_create_nothing(rtc_kiln: KilnProcess) -> None:
    for body, status, text in BAD_OFFERS:
        response = httpx.post(f"{_base(rtc_kiln)}/app/bad?direction=whip", content=body,
                              headers={"Content-Type": "application/sdp"}, timeout=30)
        assert response.status_code == status and text in response.text, (body, response.text)
    assert rtc_kiln.api.get("/v1/vhosts/default/apps/app/streams").json()["response"] == []
    options = httpx.options(f"{_base(rtc_kiln)}/app/bad?direction=whip", headers={
        "Origin": "http://page.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"}, timeout=30)
    assert options.status_code == 204 and "POST" in options.headers["access-control-allow-methods"]


BAD_SIGNALLING = [
    ("/app/s1?direction=send", ['{"command":"answer","id":1,"sdp":{"type":"answer","sdp":"v=0"}}'],
     {"code": 400, "error": "Invalid ID"}),
    ("/nope/s1?direction=send", ['{"command":"request_offer"}'], {"code": 404, "error": "Cannot create offer"}),
    ("/app/s1?direction=send", ["not json"], {"code": 400, "error": "message is not JSON"}),
    ("/app/s1?direction=send", [b"\x00\xffbinary"], {"code": 400, "error": "message is not JSON"}),
    ("/app/s1?direction=send", ['{"command":"request_offer"}', '{"command":"answer","id":1,"sdp":"garbage"}'],
     {"code": 400}),  # ids count from 1 per process: this answer names the offer, its SDP is garbage
]


def test_bad_signalling_gets_an_error_and_a_closed_socket(rtc_kiln: KilnProcess) -> None:
    import asyncio
    import json

    import websockets

    async def talk(path: str, frames: list[str | bytes]) -> list[dict[str, object]]:
        got = []
        async with websockets.connect(f"ws://127.0.0.1:{rtc_kiln.ports.llhls}{path}", open_timeout=30) as ws:
            for frame in frames:
                await ws.send(frame)
            async for raw in ws:  # until the server closes
                got.append(json.loads(raw))
        return got

    for path, frames, error in BAD_SIGNALLING:
        messages = asyncio.run(asyncio.wait_for(talk(path, frames), 30))
        assert messages and {k: messages[-1].get(k) for k in error} == error, (path, frames, messages)
    rtc_kiln.wait_for(lambda: rtc_kiln.api.get("/v1/vhosts/default/apps/app/streams").json()["response"] == [], 20,
                      "no stream left behind")


def test_signed_policy_checks_whip_publishers(kiln_factory: Callable[..., KilnProcess]) -> None:
    """SignedPolicy with ``webrtc`` in its providers: a WHIP URL signed as OME signs it publishes, an unsigned
    one gets 401 and the refusal is journaled as WebRTC, incoming."""
    import json
    import subprocess
    import sys
    import time

    from tests.peers.ome_signer import ome_sign

    key = "rtc-s3cret"
    policy = (f"<SignedPolicy><PolicyQueryKeyName>policy</PolicyQueryKeyName><SignatureQueryKeyName>signature"
              f"</SignatureQueryKeyName><SecretKey>{key}</SecretKey><Enables><Providers>webrtc</Providers>"
              f"</Enables></SignedPolicy>")
    ports = RtcPorts()
    xml = ingest_server_xml(ports).replace("<Host><Names><Name>*</Name></Names></Host>",
                                           f"<Host><Names><Name>*</Name></Names></Host>{policy}")
    kiln = kiln_factory(xml, ports)
    base = _base(kiln)
    unsigned = Publisher()
    try:
        refused = unsigned.whip(f"{base}/app/signed?direction=whip")
        assert refused.status_code == 401 and "access denied" in refused.text
    finally:
        unsigned.close()
    signed_url = ome_sign(f"{base}/app/signed?direction=whip", key, {"url_expire": int(time.time() * 1000) + 60000})
    publisher = Publisher()
    try:
        assert publisher.whip(signed_url).status_code == 201
        kiln.wait_for(input_tracks(kiln, "signed"), 30, "the signed publisher's stream")
    finally:
        publisher.close()
    out = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "show", "-d", str(kiln.data_dir), "--json",
                          "--type", "AdmissionDenied"], capture_output=True, text=True, timeout=30, check=True).stdout
    denied = [json.loads(line)["payload"] for line in out.splitlines() if line.strip()]
    assert [(d["rule"], d["protocol"], d["direction"]) for d in denied] == [("SignedPolicy", "WebRTC", "incoming")]


VP8_TO_H264 = """
            <OutputProfile>
              <Name>vp8_in</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes>
                <Video><Name>h264</Name><Codec>h264</Codec><Width>320</Width><Height>240</Height><Bitrate>300000</Bitrate>
                  <Framerate>30</Framerate><Preset>faster</Preset></Video>
                <Audio><Name>aac_audio</Name><Codec>aac</Codec><Bitrate>64000</Bitrate><Samplerate>48000</Samplerate>
                  <Channel>2</Channel></Audio>
              </Encodes>
            </OutputProfile>"""


def test_vp8_input_plays_as_h264_ll_hls_through_a_profile_encode(kiln_factory: Callable[..., KilnProcess]) -> None:
    ports = RtcPorts()
    kiln = kiln_factory(ingest_server_xml(ports, profiles=VP8_TO_H264), ports)
    publisher = Publisher(codec="vp8")
    try:
        assert publisher.whip(f"{_base(kiln)}/app/v8?direction=whip").status_code == 201
        tracks = kiln.wait_for(input_tracks(kiln, "v8"), 30, "the VP8 stream")
        assert tracks["Video"]["video"]["codec"] == "VP8"
        probe = kiln.wait_for(lambda: _probe(f"{_base(kiln)}/app/v8/llhls.m3u8"), 60, "LL-HLS of the encode")
        video = next(s for s in probe["streams"] if s["codec_type"] == "video")
        assert (video["codec_name"], video["width"], video["height"]) == ("h264", 320, 240)
    finally:
        publisher.close()


def test_a_lossy_publisher_link_keeps_ll_hls_decodable(rtc_kiln: KilnProcess) -> None:
    """Loss injected at the publisher's socket layer (every 20th video packet; some retransmissions lost too):
    NACKs and PLIs go out (the session's closing log line counts them) and ffmpeg decodes the LL-HLS
    output without an error."""
    import re
    import subprocess

    base = _base(rtc_kiln)
    publisher = Publisher()
    try:
        assert publisher.whip(f"{base}/app/lossy?direction=whip").status_code == 201
        rtc_kiln.wait_for(input_tracks(rtc_kiln, "lossy"), 30, "described tracks")
        dropped = publisher.lose(every=20, retransmissions_every=60)
        rtc_kiln.wait_for(lambda: dropped["again"] >= 3, 30, "retransmissions lost too")
        rtc_kiln.wait_for(lambda: _probe(f"{base}/app/lossy/llhls.m3u8"), 40, "LL-HLS")
        decode = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i",
                                 f"{base}/app/lossy/llhls.m3u8", "-t", "4", "-f", "null", "-"],
                                capture_output=True, text=True, timeout=60)
        assert decode.returncode == 0 and not decode.stderr.strip(), decode.stderr[-2000:]
        assert publisher.whip_delete(base).status_code == 200
        closed = rtc_kiln.wait_for(lambda: re.search(r"webrtc publish closed .*stream=default/app/lossy .*"
                                                     r"nacks=(\d+) plis=(\d+)", rtc_kiln.log_path.read_text()),
                                   20, "the session's closing line")
        assert int(closed.group(1)) > 0 and int(closed.group(2)) > 0, closed.group(0)
    finally:
        publisher.close()


def test_whip_requests_that_cannot_be_served_get_clear_statuses(rtc_kiln: KilnProcess) -> None:
    base = _base(rtc_kiln)
    sdp = {"Content-Type": "application/sdp"}
    frag = {"Content-Type": "application/trickle-ice-sdpfrag"}
    assert httpx.post(f"{base}/app/x?direction=whip", content="v=0", timeout=30).status_code == 415
    assert httpx.post(f"{base}/app/x?direction=whip", content=b"\xff\xfe", headers=sdp, timeout=30).status_code == 400
    assert httpx.post(f"{base}/app/x?direction=whip", content="v=0\n" * 20000, headers=sdp,
                      timeout=30).status_code == 413
    assert httpx.post(f"{base}/app?direction=whip", content="v=0", headers=sdp, timeout=30).status_code == 404
    assert httpx.post(f"{base}/nope/x?direction=whip", content="v=0", headers=sdp, timeout=30).status_code in (400, 404)
    assert httpx.patch(f"{base}/app/x/unknown?direction=whip", content="", headers=frag, timeout=30).status_code == 404
    publisher = Publisher()
    try:
        created = publisher.whip(f"{base}/app/x?direction=whip")
        assert created.status_code == 201
        resource = base + publisher.location
        wrong = httpx.patch(resource, content="a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n",
                            headers={**frag, "If-Match": '"nope"'}, timeout=30)
        assert wrong.status_code == 412
        restart = httpx.patch(resource, content="a=ice-ufrag:new1\r\na=ice-pwd:newpasswordnewpassword12\r\n",
                              headers={**frag, "If-Match": created.headers["etag"]}, timeout=30)
        assert restart.status_code == 422 and "ICE restart" in restart.text
        trickle = httpx.patch(resource, content="a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n",
                              headers={**frag, "If-Match": created.headers["etag"]}, timeout=30)
        assert trickle.status_code == 204
        bad = httpx.patch(resource, content="a=candidate:garbage\r\n", headers=frag, timeout=30)
        assert bad.status_code == 400
        rtc_kiln.wait_for(input_tracks(rtc_kiln, "x"), 30, "the stream still publishes")
    finally:
        publisher.close()


def test_publishers_that_come_and_go_leave_no_threads_or_sockets_behind(rtc_kiln: KilnProcess) -> None:
    import os

    assert rtc_kiln.proc is not None
    pid = rtc_kiln.proc.pid

    def counts() -> tuple[int, int]:
        return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))

    def bytes_in(name: str) -> int:
        return int(rtc_kiln.api.get(f"/v1/stats/current/vhosts/default/apps/app/streams/{name}")
                   .json()["response"]["totalBytesIn"])

    def cycle(name: str) -> None:
        publisher = Publisher()
        try:
            assert publisher.whip(f"{_base(rtc_kiln)}/app/{name}?direction=whip").status_code == 201
            rtc_kiln.wait_for(input_tracks(rtc_kiln, name), 30, f"{name} publishing")
            # media, not just tracks: the Opus -> AAC transcoder has decoded and encoded (its codec contexts and
            # their native threads exist), so each cycle checks they go with the stream and warm starts the pools
            rtc_kiln.wait_for(lambda: bytes_in(name) > 10_000, 30, f"{name} media flowing")
            assert publisher.whip_delete(_base(rtc_kiln)).status_code == 200
            rtc_kiln.wait_for(lambda: stream_json(rtc_kiln, name) is None, 20, f"{name} gone")
        finally:
            publisher.close()

    cycle("warm")  # first use starts pools and caches
    before = counts()
    for n in range(4):
        cycle(f"c{n}")
    after = rtc_kiln.wait_for(lambda: (c := counts())[0] <= before[0] + 1 and c[1] <= before[1] + 2 and c, 20,
                              f"threads and fds back to {before}")
    assert after[0] <= before[0] + 1 and after[1] <= before[1] + 2

"""SignedPolicy on WebRTC playback (media spec §5, publisher name ``webrtc``): a signed ``ws://`` URL plays,
an unsigned one gets OME's 404 "Cannot create offer" and a closed socket, journaled as an outgoing WEBRTC
AdmissionDenied; ``stream_expire`` cuts a playing viewer; every session that played is in the journal
(PlaybackSessionOpened/Closed)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.e2e.webrtc.play_kiln import RtcPorts, kiln_playing_cam, rtc_server_xml, signalling_viewer
from tests.peers.fixtures import require
from tests.peers.ome_signer import ome_sign

pytestmark = pytest.mark.e2e

KEY = "rtc-s3cr#t"
POLICY_XML = f"""<SignedPolicy><PolicyQueryKeyName>policy</PolicyQueryKeyName>
        <SignatureQueryKeyName>signature</SignatureQueryKeyName><SecretKey>{KEY}</SecretKey>
        <Enables><Publishers>webrtc</Publishers></Enables></SignedPolicy>"""


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[KilnProcess, RtcPorts]]:
    require("ffmpeg")
    ports = RtcPorts()
    xml = rtc_server_xml(ports).replace("<Host><Names><Name>*</Name></Names></Host>",
                                        f"<Host><Names><Name>*</Name></Names></Host>{POLICY_XML}")
    assert POLICY_XML in xml
    with kiln_playing_cam(tmp_path, xml, ports) as pair:
        yield pair


def journal(k: KilnProcess, event_type: str) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "show", "-d", str(k.data_dir), "--json",
                          "--type", event_type], capture_output=True, text=True, timeout=30, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_signed_url_plays_unsigned_is_refused_and_both_are_journaled(live: tuple[KilnProcess, RtcPorts]) -> None:
    kiln, ports = live
    url = f"ws://127.0.0.1:{ports.llhls}/app/cam"
    refused = asyncio.run(signalling_viewer(url))
    assert refused.errors == [{"code": 404, "error": "Cannot create offer"}]
    signed = ome_sign(url, KEY, {"url_expire": int(time.time() * 1000) + 600_000})
    played = asyncio.run(signalling_viewer(signed, seconds=1.0))
    assert not played.errors and played.frames["video"] >= 10 and played.frames["audio"] > 0, played
    denied = kiln.wait_for(lambda: journal(kiln, "AdmissionDenied"), 20, "the refusal journaled")
    payload = denied[0]["payload"]
    assert (payload["protocol"], payload["direction"], payload["stream"]) == ("WEBRTC", "outgoing", "cam")
    assert payload["url"] == url  # what SignedPolicy signs: the ws:// URL the player opened
    closed = kiln.wait_for(lambda: journal(kiln, "PlaybackSessionClosed"), 20, "the session's end journaled")
    opened = journal(kiln, "PlaybackSessionOpened")
    assert len(opened) == 1 and len(closed) == 1
    assert opened[0]["payload"]["tracks"] == "0:H264,2:OPUS" and opened[0]["payload"]["client"].startswith("127.0.0.1:")
    assert closed[0]["payload"]["bytes_out"] > 10_000 and closed[0]["payload"]["seconds"] > 0.5

    # stream_expire cuts a playing viewer when it passes
    stream_expire = int(time.time() * 1000) + 4_000
    expiring = ome_sign(url, KEY, {"url_expire": int(time.time() * 1000) + 600_000, "stream_expire": stream_expire})
    asyncio.run(signalling_viewer(expiring, seconds=5.0))
    cut = kiln.wait_for(lambda: [e for e in journal(kiln, "PlaybackSessionClosed")
                                 if e["payload"]["reason"] == "admission expired"], 20, "the lease cut the session")
    # it played, then ended when the lease passed: not before (a timer's rounding aside), and soon after (the
    # session's length depends on how long the viewer's set-up took, which load stretches; the end's time does not)
    ended = datetime.fromisoformat(cut[0]["time"]).timestamp()
    assert cut[0]["payload"]["seconds"] > 0.5, cut
    assert stream_expire / 1000 - 0.1 <= ended < stream_expire / 1000 + 2.5, (ended - stream_expire / 1000, cut)

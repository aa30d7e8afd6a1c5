"""SignedPolicy on SRT playback (issue 14, media spec §5): a player whose streamid carries a valid
signature plays; an unsigned one is dropped, logged and journaled as an outgoing SRT AdmissionDenied;
``stream_expire`` cuts a playing caller. Signatures come from the test's own OME signer."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.kiln_process import KilnProcess, Ports
from tests.e2e.test_srt_playback import PASSPHRASE, media_duration, playback_xml, publish_cam, srt_connections
from tests.peers.ffmpeg import FFMPEG, QUIET
from tests.peers.ome_signer import ome_sign
from tests.peers.ports import free_udp_port
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

KEY = "play-s3cr#t"
POLICY_XML = f"""<SignedPolicy><PolicyQueryKeyName>policy</PolicyQueryKeyName>
        <SignatureQueryKeyName>signature</SignatureQueryKeyName><SecretKey>{KEY}</SecretKey>
        <Enables><Publishers>srt</Publishers></Enables></SignedPolicy>"""


@pytest.fixture
def kiln(kiln_factory: Callable[..., KilnProcess], tmp_path: Path) -> KilnProcess:
    ports = Ports()
    playback_port = free_udp_port()
    xml = playback_xml(ports, tmp_path / "records", playback_port).replace(
        "<Host><Names><Name>*</Name></Names></Host>", f"<Host><Names><Name>*</Name></Names></Host>{POLICY_XML}")
    assert POLICY_XML in xml
    k = kiln_factory(xml=xml, ports=ports)
    k.playback_port = playback_port  # type: ignore[attr-defined]
    return k


def now_ms() -> int:
    return int(time.time() * 1000)


def journal(k: KilnProcess, event_type: str) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "show", "-d", str(k.data_dir), "--json",
                          "--type", event_type], capture_output=True, text=True, timeout=30, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def player_url(k: KilnProcess, signed: str) -> str:
    """The signed ``srt://default/app/cam?...`` as the streamid, scheme dropped and percent-encoded."""
    port = k.playback_port  # type: ignore[attr-defined]
    streamid = quote(signed.removeprefix("srt://"), safe="")
    return f"srt://127.0.0.1:{port}?mode=caller&latency=200000&passphrase={PASSPHRASE}&streamid={streamid}"


def pull_argv(url: str, out: Path, seconds: float) -> list[str]:
    return [FFMPEG, *QUIET, "-y", "-i", url, "-t", str(seconds), "-c", "copy", "-f", "mpegts", str(out)]


def test_signed_player_plays_and_unsigned_is_refused_and_journaled(
        kiln: KilnProcess, test_flv: Path, peer_dir: Path, tmp_path: Path) -> None:
    source = publish_cam(kiln, test_flv, peer_dir)
    try:
        good_out, bad_out = tmp_path / "signed.ts", tmp_path / "unsigned.ts"
        signed = ome_sign("srt://default/app/cam", KEY, {"url_expire": now_ms() + 60_000})
        good = subprocess.run(pull_argv(player_url(kiln, signed), good_out, 3), capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        assert good.returncode == 0, good.stderr[-2000:]
        assert media_duration(good_out) >= 2.5

        bad = subprocess.run(pull_argv(player_url(kiln, "srt://default/app/cam"), bad_out, 3),
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert bad.returncode != 0 or not bad_out.exists() or bad_out.stat().st_size == 0
        kiln.wait_for(lambda: srt_connections(kiln) == 0, what="the refused caller's connection released")

        def denied() -> list[dict[str, Any]]:
            return [e["payload"] for e in journal(kiln, "AdmissionDenied") if e["payload"]["protocol"] == "SRT"]

        [ev] = kiln.wait_for(denied, what="SRT playback denial journaled")
        assert (ev["direction"], ev["stream"], ev["rule"], ev["reason"]) == (
            "outgoing", "cam", "SignedPolicy", "no signature in the URL")
        assert ev["url"] == "srt://default/app/cam"
        kiln.wait_for_log("srt playback denied vhost=default app=app stream=cam peer=127.0.0.1:",
                          "reason=no signature in the URL")
    finally:
        source.stop()


def test_stream_expire_cuts_a_playing_caller(kiln: KilnProcess, test_flv: Path, peer_dir: Path,
                                             tmp_path: Path) -> None:
    source = publish_cam(kiln, test_flv, peer_dir)
    signed = ome_sign("srt://default/app/cam", KEY, {"url_expire": now_ms() + 60_000,
                                                     "stream_expire": now_ms() + 5_000})
    out = tmp_path / "leased.ts"
    player = Peer.spawn("ffmpeg-srt-leased", pull_argv(player_url(kiln, signed), out, 60), peer_dir)
    started = time.monotonic()
    try:
        kiln.wait_for(lambda: srt_connections(kiln) == 1, what="the signed caller plays")
        kiln.wait_for(lambda: srt_connections(kiln) == 0, timeout=30, what="the lease cut the caller")
        assert time.monotonic() - started < 20
        kiln.wait_for_log("srt playback lease expired vhost=default app=app stream=cam")
        assert 2.0 <= media_duration(out) < 20  # it played until the lease passed, not the asked 60 s
    finally:
        player.stop()
        source.stop()
    assert journal(kiln, "AdmissionDenied") == []

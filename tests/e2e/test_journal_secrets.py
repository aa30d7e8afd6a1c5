"""Secrets a user gives Kiln (a push's stream key, an SRT passphrase, a camera's password) stay out of
``kiln journal tail`` and out of Kiln's log, while the journal keeps them for replay (issue 20, item 4)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.kiln_process import KilnProcess
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.nginx_rtmp import NginxRtmp
from tests.peers.ports import free_udp_port
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"
KEY = "sk_live_7Qv2pX9mZr"
PASSPHRASE = "srt-passphrase-4f8a"
CAMERA_PASSWORD = "camPw0rd9"


@pytest.fixture
def source(kiln: KilnProcess, test_flv: Path, peer_dir: Path) -> Iterator[Peer]:
    pub = publish_rtmp(f"rtmp://127.0.0.1:{kiln.ports.rtmp}/app/src", test_flv, loop=True, log_dir=peer_dir)
    kiln.wait_for(lambda: "src" in kiln.api.get(f"{APP}/streams").json()["response"], what="source stream")
    yield pub
    pub.stop()


def journal(kiln: KilnProcess, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiln.cli", "journal", *argv, "-d", str(kiln.data_dir)],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))


def test_stream_keys_passphrases_and_passwords_are_not_printed(kiln: KilnProcess, source: Peer,
                                                               nginx_rtmp: NginxRtmp) -> None:
    r = kiln.api.post(f"{APP}:startPush", json={"id": "yt", "stream": {"name": "src"}, "protocol": "rtmp",
                                                "url": f"rtmp://127.0.0.1:{nginx_rtmp.port}/live", "streamKey": KEY})
    assert r.status_code == 200, r.text
    assert r.json()["response"]["streamKey"] == KEY  # OME's push object shows it: the API keeps OME's shape
    nginx_rtmp.wait_publishing(KEY)
    nobody = free_udp_port()  # an SRT destination that never answers: the push retries and logs why
    r = kiln.api.post(f"{APP}:startPush", json={"id": "relay", "stream": {"name": "src"}, "protocol": "srt",
                                                "url": f"srt://127.0.0.1:{nobody}?passphrase={PASSPHRASE}",
                                                "streamKey": KEY})
    assert r.status_code == 200, r.text
    kiln.api.post(f"{APP}/streams", json={"name": "cam", "urls": [f"rtsp://admin:{CAMERA_PASSWORD}@127.0.0.1:1/cam"]})
    kiln.wait_for(lambda: "srt push connect failed" in kiln.log_path.read_text(errors="replace"), timeout=30,
                  what="the SRT push's failure logged")
    assert kiln.api.post(f"{APP}:stopPush", json={"id": "yt"}).status_code == 200

    tail = journal(kiln, "tail", "-n", "1000")
    assert tail.returncode == 0 and "PushCreated" in tail.stdout
    for secret in (KEY, PASSPHRASE, CAMERA_PASSWORD):
        assert secret not in tail.stdout
    assert "passphrase=***" in tail.stdout and '"stream_key":"***"' in tail.stdout
    revealed = journal(kiln, "show", "--reveal", "--type", "PushCreated")
    assert revealed.returncode == 0 and KEY in revealed.stdout and PASSPHRASE in revealed.stdout

    # Kiln runs with --log-level debug here; the pull's and the push's retries log on their own threads
    log = kiln.wait_for_log(f"srt push connect failed url=srt://127.0.0.1:{nobody}?passphrase=***",
                            "url=rtsp://admin:***@127.0.0.1:1/cam")
    leaked = [line for line in log.splitlines() if any(s in line for s in (KEY, PASSPHRASE, CAMERA_PASSWORD))]
    assert leaked == []

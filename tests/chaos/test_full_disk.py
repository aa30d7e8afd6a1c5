"""A full disk under a live Kiln: commands are refused with 507 in OME's envelope (none acknowledged and
lost), live media keeps flowing (LL-HLS advances, a new publisher starts), and Kiln takes commands
again once space comes back, without a restart. The data dir is a 12 MiB tmpfs in a mount namespace
the test creates (we run as root); a holder process keeps the namespace, so Kiln can be killed and
started again in it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.kiln_process import KilnProcess, Ports, server_xml
from tests.peers.ffmpeg import publish_rtmp
from tests.peers.ports import wait_until
from tests.peers.process import Peer

pytestmark = pytest.mark.e2e

TMPFS_BYTES = 12 * 1024 * 1024


@pytest.fixture
def namespace(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """(pid of a process holding a private mount namespace, the data dir mounted as tmpfs in it)."""
    if not shutil.which("unshare") or not shutil.which("nsenter"):
        pytest.fail("unshare and nsenter (util-linux) are needed")
    data = tmp_path / "kiln" / "data"
    data.mkdir(parents=True)
    script = f'mount -t tmpfs -o size={TMPFS_BYTES} kiln-full "$0" && echo mounted && exec sleep 3600'
    holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(data)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()
        if b"mounted" not in line:
            pytest.fail(f"could not mount a tmpfs in a new mount namespace: {holder.communicate(timeout=5)!r}")
        yield holder.pid, data
    finally:
        holder.kill()
        holder.wait(10)


def inside(pid: int, path: Path) -> Path:
    """``path`` as the processes of ``pid``'s mount namespace see it."""
    return Path(f"/proc/{pid}/root{path}")


def fill(path: Path) -> int:
    """Write zeros to ``path`` until the file system says ENOSPC; bytes written."""
    written = 0
    block = b"\0" * 65536
    with open(path, "wb", buffering=0) as fh:
        while True:
            try:
                n = fh.write(block)
            except OSError:
                break
            written += n or 0
            if not n:
                break
    return written


def last_part(http: httpx.Client, base: str) -> str:
    """The newest LL-HLS part of the stream's video chunklist ("" before there is one)."""
    master = http.get(f"{base}/llhls.m3u8").text
    videos = [u for u in re.findall(r"^[^#\s].*$", master, re.M) if "video" in u]
    if not videos:
        return ""
    origin = base.split("/app/")[0]
    playlist = http.get(f"{origin}{videos[0]}").text
    parts = re.findall(r'#EXT-X-PART:.*URI="([^"]+)"', playlist)
    return parts[-1] if parts else ""


def test_a_full_disk_refuses_commands_keeps_media_flowing_and_recovers(
        tmp_path: Path, namespace: tuple[int, Path], test_flv: Path, peer_dir: Path) -> None:
    holder, data = namespace
    ports = Ports()
    kiln = KilnProcess(data.parent, server_xml(ports, tmp_path / "records"), ports)
    kiln.launcher = ["nsenter", "-t", str(holder), "-m", "--"]
    publishers: list[Peer] = []
    try:
        kiln.start()
        assert kiln.proc is not None
        publishers.append(publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/cam", test_flv, loop=True,
                                       log_dir=peer_dir))
        base = f"http://127.0.0.1:{ports.llhls}/app/cam"
        http = httpx.Client(timeout=15)
        kiln.wait_for(lambda: http.get(f"{base}/llhls.m3u8").status_code == 200 and last_part(http, base),
                      timeout=30, what="LL-HLS of cam")
        assert kiln.api.post("/v1/vhosts", json=[{"name": "before"}]).status_code == 200

        filler = inside(holder, data / "filler")
        assert fill(filler) > 0
        acknowledged, refusal = ["before"], None
        for n in range(300):
            r = kiln.api.post("/v1/vhosts", json=[{"name": f"full{n}"}])
            if r.status_code == 200:
                acknowledged.append(f"full{n}")
                continue
            refusal = r
            break
        assert refusal is not None, "the disk never filled up"
        assert refusal.status_code == 507, refusal.text
        assert refusal.json() == {"statusCode": 507, "message": "[HTTP] Could not journal the command: the data "
                                  "directory's disk is full (507)"}
        for _ in range(3):  # and it stays refused, other kinds of command too, while the disk is full
            assert kiln.api.post("/v1/vhosts", json=[{"name": "refused"}]).status_code == 507
            assert kiln.api.post("/v1/vhosts/default/apps/app:startPush", json={
                "id": "p", "stream": {"name": "cam"}, "protocol": "rtmp", "url": "rtmp://127.0.0.1:1/x"}
            ).status_code == 507
            time.sleep(0.3)
        # reads and live media go on: the GETs answer, LL-HLS keeps cutting parts, a new publisher starts
        assert kiln.api.get("/v1/vhosts").json()["response"] == ["default", *acknowledged]
        assert kiln.api.get("/v1/vhosts/default/apps/app:pushes").status_code == 200
        first = last_part(http, base)
        kiln.wait_for(lambda: last_part(http, base) not in ("", first), timeout=15, what="LL-HLS moving on")
        publishers.append(publish_rtmp(f"rtmp://127.0.0.1:{ports.rtmp}/app/late", test_flv, loop=True,
                                       log_dir=peer_dir))
        kiln.wait_for(lambda: "late" in kiln.api.get("/v1/vhosts/default/apps/app/streams").json()["response"],
                      timeout=30, what="a stream started while the disk is full")
        assert kiln.proc.poll() is None

        filler.unlink()  # space comes back: commands are taken again, with no restart

        def accepted() -> bool:
            return kiln.api.post("/v1/vhosts", json=[{"name": "after"}]).status_code == 200
        wait_until(accepted, 15, "a command accepted once space is back")
        acknowledged.append("after")

        kiln.wait_for_log("journal reserve released")  # Kiln's log thread writes it: in before the kill -9
        kiln.kill9()  # everything acknowledged is durable: kill -9 and start again in the same namespace
        kiln.start()
        assert kiln.api.get("/v1/vhosts").json()["response"] == ["default", *acknowledged]
        verify = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "verify", "-d",
                                 str(inside(holder, data))], capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        log = kiln.log_path.read_text(errors="replace")
        assert "journal reserve released" in log and "journal write failed" not in log
        http.close()
    finally:
        for peer in publishers:
            peer.stop()
        kiln.close()

"""Kiln's log output as an operator's setup meets it: a stderr that nobody reads (``kiln serve 2>&1 | less``
left paused, a container runtime logging in blocking mode) must not stop the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.kiln_process import TOKEN, Ports, basic_auth, server_xml

pytestmark = pytest.mark.e2e

APP = "/v1/vhosts/default/apps/app"
PAIRS = 1_000  # each logs two INFO lines; the pipe (64 KiB) filled after 549 pairs when the loop wrote them


def test_a_stderr_nobody_reads_does_not_stop_the_api(tmp_path: Path) -> None:
    ports = Ports()
    config = tmp_path / "Server.xml"
    config.write_text(server_xml(ports, tmp_path / "records"))
    argv = [sys.executable, "-m", "kiln.cli", "serve", "-c", str(config), "-d", str(tmp_path / "data")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{ports.api}", headers={"Authorization": basic_auth(TOKEN)},
                          timeout=10) as api:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None and time.monotonic() < deadline, "kiln did not start"
                try:
                    if api.get("/v1/version", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            for i in range(PAIRS):  # a hung API raises httpx.ReadTimeout here
                started = api.post(f"{APP}:startPush", json={"id": f"p{i}", "stream": {"name": "src"},
                                                             "protocol": "rtmp", "url": "rtmp://127.0.0.1:9/app",
                                                             "streamKey": "k"})
                stopped = api.post(f"{APP}:stopPush", json={"id": f"p{i}"})
                assert (started.status_code, stopped.status_code) == (200, 200), (i, started.text, stopped.text)
            assert api.post(f"{APP}:pushes", json={}).json()["response"] == []
        os.killpg(proc.pid, signal.SIGTERM)  # shutdown must not wait for stderr for long either
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        assert proc.stderr is not None
        proc.stderr.close()

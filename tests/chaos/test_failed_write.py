"""A journal write that fails (not a full disk: an I/O error, here EFBIG) under a live Kiln: the command it
carried answers a 500 that names the failure, every later command is refused the same way (nothing acknowledged
that is not in the journal, and no later decision built on the failed one), GETs and ``GET /v1/status`` say what
happened, and a restart shows exactly what was acknowledged.

The failure is real: ``prlimit`` lowers the running Kiln's RLIMIT_FSIZE to just above its journal segment's size,
so the next commit's ``write`` is cut short at that size and the one after fails with EFBIG (Python ignores
SIGXFSZ). Kiln's log goes through a pipe (``cat`` writes the file), so only Kiln's own files meet the limit."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kiln.journal.segments import list_segments
from tests.e2e.kiln_process import KilnProcess, Ports, server_xml

pytestmark = pytest.mark.e2e

PUSH = {"id": "p", "stream": {"name": "cam"}, "protocol": "rtmp", "url": "rtmp://127.0.0.1:1/x"}


def kiln_pid(launcher_pid: int) -> int:
    """The ``kiln serve`` process under the launcher's shell."""
    children = Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children").read_text().split()
    for pid in children:
        if "kiln.cli" in Path(f"/proc/{pid}/cmdline").read_text():
            return int(pid)
    raise AssertionError(f"no kiln process under {launcher_pid}: {children}")


def stop(kiln: KilnProcess) -> int:
    """SIGTERM to Kiln itself (the shell does not pass it on); its exit status, through the shell's pipefail."""
    assert kiln.proc is not None
    os.kill(kiln_pid(kiln.proc.pid), signal.SIGTERM)
    return kiln.proc.wait(30)


def set_file_size_limit(pid: int, limit: str) -> None:
    subprocess.run(["prlimit", f"--pid={pid}", f"--fsize={limit}"], check=True, timeout=10)


def test_a_failed_journal_write_refuses_that_command_and_every_later_one_until_a_restart(tmp_path: Path) -> None:
    if not shutil.which("prlimit"):
        pytest.fail("prlimit (util-linux) is needed")
    ports = Ports()
    kiln = KilnProcess(tmp_path, server_xml(ports, tmp_path / "records"), ports)
    # Kiln writes its log to a pipe, not to a file; the shell exits with Kiln's status
    kiln.launcher = ["bash", "-c", 'set -o pipefail; "$@" 2>&1 | cat', "bash"]
    try:
        kiln.start()
        assert kiln.proc is not None
        assert kiln.api.post("/v1/vhosts", json=[{"name": "before"}]).status_code == 200
        [(_, segment)] = list_segments(kiln.data_dir / "journal")
        pid = kiln_pid(kiln.proc.pid)
        set_file_size_limit(pid, f"{segment.stat().st_size + 16}:")  # soft limit only: it can be raised again
        size_before = segment.stat().st_size

        lost = kiln.api.post("/v1/vhosts", json=[{"name": "lost"}])
        assert lost.status_code == 500, lost.text
        message = lost.json()["message"]
        assert message.startswith("[HTTP] Could not journal the command: the journal stopped after a failed write "
                                  "([Errno 27] File too large); restart Kiln once the disk is fixed"), message
        status = kiln.api.get("/v1/status").json()["response"]["journal"]
        assert "File too large" in status["failure"] and status["lastSeq"] >= 1
        kiln.wait_for_log("journal write failed error=[Errno 27] File too large; the journal stops")
        assert segment.stat().st_size == size_before  # the cut-short write was rolled back

        set_file_size_limit(pid, "unlimited:")  # the disk is fine again: the journal stays stopped until a restart
        for method, path, body in (("POST", "/v1/vhosts", [{"name": "later"}]),
                                   ("POST", "/v1/vhosts/default/apps/app:startPush", PUSH),
                                   ("DELETE", "/v1/vhosts/before", None)):
            refused = kiln.api.request(method, path, json=body)
            assert refused.status_code == 500, refused.text
            assert "the journal stopped after a failed write" in refused.json()["message"]
        # reads go on and show only what is durable
        assert kiln.api.get("/v1/vhosts").json()["response"] == ["default", "before"]
        assert kiln.api.post("/v1/vhosts/default/apps/app:pushes", json={}).json()["response"] == []

        assert stop(kiln) == 0  # a clean stop: its ServerStopped is refused too (logged)
        kiln.wait_for_log("could not journal shutdown")
        kiln.start()
        assert kiln.api.get("/v1/vhosts").json()["response"] == ["default", "before"]
        assert kiln.api.get("/v1/status").json()["response"]["journal"]["failure"] is None
        assert kiln.api.post("/v1/vhosts", json=[{"name": "lost"}]).status_code == 200  # never taken before
        verify = subprocess.run([sys.executable, "-m", "kiln.cli", "journal", "verify", "-d", str(kiln.data_dir)],
                                capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert stop(kiln) == 0
    finally:
        if kiln.proc is not None and kiln.proc.poll() is None:
            kiln.kill9()  # the whole process group: the shell, Kiln and cat
        kiln.api.close()

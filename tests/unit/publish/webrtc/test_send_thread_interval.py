"""The GIL switch interval is short only while a WebRTC send thread runs (sender._SwitchInterval).

Run in a fresh interpreter: other tests' feeds in this process may run send threads of their own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]

SCENARIO = textwrap.dedent("""
    import sys
    from kiln.media.publish.webrtc.sender import SWITCH_INTERVAL_S, SendThread

    before = sys.getswitchinterval()
    assert before > SWITCH_INTERVAL_S, before
    sent = []
    first = SendThread("t1", sent.append, max_frames=4)
    second = SendThread("t2", sent.append, max_frames=4)
    first.start()
    second.start()
    assert sys.getswitchinterval() == SWITCH_INTERVAL_S
    assert first.put(1) and second.put(2)
    first.stop()
    assert first.join(5)
    assert sys.getswitchinterval() == SWITCH_INTERVAL_S, "the second still runs"
    second.stop()
    assert second.join(5)
    assert sys.getswitchinterval() == before, sys.getswitchinterval()
    assert sorted(sent) == [1, 2], sent
    print("ok")
""")


def test_switch_interval_is_short_while_send_threads_run_and_restored_after() -> None:
    done = subprocess.run([sys.executable, "-c", SCENARIO], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr

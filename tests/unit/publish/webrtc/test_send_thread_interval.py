"""The GIL switch interval is short only while a WebRTC send thread runs (sender._SwitchInterval)."""

from __future__ import annotations

import sys

from kiln.media.publish.webrtc.sender import SWITCH_INTERVAL_S, SendThread


def test_switch_interval_is_short_while_send_threads_run_and_restored_after() -> None:
    before = sys.getswitchinterval()
    assert before > SWITCH_INTERVAL_S
    sent: list[int] = []
    first: SendThread[int] = SendThread("t1", sent.append, max_frames=4)
    second: SendThread[int] = SendThread("t2", sent.append, max_frames=4)
    first.start()
    second.start()
    try:
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S
        assert first.put(1) and second.put(2)
        first.stop()
        assert first.join(5)
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S  # the second still runs
    finally:
        second.stop()
        assert second.join(5)
    assert sys.getswitchinterval() == before
    assert sorted(sent) == [1, 2]

"""SRT callers' bytes cross from the listener thread to the event loop in one wake-up per pass, in order,
with a caller's end behind its last bytes; a closed loop or a wedged one never loses order or grows memory."""

from __future__ import annotations

import asyncio
import threading

import pytest

from kiln.media.ingest.demux.tsreader import TsDemuxWorker, TsHooks
from kiln.media.ingest.srt import ingest as srt_ingest
from kiln.media.ingest.srt.ingest import LoopHandOff


class Recorder(TsDemuxWorker):
    """A worker whose feed is only looked at: what was pushed and finished, from which thread."""

    def __init__(self, label: str, seen: list[tuple[str, object, int]]) -> None:
        super().__init__(label, TsHooks(lambda kinds: None, lambda reason: None))  # type: ignore[arg-type,return-value]
        self.seen = seen

    def push(self, data: bytes) -> bool:
        self.seen.append((self.label, data, threading.get_ident()))
        return True

    def finish(self, reason: str) -> None:
        self.seen.append((self.label, f"end:{reason}", threading.get_ident()))


def test_a_pass_of_several_callers_is_one_loop_wake_up_in_order() -> None:
    seen: list[tuple[str, object, int]] = []
    a, b = Recorder("a", seen), Recorder("b", seen)

    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        handoff = LoopHandOff(loop)
        wakeups = 0
        original = handoff.run

        def counted() -> None:
            nonlocal wakeups
            wakeups += 1
            original()

        handoff.run = counted  # type: ignore[method-assign]

        def listener_pass() -> None:  # what the listener thread does in one pass over two callers
            handoff.put(a, b"a1")
            handoff.put(b, b"b1")
            handoff.put(a, b"a2")
            handoff.put(a, None, "disconnected")

        thread = threading.Thread(target=listener_pass)
        thread.start()
        thread.join()
        for _ in range(1000):  # up to ~10 s: a loaded machine
            if len(seen) == 4:
                break
            await asyncio.sleep(0.01)
        return wakeups, threading.get_ident()

    wakeups, loop_thread = asyncio.run(main())
    assert [(label, item) for label, item, _ in seen] == [("a", b"a1"), ("b", b"b1"), ("a", b"a2"),
                                                         ("a", "end:disconnected")]
    assert wakeups == 1 and {thread for _, _, thread in seen} == {loop_thread}


def test_a_closed_loop_hands_over_on_the_calling_thread() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    seen: list[tuple[str, object, int]] = []
    handoff = LoopHandOff(loop)
    handoff.put(Recorder("a", seen), b"x")
    handoff.put(Recorder("a", seen), None, "server shutdown")
    assert [item for _, item, _ in seen] == [b"x", "end:server shutdown"]


def test_a_wedged_loop_drops_bytes_beyond_the_bound(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(srt_ingest, "HANDOFF_MAX_BYTES", 10)
    loop = asyncio.new_event_loop()  # never run: nothing is taken
    try:
        seen: list[tuple[str, object, int]] = []
        worker = Recorder("a", seen)
        handoff = LoopHandOff(loop)
        handoff.put(worker, b"12345678")
        handoff.put(worker, b"too much")
        handoff.put(worker, None, "disconnected")  # an end is never dropped
        assert handoff.dropped_bytes == 8 and "bytes dropped" in caplog.text
        handoff.run()
        assert [item for _, item, _ in seen] == [b"12345678", "end:disconnected"]
    finally:
        loop.close()

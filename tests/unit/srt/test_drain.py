"""The listener's read loop (kiln/media/net/srt/drain.py) against a scripted libsrt: where it stops, what it returns."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

from kiln.media.net.srt.abi import EPOLL_ERR, EPOLL_IN, SRT_ERROR, SockOpt
from kiln.media.net.srt.drain import drain

SLOT = 1500


@dataclass
class Caller:
    """``ready`` messages libsrt would hand out, then "nothing ready" (or a failure)."""

    messages: list[bytes]
    fail_after: bool = False  # once drained, a read fails instead of libsrt saying "not ready" first
    flags: ctypes.c_int32 = field(default_factory=lambda: ctypes.c_int32(0))
    reads: int = 0
    asks: int = 0

    def recv(self, handle: int, address: int, size: int) -> int:
        assert handle == 7 and size == SLOT
        self.reads += 1
        if not self.messages:
            return SRT_ERROR
        data = self.messages.pop(0)
        ctypes.memmove(address, data, len(data))
        return len(data)

    def ask(self, handle: int, option: int, value_at: int, size_at: int) -> int:
        assert handle == 7 and option == SockOpt.EVENT and value_at == ctypes.addressof(self.flags)
        self.asks += 1
        ready = bool(self.messages) or self.fail_after
        ctypes.c_int32.from_address(value_at).value = (EPOLL_IN if ready else 0) | EPOLL_ERR
        return 0


def run(caller: Caller, room: int = 64 * SLOT, max_messages: int = 512) -> tuple[bytes, int, bool]:
    buf = ctypes.create_string_buffer(room)
    size = ctypes.c_int(4)
    used, count, failed = drain(caller.recv, caller.ask, caller.flags, 7, ctypes.addressof(buf), room, SLOT,
                                max_messages, int(SockOpt.EVENT), ctypes.addressof(caller.flags),
                                ctypes.addressof(size))
    return buf.raw[:used], count, failed


def test_reads_every_ready_message_back_to_back_and_stops_when_libsrt_says_none_is_left() -> None:
    messages = [bytes([i]) * (1316 - i) for i in range(5)]
    caller = Caller(list(messages))
    data, count, failed = run(caller)
    assert (data, count, failed) == (b"".join(messages), 5, False)
    assert caller.reads == 5  # no sixth read that libsrt would answer with "nothing ready"


def test_a_failing_read_stops_the_pass_and_keeps_what_was_read() -> None:
    caller = Caller([b"a" * 1316, b"b" * 1316], fail_after=True)
    data, count, failed = run(caller)
    assert (data, count, failed) == (b"a" * 1316 + b"b" * 1316, 2, True)


def test_nothing_ready_at_all_is_a_failed_first_read() -> None:
    assert run(Caller([])) == (b"", 0, True)


def test_stops_at_max_messages_and_before_the_buffer_runs_out() -> None:
    many = [b"x" * 1316] * 10
    assert run(Caller(list(many)), max_messages=3)[1] == 3
    # after 3 messages 1,499 bytes are left: less than a read's slot, so no fourth read
    data, count, _ = run(Caller(list(many)), room=3 * 1316 + SLOT - 1)
    assert count == 3 and len(data) == 3 * 1316

"""The SRT listener's per-message read loop, alone in a module so that it can be compiled (setup.py).

A 3 Mbit/s caller sends about 285 messages of 1,316 bytes a second, and every one costs two libsrt calls
(``srt_recvmsg`` and the ``SRTO_EVENT`` question, see ``SrtSocket.try_recv_into``). Interpreted, the loop
around those calls was the largest part of the listener thread's own CPU (perf: ``_PyEval_EvalFrameDefault``
about 40 % of the thread); compiled, what is left is the calls themselves. The calls stay ctypes functions
passed in, so this module needs no libsrt of its own and runs the same interpreted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

from kiln.media.net.srt.abi import EPOLL_IN, SRT_ERROR

IN: Final = EPOLL_IN
ERROR: Final = SRT_ERROR


class Int32Slot(Protocol):
    """A ``ctypes.c_int32``: what ``srt_getsockflag`` wrote at its address."""

    @property
    def value(self) -> int: ...


def drain(recv: Callable[[int, int, int], int], ask: Callable[[int, int, int, int], int], ready: Int32Slot,
          handle: int, base: int, room: int, slot: int, max_messages: int, option: int, value_at: int,
          size_at: int) -> tuple[int, int, bool]:
    """Read ready messages of socket ``handle`` back to back into the buffer at ``base`` (``room`` bytes, each
    read given ``slot`` bytes) until libsrt says none is left ready (``ask(handle, option, value_at, size_at)``
    fills ``ready`` with the socket's epoll flags) or ``max_messages`` were read.

    Returns (bytes, messages, failed): ``failed`` when a read returned ``SRT_ERROR``; the caller reads the
    thread's error code (nothing ready, or the connection broke)."""
    used = 0
    count = 0
    while count < max_messages and room - used >= slot:
        n = recv(handle, base + used, slot)
        if n == ERROR:
            return used, count, True
        used += n
        count += 1
        if ask(handle, option, value_at, size_at) == 0 and not ready.value & IN:
            break  # drained (or broken: the next pass's epoll reports it and the read then fails)
    return used, count, False

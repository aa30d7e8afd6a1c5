"""``SrtSocket``: one libsrt socket with Python manners (exceptions, context manager, idempotent close).

Used by the sender (a blocking caller) and the listener (a non-blocking listening socket and the
callers it accepts). Methods raise ``SrtError`` with libsrt's text; ``try_recv``/``try_accept``
return ``None`` instead of raising when a non-blocking socket has nothing ready.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Mapping
from types import TracebackType

from kiln.media.net.srt import abi, libsrt
from kiln.media.net.srt.abi import EPOLL_IN, SockOpt, SockStatus
from kiln.media.net.srt.errors import ErrorCode, SrtError
from kiln.media.net.srt.options import OptionSpec, OptionValue, apply_option, apply_options, parse_options
from kiln.media.net.srt.stats import SrtStats

__all__ = ["SrtError", "SrtSocket"]

RECV_BUFFER = 1500  # above the largest live payload (1456)


class _FlagSlot:
    """An int32 option value and its length, at fixed addresses (``srt_getsockflag`` fills them)."""

    __slots__ = ("size", "size_at", "value", "value_at")

    def __init__(self) -> None:
        self.value = ctypes.c_int32(0)
        self.size = ctypes.c_int(4)
        self.value_at = ctypes.addressof(self.value)
        self.size_at = ctypes.addressof(self.size)


class SrtSocket:
    def __init__(self, handle: int | None = None) -> None:
        self._handle = libsrt.create_socket() if handle is None else handle
        self._closed = False
        self._lock = threading.Lock()
        self._buf = ctypes.create_string_buffer(RECV_BUFFER)
        self._connected_to: tuple[str, int] | None = None
        self._nonblocking_recv = False  # set_blocking(False) was called: receiving may keep the GIL
        self._event = _FlagSlot()

    @property
    def handle(self) -> int:
        """libsrt's socket id (not an OS file descriptor)."""
        return self._handle

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<SrtSocket {self._handle}{' closed' if self._closed else ''}>"

    def __enter__(self) -> SrtSocket:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        # A socket dropped without close() would stay open inside libsrt until exit.
        if not getattr(self, "_closed", True):
            self.close()

    def close(self) -> None:
        """Close once; later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        libsrt.close(self._handle)

    # -- options --------------------------------------------------------------------------------

    def set_options(self, options: Mapping[str, str]) -> None:
        """Set options given by name (``{"SRTO_LATENCY": "200"}``); ``ValueError`` names a bad one."""
        apply_options(self._handle, parse_options(options))

    def set_option(self, spec: OptionSpec, value: OptionValue) -> None:
        apply_option(self._handle, spec, value)

    def set_int(self, opt: SockOpt, value: int) -> None:
        libsrt.set_int(self._handle, opt, value)

    def set_bool(self, opt: SockOpt, value: bool) -> None:
        libsrt.set_bool(self._handle, opt, value)

    def set_str(self, opt: SockOpt, value: str) -> None:
        libsrt.set_str(self._handle, opt, value)

    def get_int(self, opt: SockOpt) -> int:
        return libsrt.get_int(self._handle, opt)

    def get_int64(self, opt: SockOpt) -> int:
        return libsrt.get_int64(self._handle, opt)

    def get_bool(self, opt: SockOpt) -> bool:
        return libsrt.get_bool(self._handle, opt)

    def get_str(self, opt: SockOpt) -> str:
        return libsrt.get_str(self._handle, opt)

    def set_blocking(self, blocking: bool) -> None:
        libsrt.set_bool(self._handle, SockOpt.RCVSYN, blocking)
        libsrt.set_bool(self._handle, SockOpt.SNDSYN, blocking)
        self._nonblocking_recv = not blocking

    @property
    def streamid(self) -> str:
        return libsrt.get_str(self._handle, SockOpt.STREAMID)

    # -- connection -----------------------------------------------------------------------------

    def bind(self, host: str, port: int) -> None:
        libsrt.bind(self._handle, host, port)

    def listen(self, backlog: int = 16) -> None:
        libsrt.listen(self._handle, backlog)

    def accept(self) -> tuple[SrtSocket, tuple[str, int]]:
        handle, peer = libsrt.accept(self._handle)
        return SrtSocket(handle), peer

    def try_accept(self) -> tuple[SrtSocket, tuple[str, int]] | None:
        """Non-blocking accept: ``None`` when no connection is waiting."""
        try:
            return self.accept()
        except SrtError as exc:
            if exc.code == ErrorCode.EASYNCRCV:
                return None
            raise

    def connect(self, host: str, port: int) -> None:
        libsrt.connect(self._handle, host, port)
        self._connected_to = (host, port)

    @property
    def state(self) -> SockStatus:
        return libsrt.getsockstate(self._handle)

    @property
    def peername(self) -> tuple[str, int]:
        # libsrt 1.5.1 answers srt_getpeername on a caller socket with success and an empty address
        # (it fills it in only for accepted sockets), so a caller reports where it connected to.
        peer = libsrt.getpeername(self._handle)
        if peer == ("", 0) and self._connected_to is not None:
            return self._connected_to
        return peer

    @property
    def sockname(self) -> tuple[str, int]:
        return libsrt.getsockname(self._handle)

    # -- data -----------------------------------------------------------------------------------

    def send(self, data: bytes) -> int:
        """Send one message (live mode: at most the payload size, 1316 bytes by default)."""
        return libsrt.sendmsg(self._handle, data)

    def recv(self) -> bytes:
        """Receive one message; raises ``SrtError`` on timeout, disconnect or an empty non-blocking socket."""
        n = libsrt.recvmsg_into(self._handle, self._buf)
        if n == abi.SRT_ERROR:
            raise libsrt.error("recv", self._handle)
        return self._buf.raw[:n]

    def try_recv(self) -> bytes | None:
        """Non-blocking receive: one message, or ``None`` when nothing is ready yet."""
        if self._nonblocking_recv:
            n = libsrt.recvmsg_nowait(self._handle, self._buf)
            if n != abi.SRT_ERROR:
                return ctypes.string_at(self._buf, n)
            if libsrt.last_error_code() == ErrorCode.EASYNCRCV:
                return None
            raise libsrt.error("recv", self._handle)
        n = libsrt.recvmsg_into(self._handle, self._buf)
        if n != abi.SRT_ERROR:
            return self._buf.raw[:n]
        err = libsrt.error("recv", self._handle)
        if err.code == ErrorCode.EASYNCRCV:
            return None
        raise err

    def try_recv_into(self, buf: ctypes.Array[ctypes.c_char], max_messages: int) -> tuple[int, int, SrtError | None]:
        """Non-blocking: every ready message (at most ``max_messages``, while ``RECV_BUFFER`` bytes are left)
        back to back into ``buf``. Returns (bytes, messages, the error that stopped it or None).

        After each message libsrt is asked whether another is ready (``SRTO_EVENT``) rather than read until
        it answers "nothing ready": that last read costs more than the question (a C++ exception inside
        libsrt, and a second wake-up of the connection's TSBPD thread)."""
        assert self._nonblocking_recv, "try_recv_into needs a non-blocking socket"
        base, room = ctypes.addressof(buf), len(buf)
        recv, handle = libsrt.nowait_receiver(), self._handle
        ask, event = libsrt.nowait_flag_reader(), self._event
        option, value_at, size_at, ready = int(SockOpt.EVENT), event.value_at, event.size_at, event.value
        used = count = 0
        while count < max_messages and room - used >= RECV_BUFFER:
            n = recv(handle, base + used, RECV_BUFFER)
            if n == abi.SRT_ERROR:
                if libsrt.last_error_code() == ErrorCode.EASYNCRCV:
                    break
                return used, count, libsrt.error("recv", handle)
            used += n
            count += 1
            if ask(handle, option, value_at, size_at) == 0 and not ready.value & EPOLL_IN:
                break  # drained (or broken: the next pass's epoll reports it and the read then fails)
        return used, count, None

    def stats(self, *, clear: bool = False) -> SrtStats:
        return SrtStats.from_perfmon(libsrt.bstats(self._handle, clear=clear))

"""Large fast-lane answers written into their socket by io_uring's kernel workers, so the copy runs beside the loop.

Why: at a part boundary with 1,000 LL-HLS viewers, the player port's one loop answers ~1,000 GETs of a ~200 kB
video part. The kernel's copy of each into its socket (on loopback also the receiver's TCP processing) costs
30-70 µs, and uvloop runs every write on the loop thread with the GIL held (its write path never releases it):
about 40 % of the loop's busy time in such a burst (py-spy, bench/llhls.py (e)). A Python thread cannot take it
over: it needs the GIL back after each ``writev``, and the busy loop wins it back first (measured: 4-16 ms p50
waiting per send, against 30 µs for the send). Here each answer is an ``IORING_OP_WRITEV`` run by the ring's
kernel workers (``IOSQE_ASYNC``), which never need the GIL; completions come back through an eventfd.

What keeps a connection's bytes right:
- Order: while a send is in flight the protocol's transport is a :class:`Gate`. Whatever the loop writes to
  that connection meanwhile (a pipelined answer, a 400 or 431, a close) is queued in it and replayed once the
  ring's bytes, and the remainder it could not send, are out.
- Partial writes: the socket is non-blocking; what the ring could not send (a full send buffer, EAGAIN) goes
  back to the transport, which buffers it and waits for the socket as for any answer, before anything queued.
- The descriptor: the ring writes to a ``dup`` made on the loop while the transport was open, closed once the
  kernel is done. A connection closed meanwhile (its number perhaps reused by a new connection) is never written
  through its old number: the dup still names the old socket, which lives until the dup is closed (libuv and
  asyncio remove a socket from epoll before they close it, so the dup leaves no stale registration).
- Only plain TCP transports (uvloop's, asyncio's) are offloaded, never TLS: their socket carries the bytes as is.
- The bodies' memory: each buffer is held with ``PyObject_GetBuffer`` until its completion is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import mmap
import os
import platform
import struct
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

OFFLOAD_MIN = 65536  # bytes of body: a video part (~200 kB) or segment; audio parts and playlists stay on the loop
_PLAIN_TRANSPORTS = ("TCPTransport", "_SelectorSocketTransport")  # uvloop's and asyncio's plain TCP transports


def socket_fd(transport: Any) -> int:
    """The socket descriptor a worker may write a plain-TCP transport's bytes to, or -1 (TLS, pipes, fakes)."""
    if type(transport).__name__ not in _PLAIN_TRANSPORTS or transport.get_extra_info("sslcontext") is not None:
        return -1
    sock = transport.get_extra_info("socket")
    try:
        return int(sock.fileno()) if sock is not None else -1
    except (OSError, AttributeError, ValueError):
        return -1


class Gate:
    """Stands in for a connection's transport while a worker writes to its socket: writes, closes and aborts are
    queued and replayed in order by :meth:`release`; after it, everything goes straight to the transport (an
    object that kept the gate, e.g. uvicorn's cycle of a pipelined request, still reaches it)."""

    __slots__ = ("real", "queued", "closed")

    def __init__(self, real: Any) -> None:
        self.real = real
        self.queued: list[tuple[str, Any]] | None = []
        self.closed = False  # a close or abort is queued

    def write(self, data: Any) -> None:
        if self.queued is None:
            self.real.write(data)
        else:
            self.queued.append(("write", data))

    def writelines(self, chunks: Any) -> None:
        if self.queued is None:
            self.real.writelines(chunks)
        else:
            self.queued.append(("writelines", list(chunks)))

    def close(self) -> None:
        if self.queued is None:
            self.real.close()
        else:
            self.closed = True
            self.queued.append(("close", None))

    def abort(self) -> None:
        if self.queued is None:
            self.real.abort()
        else:
            self.closed = True
            self.queued.append(("abort", None))

    def is_closing(self) -> bool:
        return self.closed or bool(self.real.is_closing())

    def get_write_buffer_size(self) -> int:
        size = int(self.real.get_write_buffer_size())
        for what, data in self.queued or ():
            if what == "write":
                size += len(data)
            elif what == "writelines":
                size += sum(len(chunk) for chunk in data)
        return size

    def __getattr__(self, name: str) -> Any:  # reading, pausing, extra info, protocol: the transport's own
        return getattr(self.real, name)

    def release(self) -> None:
        """Replay what was queued (writes dropped if the transport closed meanwhile), then pass through."""
        queued, self.queued = self.queued, None
        real = self.real
        for what, data in queued or ():
            if what == "close":
                real.close()
            elif what == "abort":
                real.abort()
            elif not real.is_closing():
                if what == "write":
                    real.write(data)
                else:
                    real.writelines(data)


class _PyBuffer(ctypes.Structure):
    """CPython's Py_buffer: a body's address, held (the object pinned) until the kernel is done with it."""

    _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.c_void_p), ("len", ctypes.c_ssize_t),
                ("itemsize", ctypes.c_ssize_t), ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
                ("format", ctypes.c_void_p), ("shape", ctypes.c_void_p), ("strides", ctypes.c_void_p),
                ("suboffsets", ctypes.c_void_p), ("internal", ctypes.c_void_p)]


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.POINTER(_PyBuffer)]
_release_buffer.restype = None

# linux/io_uring.h
_SYS_SETUP, _SYS_ENTER, _SYS_REGISTER = 425, 426, 427
_OP_WRITEV = 2
_SQE_ASYNC = 1 << 4  # run in the ring's kernel worker threads, never inline in the submitting (loop) thread
_OFF_SQ_RING, _OFF_CQ_RING, _OFF_SQES = 0, 0x8000000, 0x10000000
_FEAT_SINGLE_MMAP = 1
_REGISTER_EVENTFD, _REGISTER_IOWQ_MAX_WORKERS = 4, 19
_SQE = struct.Struct("<BBHiQQIIQHHiQQ")  # one 64-byte submission entry
_CQE = struct.Struct("<QiI")  # one 16-byte completion entry: user_data, res, flags
_U32 = struct.Struct("<I")
WORKERS = 1  # kernel threads writing at once: on 2 cores, 2 measured slower than 1 (they compete with the clients)
ENTRIES = 2048  # sends in flight at most (a part's GETs at a boundary); beyond that the loop writes

Done = Callable[[int, "OSError | None"], None]  # (bytes sent, the socket's error or None), on the loop


class Sender:
    """One loop's io_uring: each answer is a ``writev`` of (header block, body) on a dup of its socket, run by
    the kernel's worker threads (``IOSQE_ASYNC``) on whichever core is free; completions come back through an
    eventfd the loop reads. Why io_uring, not a Python thread: uvloop writes with the GIL held, and a thread that
    writes must take the GIL back after each ``writev``; measured on the player port under a part's burst, a
    sending thread waited 4-16 ms (p50) for the GIL per send, against 30 µs for the send itself, because the busy
    loop takes it back first every time. The ring's workers never need the GIL."""

    def __init__(self, loop: asyncio.AbstractEventLoop, entries: int = ENTRIES, workers: int = WORKERS) -> None:
        if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
            raise OSError(errno.ENOSYS, "io_uring sends need Linux on x86-64 (ring ordering is x86's)")
        params = ctypes.create_string_buffer(120)
        fd = _syscall(_SYS_SETUP, entries, params)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"io_uring_setup: {os.strerror(err)}")
        self.loop = loop
        self.ring = fd
        self.maps: list[mmap.mmap] = []
        self.efd = -1
        self.jobs: list[tuple[int, Done, int] | None] = []
        self.unsubmitted = 0
        try:
            sq_entries, cq_entries, _flags, _cpu, _idle, features = struct.unpack_from("<6I", params, 0)
            sq_head, sq_tail, sq_mask, _n, _f, _dropped, sq_array = struct.unpack_from("<7I", params, 40)
            cq_head, cq_tail, cq_mask, _n, _overflow, cqes = struct.unpack_from("<6I", params, 80)
            sq_size, cq_size = sq_array + sq_entries * 4, cqes + cq_entries * _CQE.size
            if features & _FEAT_SINGLE_MMAP:
                sq = cq = self._map(max(sq_size, cq_size), _OFF_SQ_RING)
            else:
                sq, cq = self._map(sq_size, _OFF_SQ_RING), self._map(cq_size, _OFF_CQ_RING)
            self.sq, self.cq, self.sqes = sq, cq, self._map(sq_entries * _SQE.size, _OFF_SQES)
            self.sq_tail, self.sq_mask, self.sq_array = sq_tail, _U32.unpack_from(sq, sq_mask)[0], sq_array
            self.cq_head, self.cq_tail, self.cqes = cq_head, cq_tail, cqes
            self.cq_mask = _U32.unpack_from(cq, cq_mask)[0]
            del sq_head
            self.efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._register(_REGISTER_EVENTFD, (ctypes.c_int * 1)(self.efd), 1)
            # socket writes are unbounded work: at most ``workers`` kernel threads write at once
            self._register(_REGISTER_IOWQ_MAX_WORKERS, (ctypes.c_uint * 2)(0, workers), 2)
        except BaseException:
            self.close()
            raise
        n = min(sq_entries, cq_entries // 2 or 1)
        self.iovecs = (ctypes.c_uint64 * (4 * n))()  # per slot two iovecs (base, length)
        self.iov_base = ctypes.addressof(self.iovecs)
        self.buffers = (_PyBuffer * (2 * n))()
        self.free = list(range(n - 1, -1, -1))
        self.jobs = [None] * n
        loop.add_reader(self.efd, self._drain)

    def _map(self, size: int, offset: int) -> mmap.mmap:
        found = mmap.mmap(self.ring, size, mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0),
                          mmap.PROT_READ | mmap.PROT_WRITE, offset=offset)
        self.maps.append(found)
        return found

    def _register(self, opcode: int, arg: Any, count: int) -> None:
        if _syscall(_SYS_REGISTER, self.ring, opcode, arg, count) < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"io_uring_register {opcode}: {os.strerror(err)}")

    def in_flight(self) -> int:
        return sum(1 for job in self.jobs if job is not None)

    def submit(self, fd: int, block: bytes, body: Any, done: Done) -> bool:
        """Write ``block`` then ``body`` to ``fd`` (a dup this sender closes once the kernel is done) off the
        loop; ``done(sent, error)`` runs on the loop after. False (``fd`` untouched): no slot free, write it
        yourself."""
        if not self.free:
            return False
        slot = self.free.pop()
        buffers, iov, at = self.buffers, self.iovecs, 4 * slot
        first, second = buffers[2 * slot], buffers[2 * slot + 1]
        _get_buffer(block, ctypes.byref(first), 0)
        try:
            _get_buffer(body, ctypes.byref(second), 0)
        except BaseException:
            _release_buffer(ctypes.byref(first))
            self.free.append(slot)
            raise
        iov[at], iov[at + 1], iov[at + 2], iov[at + 3] = first.buf, first.len, second.buf, second.len
        self.jobs[slot] = (fd, done, first.len + second.len)
        sq = self.sq
        tail = _U32.unpack_from(sq, self.sq_tail)[0]
        index = tail & self.sq_mask
        _SQE.pack_into(self.sqes, index * _SQE.size, _OP_WRITEV, _SQE_ASYNC, 0, fd, 0, self.iov_base + 8 * at, 2, 0,
                       slot, 0, 0, 0, 0, 0)
        _U32.pack_into(sq, self.sq_array + 4 * index, index)
        _U32.pack_into(sq, self.sq_tail, (tail + 1) & 0xFFFFFFFF)  # x86: stores are seen in order
        self.unsubmitted += 1
        taken = _syscall(_SYS_ENTER, self.ring, self.unsubmitted, 0, 0, None, 0)
        if taken > 0:
            self.unsubmitted -= taken
        # else (EINTR, EAGAIN, EBUSY): the entry stays in the ring and goes with the next submit or drain
        return True

    def _drain(self) -> None:
        """Completions (eventfd readable): each send's buffers released, its dup closed, its ``done`` called."""
        try:
            os.read(self.efd, 8)
        except BlockingIOError:
            pass
        cq, mask, cqes = self.cq, self.cq_mask, self.cqes
        head = _U32.unpack_from(cq, self.cq_head)[0]
        tail = _U32.unpack_from(cq, self.cq_tail)[0]
        finished = []
        while head != tail:
            slot, res, _flags = _CQE.unpack_from(cq, cqes + _CQE.size * (head & mask))
            head = (head + 1) & 0xFFFFFFFF
            finished.append((slot, res))
        _U32.pack_into(cq, self.cq_head, head)
        if self.unsubmitted:
            taken = _syscall(_SYS_ENTER, self.ring, self.unsubmitted, 0, 0, None, 0)
            if taken > 0:
                self.unsubmitted -= taken
        for slot, res in finished:
            job = self.jobs[slot]
            if job is None:
                continue
            self.jobs[slot] = None
            fd, done, _size = job
            _release_buffer(ctypes.byref(self.buffers[2 * slot]))
            _release_buffer(ctypes.byref(self.buffers[2 * slot + 1]))
            os.close(fd)
            self.free.append(slot)
            error = None
            if res < 0:
                res, error = (0, None) if -res in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR) \
                    else (0, OSError(-res, os.strerror(-res)))
            try:
                done(res, error)
            except Exception:
                log.exception("offloaded send completion failed")

    def close(self) -> None:
        """Stop: wait for the kernel to finish what is in flight (their ``done`` still run), then free the ring."""
        if self.efd >= 0:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self.efd)
            while self.in_flight():
                _syscall(_SYS_ENTER, self.ring, self.unsubmitted, 1, 1, None, 0)  # IORING_ENTER_GETEVENTS
                self._drain()
            os.close(self.efd)
            self.efd = -1
        for found in self.maps:
            found.close()
        self.maps = []
        if self.ring >= 0:
            os.close(self.ring)
            self.ring = -1


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(number: int, *args: Any) -> int:
    """libc's syscall() with every integer passed as a C long (ctypes would pass a 32-bit int)."""
    return int(_libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) if isinstance(a, int) else a for a in args)))


_senders: dict[asyncio.AbstractEventLoop, Sender | None] = {}


def loop_sender(loop: asyncio.AbstractEventLoop) -> Sender | None:
    """The loop's sender, made at first use; None where io_uring cannot be had (then the loop writes, as before).
    Senders of loops closed since are freed here."""
    try:
        return _senders[loop]
    except KeyError:
        pass
    for old in [old for old in _senders if old.is_closed()]:
        found = _senders.pop(old)
        if found is not None:
            found.close()
    try:
        sender: Sender | None = Sender(loop)
    except OSError as exc:
        log.info("llhls large answers written on the loop: no io_uring reason=%s", exc)
        sender = None
    _senders[loop] = sender
    return sender

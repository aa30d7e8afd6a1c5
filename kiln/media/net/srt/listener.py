"""``SrtListener``: one SRT port, many callers, one thread.

The listening socket and every accepted caller sit in one libsrt epoll set served by a single
thread, so Kiln adds no thread per caller. (libsrt itself runs one "SRT:TsbPd" delivery thread per
receiving connection in live mode; the port's send/receive queue threads are shared.)

Callers are vetted *during* the handshake: libsrt's listen callback hands Kiln the streamid and
peer before the connection completes, ``on_accept`` decides, and a refused caller gets an SRT
rejection code (it sees "connection rejected") instead of a connection that is dropped later.

Contract for the callbacks (they run on threads Kiln does not own, so they must be quick):
- ``on_accept(streamid, (host, port))`` runs in libsrt's receive thread for this UDP port; while it
  runs no packet of any caller on the port is processed. Return an ``SrtReceiver`` to accept,
  ``None`` to refuse (403 forbidden), or raise ``SrtRejected(code, reason)`` / ``StreamIdError``
  (400 bad request) for a specific answer. Look things up in memory; never block.
- ``receiver.on_data(bytes)`` runs on the listener thread for every message (1316 bytes of TS for
  a usual encoder). It must only hand the bytes on (e.g. a bounded queue that drops when full);
  a slow ``on_data`` delays every other caller on this port. Calls taking over 100 ms are logged.
  A receiver that needs no message boundaries (TS ingest) may define ``on_bytes(bytes)`` instead:
  it then gets every message read from its caller in one pass at once, concatenated (received back
  to back into one buffer of the listener's and copied out once), so its per-message cost (a copy,
  a lock, a wake-up of a demux thread) is paid once per pass.
- The thread serves its callers at most once per ``PASS_INTERVAL_S`` (less when the listener is configured
  with a short SRT latency, see ``pass_interval``): messages wait up to that long in libsrt's receive
  buffer after they are due, and one wake-up reads several of them instead of one per 1316-byte message.
- ``receiver.on_close(reason)`` is called exactly once for every receiver ``on_accept`` returned:
  on disconnect, peer timeout, a failed handshake after acceptance (e.g. wrong passphrase),
  ``disconnect()``, or ``close()``.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from kiln.events.redact import redact_streamid
from kiln.media.net.srt import libsrt
from kiln.media.net.srt.abi import SockStatus
from kiln.media.net.srt.epoll import EPOLL_ERR, EPOLL_IN, SrtEpoll
from kiln.media.net.srt.errors import ErrorCode, RejectCode, SrtError, SrtRejected
from kiln.media.net.srt.options import SETTABLE, OptionSpec, OptionValue, apply_options, parse_options, validate
from kiln.media.net.srt.socket import RECV_BUFFER, SrtSocket
from kiln.media.net.srt.stats import SrtStats
from kiln.media.net.srt.streamid import StreamIdError
from kiln.media.threadname import name_os_thread

log = logging.getLogger(__name__)

READ_BATCH = 1024  # messages read from one caller per pass (with the pass interval: up to 130 Mbit/s a caller)
PASS_INTERVAL_S = 0.08
"""Longest time between two passes over ready callers. A 3 Mbit/s caller sends a message every 3.5 ms;
pacing the passes lets one epoll look and one hand-over to the event loop carry about 23 of them.
libsrt keeps them in its receive buffer meanwhile, so a message reaches the stream up to this long
after libsrt would deliver it (20 ms more than the 40 ms this was before, on average; the SRT latency
itself is 120 ms by default). 80 rather than 40 ms: with 10 callers, -25 % of the listener's CPU, -10 %
of the event loop's and -15 % of libsrt's TSBPD wake-ups (the reader drains each caller, which kicks
its TSBPD thread, half as often), about -10 % of SRT ingest's CPU in all (bench/srt_ingest.py)."""
PASS_LATENCY_SHARE = 0.5
"""With an SRT latency configured below twice ``PASS_INTERVAL_S``, the passes come every half latency
(at least every ``MIN_PASS_INTERVAL_S``): whoever asks for a short latency also wants it end to end."""
MIN_PASS_INTERVAL_S = 0.01
PENDING_SWEEP_S = 1.0
PENDING_MAX_AGE_S = 30.0
SLOW_CALLBACK_S = 0.1
LEFTOVER_MESSAGES = 1 << 16  # a bound on a hung-up caller's buffered messages read at once (libsrt's buffer is smaller)
_DEAD = (SockStatus.BROKEN, SockStatus.CLOSING, SockStatus.CLOSED, SockStatus.NONEXIST)
# a handshake that will never be taken in: a caller that hung up after it (BROKEN) is still in the accept queue
# with what it sent (libsrt keeps it there a while for that), until libsrt gives up on it (CLOSED)
_GONE = (SockStatus.CLOSING, SockStatus.CLOSED, SockStatus.NONEXIST)


class SrtReceiver(Protocol):
    def on_data(self, data: bytes) -> None: ...

    def on_close(self, reason: str) -> None: ...


BytesHook = Callable[[bytes], None]


AcceptPolicy = Callable[[str, tuple[str, int]], SrtReceiver | None]
ConnectedHook = Callable[[SrtReceiver, SrtSocket], None]


@dataclass(frozen=True)
class SrtConnectionInfo:
    socket_id: int
    streamid: str
    peer: tuple[str, int]
    connected_at: float  # time.time()
    bytes_received: int
    messages_received: int


@dataclass(eq=False)
class _Conn:
    sock: SrtSocket
    receiver: SrtReceiver
    streamid: str
    peer: tuple[str, int]
    connected_at: float = field(default_factory=time.time)
    started: float = field(default_factory=time.monotonic)
    bytes_received: int = 0
    messages_received: int = 0
    slow_logged: bool = False
    on_bytes: BytesHook | None = None  # the receiver's batch hook, if it has one


@dataclass(eq=False)
class _Pending:
    receiver: SrtReceiver
    streamid: str
    peer: tuple[str, int]
    since: float = field(default_factory=time.monotonic)


class SrtListener:
    def __init__(self, host: str, port: int, *, on_accept: AcceptPolicy, options: Mapping[str, str] | None = None,
                 latency_ms: int | None = None, passphrase: str | None = None, backlog: int = 64,
                 on_connected: ConnectedHook | None = None) -> None:
        """``options`` are OME-style ``{"SRTO_…": "value"}`` pairs; they are applied after ``latency_ms``
        and ``passphrase``, so Server.xml settings win. Bad values raise ``ValueError`` here.
        ``on_connected(receiver, socket)`` runs on the listener thread once a caller's connection is
        complete, for a receiver that also sends on it (SRT playback); it must be quick."""
        self.host = "0.0.0.0" if host in ("", "*") else host
        self._requested_port = port
        self._on_accept = on_accept
        self._on_connected = on_connected
        self._backlog = backlog
        self._settings: list[tuple[OptionSpec, OptionValue]] = []
        if latency_ms is not None:
            self._settings.append(_checked("SRTO_LATENCY", latency_ms))
        if passphrase:
            self._settings.append(_checked("SRTO_PASSPHRASE", passphrase))
        self._settings += parse_options(options or {})
        self.pass_interval = pass_interval(self._settings)
        self._sock: SrtSocket | None = None
        self._epoll: SrtEpoll | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closing = False
        self._pending: dict[int, _Pending] = {}
        self._conns: dict[int, _Conn] = {}
        self._pass_buffer = ctypes.create_string_buffer(READ_BATCH * RECV_BUFFER)  # one, reused for every caller
        self._requests: deque[tuple[SrtReceiver, str]] = deque()
        self.port = port

    def __enter__(self) -> SrtListener:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind and listen; returns once callers can connect.

        ``SrtError`` (errno EADDRINUSE) if the port is taken, ``ValueError`` for a non-numeric host."""
        if self._sock is not None or self._closing:
            raise RuntimeError("an SrtListener starts once")
        sock = SrtSocket()
        epoll: SrtEpoll | None = None
        try:
            apply_options(sock.handle, self._settings)
            sock.set_blocking(False)
            libsrt.set_listen_handler(sock.handle, self._on_handshake)
            sock.bind(self.host, self._requested_port)
            sock.listen(self._backlog)
            self.port = sock.sockname[1]
            epoll = SrtEpoll()
            epoll.add(sock.handle, EPOLL_IN | EPOLL_ERR)
        except BaseException as exc:
            libsrt.clear_listen_handler(sock.handle)
            sock.close()
            if epoll is not None:
                epoll.close()
            if isinstance(exc, SrtError):
                raise SrtError(f"srt listener {self.host}:{self._requested_port}: {exc}", code=exc.code,
                               sys_errno=exc.sys_errno) from None
            raise
        self._sock, self._epoll = sock, epoll
        libsrt.register_owner(self)
        self._thread = threading.Thread(target=self._run, name=f"srt-listener-{self.port}", daemon=True)
        self._thread.start()
        name_os_thread(self._thread, "kiln-srt-listen")
        log.info("srt listener started host=%s port=%d", self.host, self.port)

    def close(self) -> None:
        """Refuse new callers, close every connection (``on_close("listener closed")``), stop the thread."""
        with self._lock:
            already = self._closing
            self._closing = True
        if self._sock is not None:
            libsrt.clear_listen_handler(self._sock.handle)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        if not already and self._sock is not None:
            log.info("srt listener closed host=%s port=%d", self.host, self.port)

    @property
    def closed(self) -> bool:
        return self._closing

    # -- queries and commands from other threads ------------------------------------------------

    def connections(self) -> list[SrtConnectionInfo]:
        return [SrtConnectionInfo(c.sock.handle, c.streamid, c.peer, c.connected_at, c.bytes_received,
                                  c.messages_received) for c in list(self._conns.values())]

    def stats(self, receiver: SrtReceiver) -> SrtStats | None:
        """libsrt's counters for the caller feeding ``receiver``; ``None`` once it is gone."""
        conn = self._find(receiver)
        if conn is None:
            return None
        try:
            return conn.sock.stats()
        except SrtError:
            return None

    def disconnect(self, receiver: SrtReceiver, reason: str = "disconnected by the server") -> bool:
        """Close the caller feeding ``receiver`` (within one poll interval); False if it is not connected."""
        if self._find(receiver) is None:
            return False
        self._requests.append((receiver, reason))
        return True

    def _find(self, receiver: SrtReceiver) -> _Conn | None:
        for conn in list(self._conns.values()):
            if conn.receiver is receiver:
                return conn
        return None

    # -- handshake (libsrt's receive thread) ----------------------------------------------------

    def _on_handshake(self, new_sock: int, peer: tuple[str, int], raw_streamid: bytes) -> bool:
        try:
            streamid = raw_streamid.decode("utf-8")
        except UnicodeDecodeError:
            return self._refuse(new_sock, peer, repr(raw_streamid), RejectCode.BAD_REQUEST, "streamid is not UTF-8")
        if self._closing:
            return self._refuse(new_sock, peer, streamid, RejectCode.DOWN, "listener is closing")
        try:
            receiver = self._on_accept(streamid, peer)
        except SrtRejected as exc:
            return self._refuse(new_sock, peer, streamid, exc.code, exc.reason)
        except StreamIdError as exc:
            return self._refuse(new_sock, peer, streamid, RejectCode.BAD_REQUEST, str(exc))
        except Exception as exc:
            log.exception("srt accept policy failed port=%d peer=%s:%d", self.port, *peer)
            return self._refuse(new_sock, peer, streamid, RejectCode.INTERNAL, f"policy error: {exc}")
        if receiver is None:
            return self._refuse(new_sock, peer, streamid, RejectCode.FORBIDDEN, "refused by policy")
        with self._lock:
            if not self._closing:
                self._pending[new_sock] = _Pending(receiver, streamid, peer)
                return True
        _notify_close(receiver, "listener closed")
        return self._refuse(new_sock, peer, streamid, RejectCode.DOWN, "listener is closing")

    def _refuse(self, new_sock: int, peer: tuple[str, int], streamid: str, code: int, reason: str) -> bool:
        try:
            libsrt.setrejectreason(new_sock, code)
        except SrtError as exc:
            log.warning("srt reject code not set port=%d code=%d error=%s", self.port, code, exc)
        log.info("srt caller rejected port=%d peer=%s:%d streamid=%r code=%d reason=%s", self.port, peer[0], peer[1],
                 redact_streamid(streamid), code, reason)
        return False

    # -- the listener thread --------------------------------------------------------------------

    def _run(self) -> None:
        assert self._sock is not None and self._epoll is not None
        listen_handle = self._sock.handle
        last_sweep = time.monotonic()
        try:
            while not self._closing:
                began = time.monotonic()
                # a look, not a wait: libsrt's epoll wait wakes its caller every 10 ms inside (an idle
                # listener cost 0.35 % of a core, 100 wake-ups/s); the pass sleep below is the wait
                for handle, events in self._epoll.wait(0):
                    if handle == listen_handle:
                        self._accept_one()
                    else:
                        conn = self._conns.get(handle)
                        if conn is not None:
                            self._service(conn, events)
                while self._requests:
                    receiver, reason = self._requests.popleft()
                    conn = self._find(receiver)
                    if conn is not None:
                        self._drop(conn, reason)
                now = time.monotonic()
                if now - last_sweep >= PENDING_SWEEP_S:
                    last_sweep = now
                    self._sweep_pending()
                if now - began < self.pass_interval:
                    time.sleep(self.pass_interval - (now - began))
        except Exception:
            log.exception("srt listener thread failed port=%d", self.port)
        finally:
            self._teardown()

    def _accept_one(self) -> None:
        # One per readiness event: epoll is level-triggered, so more waiting callers wake it again,
        # and accepting until "no pending connection" would make libsrt log an error every time.
        assert self._sock is not None and self._epoll is not None
        try:
            accepted = self._sock.try_accept()
        except SrtError as exc:
            log.warning("srt accept failed port=%d error=%s", self.port, exc)
            return
        if accepted is None:
            return
        sock, peer = accepted
        with self._lock:
            pending = self._pending.pop(sock.handle, None)
        if pending is None:
            log.warning("srt caller without a handshake record closed port=%d peer=%s:%d", self.port, *peer)
            sock.close()
            return
        conn = _Conn(sock, pending.receiver, pending.streamid, peer,
                     on_bytes=getattr(pending.receiver, "on_bytes", None))
        self._conns[sock.handle] = conn
        try:
            sock.set_blocking(False)
            self._epoll.add(sock.handle, EPOLL_IN | EPOLL_ERR)
        except SrtError as exc:  # e.g. the caller already hung up: what it sent is still to be read
            if self._take_leftovers(conn):
                self._drop(conn, _close_reason(exc))
            return
        log.info("srt caller connected port=%d peer=%s:%d streamid=%r socket=%d", self.port, peer[0], peer[1],
                 redact_streamid(conn.streamid), sock.handle)
        if self._on_connected is not None:
            try:
                self._on_connected(conn.receiver, sock)
            except Exception as exc:
                log.exception("srt connected hook failed port=%d socket=%d", self.port, sock.handle)
                self._drop(conn, f"receiver error: {exc}")

    def _service(self, conn: _Conn, events: int) -> None:
        if conn.on_bytes is not None:
            self._service_bytes(conn, conn.on_bytes, events)
            return
        batch, error = _read_messages(conn, READ_BATCH)
        if batch and not self._deliver(conn, batch):
            return
        if error is not None:
            self._drop(conn, _close_reason(error))
        elif events & EPOLL_ERR and conn.sock.state in _DEAD:
            self._drop(conn, "disconnected")

    def _service_bytes(self, conn: _Conn, hook: BytesHook, events: int) -> None:
        """A byte-stream receiver: the pass's messages land back to back in the pass buffer, one copy out."""
        used, count, error = conn.sock.try_recv_into(self._pass_buffer, READ_BATCH)
        if count:
            conn.bytes_received += used
            conn.messages_received += count
            if not self._deliver(conn, [ctypes.string_at(self._pass_buffer, used)], hook):
                return
        if error is not None:
            self._drop(conn, _close_reason(error))
        elif events & EPOLL_ERR and conn.sock.state in _DEAD:
            self._drop(conn, "disconnected")

    def _take_leftovers(self, conn: _Conn) -> bool:
        """Hand the receiver what a caller that hung up before a pass took it in had sent: libsrt acknowledged it
        and keeps it readable on the broken socket (a read there never waits; it fails once nothing is left).
        A short publish accepted late (a busy machine) lost all its data before. False if the receiver failed."""
        batch, _ = _read_messages(conn, LEFTOVER_MESSAGES)  # the error is the hang-up the caller reports
        if not batch:
            return True
        if conn.on_bytes is not None:
            return self._deliver(conn, [b"".join(batch)], conn.on_bytes)
        return self._deliver(conn, batch)

    def _deliver(self, conn: _Conn, batch: list[bytes], hook: BytesHook | None = None) -> bool:
        """Hand the messages to the receiver; False (and the caller dropped) if it raised."""
        began = time.monotonic()
        try:
            if hook is not None:
                hook(batch[0])
            else:
                for data in batch:
                    conn.receiver.on_data(data)
        except Exception as exc:
            log.exception("srt receiver failed port=%d socket=%d", self.port, conn.sock.handle)
            self._drop(conn, f"receiver error: {exc}")
            return False
        if not conn.slow_logged and time.monotonic() - began > SLOW_CALLBACK_S:
            conn.slow_logged = True
            log.warning("srt receiver slow port=%d socket=%d streamid=%r took_ms=%d", self.port,
                        conn.sock.handle, redact_streamid(conn.streamid), int((time.monotonic() - began) * 1000))
        return True

    def _drop(self, conn: _Conn, reason: str) -> None:
        if self._conns.pop(conn.sock.handle, None) is None:
            return
        assert self._epoll is not None
        self._epoll.remove(conn.sock.handle)
        conn.sock.close()
        log.info("srt caller disconnected port=%d peer=%s:%d streamid=%r reason=%s bytes=%d duration_ms=%d",
                 self.port, conn.peer[0], conn.peer[1], redact_streamid(conn.streamid), reason, conn.bytes_received,
                 int((time.monotonic() - conn.started) * 1000))
        _notify_close(conn.receiver, reason)

    def _sweep_pending(self) -> None:
        """Accepted in the handshake but never connected (bad passphrase, lost conclusion packet)."""
        now = time.monotonic()
        failed: list[tuple[int, _Pending]] = []
        with self._lock:
            for handle, pending in list(self._pending.items()):
                if libsrt.getsockstate(handle) in _GONE or now - pending.since > PENDING_MAX_AGE_S:
                    failed.append((handle, self._pending.pop(handle)))
        for handle, pending in failed:
            # libsrt drops a caller that hangs up before it is accepted from the accept queue, leaving it as a
            # wrong passphrase leaves it (CLOSED): a caller that connects and hangs up within one pass lands here
            log.info("srt caller handshake failed port=%d peer=%s:%d streamid=%r socket=%d (or the caller hung up "
                     "before a listener pass took it in)", self.port, pending.peer[0], pending.peer[1],
                     redact_streamid(pending.streamid), handle)
            _notify_close(pending.receiver, "handshake failed")

    def _teardown(self) -> None:
        assert self._sock is not None and self._epoll is not None
        with self._lock:
            self._closing = True
            pending = list(self._pending.values())
            self._pending.clear()
        libsrt.clear_listen_handler(self._sock.handle)
        self._epoll.remove(self._sock.handle)
        self._sock.close()
        for item in pending:
            _notify_close(item.receiver, "listener closed")
        for conn in list(self._conns.values()):
            self._drop(conn, "listener closed")
        self._epoll.close()


def pass_interval(settings: list[tuple[OptionSpec, OptionValue]]) -> float:
    """Seconds between passes: ``PASS_INTERVAL_S``, or half the receive latency the listener is given (the last
    ``SRTO_LATENCY``/``SRTO_RCVLATENCY`` setting, as libsrt applies them in order) when that is shorter."""
    latency_ms: int | None = None
    for spec, value in settings:
        if spec.name in ("SRTO_LATENCY", "SRTO_RCVLATENCY") and isinstance(value, int):
            latency_ms = value
    if latency_ms is None:
        return PASS_INTERVAL_S
    return max(MIN_PASS_INTERVAL_S, min(PASS_INTERVAL_S, latency_ms / 1000 * PASS_LATENCY_SHARE))


def _checked(name: str, value: object) -> tuple[OptionSpec, OptionValue]:
    spec = SETTABLE[name]
    typed: OptionValue = value if isinstance(value, int | str) else str(value)
    try:
        validate(spec, typed)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    return spec, typed


def _close_reason(exc: SrtError) -> str:
    """"disconnected" for a caller that hung up or timed out; libsrt reports both as a broken connection."""
    if exc.code in (ErrorCode.ECONNLOST, ErrorCode.ENOCONN, ErrorCode.EINVSOCK):
        return "disconnected"
    return f"receive failed: {exc.strerror}"


def _read_messages(conn: _Conn, limit: int) -> tuple[list[bytes], SrtError | None]:
    """Up to ``limit`` messages readable now (counted on ``conn``), and the error that ended the reading early."""
    batch: list[bytes] = []
    for _ in range(limit):
        try:
            data = conn.sock.try_recv()
        except SrtError as exc:
            return batch, exc
        if data is None:
            break
        conn.bytes_received += len(data)
        conn.messages_received += 1
        batch.append(data)
    return batch, None


def _notify_close(receiver: SrtReceiver, reason: str) -> None:
    try:
        receiver.on_close(reason)
    except Exception:
        log.exception("srt receiver on_close failed reason=%s", reason)

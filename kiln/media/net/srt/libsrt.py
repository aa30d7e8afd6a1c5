"""ctypes binding to Debian's libsrt 1.5 (libsrt1.5-openssl or libsrt1.5-gnutls).

No Python SRT binding on PyPI is mature, and the C API we need is small, so Kiln calls the shared
library directly. Numbers and struct layouts live in ``abi`` (from libsrt 1.5.1's ``srt/srt.h``);
the runtime needs only the shared library, never the -dev package. The library is loaded and
``srt_startup()`` run on first use; ``srt_cleanup()`` runs at interpreter exit after every
registered owner (listeners) has closed. libsrt's own log lines go to the ``…libsrt.native`` logger.

ctypes releases the GIL for the duration of each foreign call, so a blocking call (connect, a
blocking send, an epoll wait) only blocks its own thread. Receiving on a non-blocking socket never
waits, so ``recvmsg_nowait`` calls it through a ``PyDLL`` handle that keeps the GIL: giving the GIL
up and taking it back around a one-microsecond call, hundreds of times a second per caller, cost
more than the call (a thread switch each time the demux threads hold it). libsrt keeps its last error in
thread-local storage: read it (``error``/``check``) in the thread that made the failing call.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import logging
import socket
import struct
import threading
import weakref
from collections.abc import Callable
from typing import Protocol

from kiln.media.net.srt.abi import (
    EPOLL_ENABLE_EMPTY,
    LISTEN_CALLBACK,
    LOG_HANDLER,
    LOGF_PLAIN,
    SRT_ERROR,
    STRING_OPTION_MAX,
    SYSLOG_WARNING,
    CBytePerfMon,
    EpollEvent,
    Linger,
    SockOpt,
    SockStatus,
)
from kiln.media.net.srt.errors import ErrorCode, SrtError, SrtUnavailable, reject_reason_text

log = logging.getLogger(__name__)

REQUIRED_VERSION = (1, 5)
DEBIAN_PACKAGE = "libsrt1.5-openssl"
LIBRARY_CANDIDATES = ("libsrt.so.1.5", "libsrt-gnutls.so.1.5")

_c_int_p = ctypes.POINTER(ctypes.c_int)
_PROTOTYPES: dict[str, tuple[object, list[object]]] = {
    "srt_startup": (ctypes.c_int, []),
    "srt_cleanup": (ctypes.c_int, []),
    "srt_getversion": (ctypes.c_uint32, []),
    "srt_create_socket": (ctypes.c_int32, []),
    "srt_bind": (ctypes.c_int, [ctypes.c_int32, ctypes.c_void_p, ctypes.c_int]),
    "srt_listen": (ctypes.c_int, [ctypes.c_int32, ctypes.c_int]),
    "srt_accept": (ctypes.c_int32, [ctypes.c_int32, ctypes.c_void_p, _c_int_p]),
    "srt_listen_callback": (ctypes.c_int, [ctypes.c_int32, LISTEN_CALLBACK, ctypes.c_void_p]),
    "srt_connect": (ctypes.c_int, [ctypes.c_int32, ctypes.c_void_p, ctypes.c_int]),
    "srt_close": (ctypes.c_int, [ctypes.c_int32]),
    "srt_getpeername": (ctypes.c_int, [ctypes.c_int32, ctypes.c_void_p, _c_int_p]),
    "srt_getsockname": (ctypes.c_int, [ctypes.c_int32, ctypes.c_void_p, _c_int_p]),
    "srt_getsockflag": (ctypes.c_int, [ctypes.c_int32, ctypes.c_int, ctypes.c_void_p, _c_int_p]),
    "srt_setsockflag": (ctypes.c_int, [ctypes.c_int32, ctypes.c_int, ctypes.c_void_p, ctypes.c_int]),
    "srt_sendmsg2": (ctypes.c_int, [ctypes.c_int32, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]),
    "srt_recvmsg": (ctypes.c_int, [ctypes.c_int32, ctypes.c_void_p, ctypes.c_int]),
    "srt_getlasterror_str": (ctypes.c_char_p, []),
    "srt_getlasterror": (ctypes.c_int, [_c_int_p]),
    "srt_bstats": (ctypes.c_int, [ctypes.c_int32, ctypes.POINTER(CBytePerfMon), ctypes.c_int]),
    "srt_bistats": (ctypes.c_int, [ctypes.c_int32, ctypes.POINTER(CBytePerfMon), ctypes.c_int, ctypes.c_int]),
    "srt_getsockstate": (ctypes.c_int, [ctypes.c_int32]),
    "srt_epoll_create": (ctypes.c_int, []),
    "srt_epoll_add_usock": (ctypes.c_int, [ctypes.c_int, ctypes.c_int32, _c_int_p]),
    "srt_epoll_update_usock": (ctypes.c_int, [ctypes.c_int, ctypes.c_int32, _c_int_p]),
    "srt_epoll_remove_usock": (ctypes.c_int, [ctypes.c_int, ctypes.c_int32]),
    "srt_epoll_uwait": (ctypes.c_int, [ctypes.c_int, ctypes.POINTER(EpollEvent), ctypes.c_int, ctypes.c_int64]),
    "srt_epoll_set": (ctypes.c_int32, [ctypes.c_int, ctypes.c_int32]),
    "srt_epoll_release": (ctypes.c_int, [ctypes.c_int]),
    "srt_getrejectreason": (ctypes.c_int, [ctypes.c_int32]),
    "srt_setrejectreason": (ctypes.c_int, [ctypes.c_int32, ctypes.c_int]),
    "srt_rejectreason_str": (ctypes.c_char_p, [ctypes.c_int]),
    "srt_setloglevel": (None, [ctypes.c_int]),
    "srt_setlogflags": (None, [ctypes.c_int]),
    "srt_setloghandler": (None, [ctypes.c_void_p, LOG_HANDLER]),
}


class _Closable(Protocol):
    def close(self) -> None: ...


_load_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_finished = False  # srt_cleanup ran at exit; the library is not started again
_owners: weakref.WeakSet[_Closable] = weakref.WeakSet()
_recv_held: Callable[[int, ctypes.Array[ctypes.c_char], int], int] | None = None
_errcode_held: Callable[[object], int] | None = None
_flag_held: Callable[[int, int, int, int], int] | None = None


def version_tuple(raw: int) -> tuple[int, int, int]:
    """srt_getversion() packs major/minor/patch as 0xMMmmpp."""
    return (raw >> 16) & 0xFF, (raw >> 8) & 0xFF, raw & 0xFF


def _open() -> ctypes.CDLL:
    names: list[str] = []
    found = ctypes.util.find_library("srt")
    for name in (found, *LIBRARY_CANDIDATES):
        if name and name not in names:
            names.append(name)
    problems: list[str] = []
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            problems.append(f"{name}: {exc}")
            continue
        lib.srt_getversion.restype = ctypes.c_uint32
        version = version_tuple(lib.srt_getversion())
        if version[:2] != REQUIRED_VERSION:
            problems.append(f"{name}: version {'.'.join(map(str, version))}")
            continue
        return lib
    raise SrtUnavailable(
        f"libsrt {REQUIRED_VERSION[0]}.{REQUIRED_VERSION[1]} is not available "
        f"(install the Debian package {DEBIAN_PACKAGE} or libsrt1.5-gnutls); tried: " + "; ".join(problems))


def lib() -> ctypes.CDLL:
    """The loaded, started library; raises ``SrtUnavailable`` when libsrt 1.5 is missing."""
    global _lib
    if _lib is not None:
        return _lib
    with _load_lock:
        if _finished:
            raise SrtUnavailable("libsrt was shut down at interpreter exit")
        if _lib is None:
            loaded = _open()
            for fname, (restype, argtypes) in _PROTOTYPES.items():
                func = getattr(loaded, fname)
                func.restype = restype
                func.argtypes = argtypes
            loaded.srt_setloglevel(SYSLOG_WARNING)
            loaded.srt_setlogflags(LOGF_PLAIN)
            loaded.srt_setloghandler(None, _LOG_TRAMPOLINE)
            if loaded.srt_startup() < 0:
                raise SrtUnavailable("srt_startup failed: " + _text(loaded.srt_getlasterror_str()))
            atexit.register(_cleanup)
            log.debug("libsrt loaded version=%s", ".".join(map(str, version_tuple(loaded.srt_getversion()))))
            _bind_held(loaded)
            _lib = loaded
    return _lib


def _bind_held(loaded: ctypes.CDLL) -> None:
    """The calls that never block, through a handle whose calls keep the GIL (same library, same state)."""
    global _recv_held, _errcode_held, _flag_held
    held = ctypes.PyDLL(loaded._name, handle=loaded._handle)
    recv = held.srt_recvmsg
    recv.restype, recv.argtypes = ctypes.c_int, [ctypes.c_int32, ctypes.c_void_p, ctypes.c_int]
    errcode = held.srt_getlasterror
    errcode.restype, errcode.argtypes = ctypes.c_int, [_c_int_p]
    flag = held.srt_getsockflag
    flag.restype, flag.argtypes = ctypes.c_int, [ctypes.c_int32, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    _recv_held, _errcode_held, _flag_held = recv, errcode, flag


def version() -> tuple[int, int, int]:
    return version_tuple(lib().srt_getversion())


def register_owner(owner: _Closable) -> None:
    """Objects whose threads call into libsrt; they are closed before ``srt_cleanup`` at exit."""
    _owners.add(owner)


def _cleanup() -> None:
    global _lib, _finished
    for owner in list(_owners):
        try:
            owner.close()
        except Exception:  # exit path: report and keep going so srt_cleanup still runs
            log.exception("srt owner close failed at exit")
    with _load_lock:
        _finished = True
        if _lib is not None:
            _lib.srt_cleanup()
            _lib = None


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


# libsrt writes its own log lines to stderr unless given a handler; Kiln routes them into logging.
# Levels are syslog's; libsrt's "error" is mostly a peer's or a caller's problem, so it is a warning.
_LOG_LEVELS = {0: logging.ERROR, 1: logging.ERROR, 2: logging.ERROR, 3: logging.WARNING, 4: logging.INFO}
_srt_log = logging.getLogger(__name__ + ".native")


def _log_handler(_opaque: int | None, level: int, _file: bytes | None, _line: int, function: bytes | None,
                 message: bytes | None) -> None:
    try:
        _srt_log.log(_LOG_LEVELS.get(level, logging.DEBUG), "libsrt function=%s message=%s", _text(function),
                     _text(message).lstrip(": ").strip())
    except BaseException:  # never let an exception cross back into libsrt
        pass


_LOG_TRAMPOLINE = LOG_HANDLER(_log_handler)


# -- errors -------------------------------------------------------------------------------------

def last_error() -> tuple[int, int, str]:
    """(SRT error code, system errno, libsrt's message) for this thread's last failure."""
    api = lib()
    sys_errno = ctypes.c_int(0)
    code = api.srt_getlasterror(ctypes.byref(sys_errno))
    return code, sys_errno.value, _text(api.srt_getlasterror_str())


def error(what: str, sock: int | None = None) -> SrtError:
    """An ``SrtError`` for this thread's last failure; for a rejected connection, with the reason."""
    code, sys_errno, text = last_error()
    reject: int | None = None
    message = f"{what}: {text}" if text else what
    if code == ErrorCode.ECONNREJ and sock is not None:
        reject = lib().srt_getrejectreason(sock)
        message += f" (reject reason: {reject_text(reject)})"
    return SrtError(message, code=code, sys_errno=sys_errno, reject_reason=reject)


def check(rc: int, what: str, sock: int | None = None) -> int:
    if rc == SRT_ERROR:
        raise error(what, sock)
    return rc


def reject_text(code: int) -> str:
    """libsrt's own text for system codes (< 1000), Kiln's names for the access-control codes."""
    if 0 <= code < 1000:
        raw = lib().srt_rejectreason_str(code)
        if raw:
            return _text(raw)
    return reject_reason_text(code)


# -- addresses ----------------------------------------------------------------------------------

def sockaddr(host: str, port: int) -> ctypes.Array[ctypes.c_char]:
    """A ``struct sockaddr_in``/``sockaddr_in6`` for a numeric IPv4 or IPv6 address."""
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    try:
        packed = socket.inet_pton(socket.AF_INET, host)
        raw = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) + packed + bytes(8)
    except OSError:
        try:
            packed = socket.inet_pton(socket.AF_INET6, host)
        except OSError:
            raise ValueError(f"not a numeric IP address: {host!r}") from None
        raw = struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", port, 0) + packed + struct.pack("=I", 0)
    return ctypes.create_string_buffer(raw, len(raw))


def parse_sockaddr(raw: bytes) -> tuple[str, int]:
    """(host, port) from sockaddr bytes; IPv4-mapped IPv6 addresses come back as dotted IPv4."""
    if len(raw) < 4:
        return "", 0
    family = struct.unpack_from("=H", raw)[0]
    port = struct.unpack_from("!H", raw, 2)[0]
    if family == socket.AF_INET and len(raw) >= 8:
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
    if family == socket.AF_INET6 and len(raw) >= 24:
        addr = raw[8:24]
        if addr[:12] == b"\0" * 10 + b"\xff\xff":
            return socket.inet_ntop(socket.AF_INET, addr[12:]), port
        return socket.inet_ntop(socket.AF_INET6, addr), port
    return "", 0


def _sockname(func: Callable[..., int], sock: int, what: str) -> tuple[str, int]:
    buf = ctypes.create_string_buffer(128)
    size = ctypes.c_int(128)
    check(func(sock, buf, ctypes.byref(size)), what)
    return parse_sockaddr(buf.raw[:size.value])


# -- sockets ------------------------------------------------------------------------------------

def create_socket() -> int:
    return check(lib().srt_create_socket(), "srt_create_socket")


def close(sock: int) -> int:
    """Close a socket; returns libsrt's result (closing twice is harmless, so errors are not raised).

    After ``srt_cleanup`` at exit every socket is gone already, and the library is not restarted."""
    return _lib.srt_close(sock) if _lib is not None else SRT_ERROR


def bind(sock: int, host: str, port: int) -> None:
    addr = sockaddr(host, port)
    check(lib().srt_bind(sock, addr, len(addr)), f"bind {host}:{port}")


def listen(sock: int, backlog: int) -> None:
    check(lib().srt_listen(sock, backlog), "listen")


def accept(sock: int) -> tuple[int, tuple[str, int]]:
    buf = ctypes.create_string_buffer(128)
    size = ctypes.c_int(128)
    new = check(lib().srt_accept(sock, buf, ctypes.byref(size)), "accept")
    return new, parse_sockaddr(buf.raw[:size.value])


def connect(sock: int, host: str, port: int) -> None:
    addr = sockaddr(host, port)
    check(lib().srt_connect(sock, addr, len(addr)), f"connect {host}:{port}", sock)


def getpeername(sock: int) -> tuple[str, int]:
    return _sockname(lib().srt_getpeername, sock, "getpeername")


def getsockname(sock: int) -> tuple[str, int]:
    return _sockname(lib().srt_getsockname, sock, "getsockname")


def getsockstate(sock: int) -> SockStatus:
    raw = lib().srt_getsockstate(sock)
    try:
        return SockStatus(raw)
    except ValueError:
        return SockStatus.NONEXIST


def sendmsg(sock: int, data: bytes) -> int:
    """Send one message (live mode: at most the payload size, 1316 bytes by default)."""
    return check(lib().srt_sendmsg2(sock, data, len(data), None), "send", sock)


def recvmsg_into(sock: int, buf: ctypes.Array[ctypes.c_char]) -> int:
    """Receive one message into ``buf``; -1 on failure (read ``last_error`` for why)."""
    received: int = lib().srt_recvmsg(sock, buf, len(buf))  # restype c_int (see _PROTOTYPES)
    return received


def recvmsg_nowait(sock: int, buf: ctypes.Array[ctypes.c_char]) -> int:
    """``recvmsg_into`` for a NON-BLOCKING socket, keeping the GIL (it must not wait); -1 on failure."""
    if _recv_held is None:
        lib()
    assert _recv_held is not None
    return _recv_held(sock, buf, len(buf))


def nowait_receiver() -> Callable[[int, int, int], int]:
    """``srt_recvmsg(sock, address, size)`` for NON-BLOCKING sockets, keeping the GIL, as the bare ctypes
    function: a pass calls it once per message into slots of one buffer (no wrapper frame per message);
    it returns -1 on failure (read ``last_error_code``)."""
    if _recv_held is None:
        lib()
    assert _recv_held is not None
    return _recv_held  # type: ignore[return-value]  # its c_void_p argument takes an address


def nowait_flag_reader() -> Callable[[int, int, int, int], int]:
    """``srt_getsockflag(sock, option, value address, length address)`` keeping the GIL, as the bare ctypes
    function (for ``SRTO_EVENT`` between the reads of a pass: it only takes uncontended locks)."""
    if _flag_held is None:
        lib()
    assert _flag_held is not None
    return _flag_held


def last_error_code() -> int:
    """This thread's last SRT error code alone (no message text: the cheap check for "nothing to read")."""
    if _errcode_held is None:
        lib()
    assert _errcode_held is not None
    return _errcode_held(None)


# -- options ------------------------------------------------------------------------------------

def _set(sock: int, opt: int, value: ctypes._CData | bytes, size: int) -> None:
    ref = value if isinstance(value, bytes) else ctypes.byref(value)
    check(lib().srt_setsockflag(sock, opt, ref, size), f"set {_opt_name(opt)}")


def _opt_name(opt: int) -> str:
    try:
        return "SRTO_" + SockOpt(opt).name
    except ValueError:
        return f"option {opt}"


def set_int(sock: int, opt: int, value: int) -> None:
    _set(sock, opt, ctypes.c_int32(value), 4)


def set_int64(sock: int, opt: int, value: int) -> None:
    _set(sock, opt, ctypes.c_int64(value), 8)


def set_bool(sock: int, opt: int, value: bool) -> None:
    _set(sock, opt, ctypes.c_int32(1 if value else 0), 4)  # setting accepts int32 for bool options


def set_str(sock: int, opt: int, value: str) -> None:
    raw = value.encode()
    _set(sock, opt, raw, len(raw))


def set_linger(sock: int, seconds: int) -> None:
    _set(sock, SockOpt.LINGER, Linger(1 if seconds > 0 else 0, max(seconds, 0)), ctypes.sizeof(Linger))


def _get(sock: int, opt: int, value: ctypes._CData) -> int:
    size = ctypes.c_int(ctypes.sizeof(value))
    check(lib().srt_getsockflag(sock, opt, ctypes.byref(value), ctypes.byref(size)), f"get {_opt_name(opt)}")
    return size.value


def get_int(sock: int, opt: int) -> int:
    value = ctypes.c_int32(0)
    _get(sock, opt, value)
    return value.value


def get_int64(sock: int, opt: int) -> int:
    value = ctypes.c_int64(0)
    _get(sock, opt, value)
    return value.value


def get_bool(sock: int, opt: int) -> bool:
    value = ctypes.c_bool(False)  # getting writes a C++ bool (1 byte)
    _get(sock, opt, value)
    return bool(value.value)


def get_str(sock: int, opt: int) -> str:
    buf = ctypes.create_string_buffer(STRING_OPTION_MAX + 1)
    size = ctypes.c_int(STRING_OPTION_MAX + 1)
    check(lib().srt_getsockflag(sock, opt, buf, ctypes.byref(size)), f"get {_opt_name(opt)}")
    return buf.raw[:size.value].decode("utf-8", "replace")


def get_linger(sock: int) -> int:
    value = Linger()
    _get(sock, SockOpt.LINGER, value)
    return value.l_linger if value.l_onoff else 0


# -- statistics ---------------------------------------------------------------------------------

def bstats(sock: int, clear: bool = False, instantaneous: bool = False) -> CBytePerfMon:
    perf = CBytePerfMon()
    if instantaneous:
        check(lib().srt_bistats(sock, ctypes.byref(perf), int(clear), 1), "bistats")
    else:
        check(lib().srt_bstats(sock, ctypes.byref(perf), int(clear)), "bstats")
    return perf


# -- rejection ----------------------------------------------------------------------------------

def getrejectreason(sock: int) -> int:
    reason: int = lib().srt_getrejectreason(sock)
    return reason


def setrejectreason(sock: int, code: int) -> None:
    check(lib().srt_setrejectreason(sock, code), "setrejectreason")


# -- epoll --------------------------------------------------------------------------------------

def epoll_create() -> int:
    eid = check(lib().srt_epoll_create(), "epoll_create")
    lib().srt_epoll_set(eid, EPOLL_ENABLE_EMPTY)
    return eid


def epoll_add(eid: int, sock: int, events: int) -> None:
    flags = ctypes.c_int(events)
    check(lib().srt_epoll_add_usock(eid, sock, ctypes.byref(flags)), "epoll_add_usock")


def epoll_update(eid: int, sock: int, events: int) -> None:
    flags = ctypes.c_int(events)
    check(lib().srt_epoll_update_usock(eid, sock, ctypes.byref(flags)), "epoll_update_usock")


def epoll_remove(eid: int, sock: int) -> int:
    """Remove a socket; libsrt already drops closed sockets, so the result is only returned."""
    result: int = lib().srt_epoll_remove_usock(eid, sock)
    return result


def epoll_uwait(eid: int, events: ctypes.Array[EpollEvent], timeout_ms: int) -> list[tuple[int, int]]:
    """Wait up to ``timeout_ms`` (-1: forever) and return ``[(socket, event flags), ...]``."""
    n = lib().srt_epoll_uwait(eid, events, len(events), timeout_ms)
    if n == SRT_ERROR:
        code, _, _ = last_error()
        if code == ErrorCode.ETIMEOUT:
            return []
        raise error("epoll_uwait")
    return [(events[i].fd, events[i].events) for i in range(min(n, len(events)))]


def epoll_release(eid: int) -> None:
    lib().srt_epoll_release(eid)


# -- listen callback ----------------------------------------------------------------------------

# handler(new socket, peer address, raw streamid) -> accept?
ListenHandler = Callable[[int, tuple[str, int], bytes], bool]
_handlers: dict[int, ListenHandler] = {}
_handlers_lock = threading.Lock()


def _listen_trampoline(opaque: int | None, new_sock: int, _hs_version: int, peer_ptr: int | None,
                       streamid: bytes | None) -> int:
    # Runs in libsrt's receiver thread. An exception escaping a ctypes callback would be printed
    # and turned into 0 (accept), so everything is caught here and becomes a rejection.
    try:
        with _handlers_lock:
            handler = _handlers.get(opaque or 0)
        if handler is None:
            return -1
        peer = _peer_address(peer_ptr) if peer_ptr else ("", 0)
        return 0 if handler(new_sock, peer, streamid or b"") else -1
    except BaseException:
        log.exception("srt listen callback failed socket=%s", new_sock)
        return -1


def _peer_address(ptr: int) -> tuple[str, int]:
    family = struct.unpack("=H", ctypes.string_at(ptr, 2))[0]
    size = 28 if family == socket.AF_INET6 else 16
    return parse_sockaddr(ctypes.string_at(ptr, size))


# One trampoline for the whole process: it is never freed, so libsrt can never call a dead thunk,
# whatever the order in which listeners and their callbacks go away.
_TRAMPOLINE = LISTEN_CALLBACK(_listen_trampoline)


def set_listen_handler(listener: int, handler: ListenHandler) -> None:
    """Install ``handler`` to accept or reject callers of ``listener`` before they connect."""
    with _handlers_lock:
        _handlers[listener] = handler
    check(lib().srt_listen_callback(listener, _TRAMPOLINE, ctypes.c_void_p(listener)), "listen_callback")


def clear_listen_handler(listener: int) -> None:
    """After this, callers arriving at ``listener`` are rejected (it is closing)."""
    with _handlers_lock:
        _handlers.pop(listener, None)

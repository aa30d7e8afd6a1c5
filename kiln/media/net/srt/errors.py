"""SRT error types, kept free of ctypes so parsers and policies can use them without libsrt.

``SrtError`` is an ``OSError`` so callers that already handle socket errors (the push writer, for
one) handle SRT failures too; its ``errno`` is the closest POSIX code and its text is libsrt's.
"""

from __future__ import annotations

import errno
from enum import IntEnum


class ErrorCode(IntEnum):
    """libsrt's SRT_ERRNO values (srt.h: 1000 * major + minor)."""

    UNKNOWN = -1
    SUCCESS = 0
    ECONNSETUP = 1000
    ENOSERVER = 1001
    ECONNREJ = 1002
    ESOCKFAIL = 1003
    ESECFAIL = 1004
    ESCLOSED = 1005
    ECONNFAIL = 2000
    ECONNLOST = 2001
    ENOCONN = 2002
    ERESOURCE = 3000
    ETHREAD = 3001
    ENOBUF = 3002
    ESYSOBJ = 3003
    EFILE = 4000
    EINVOP = 5000
    EBOUNDSOCK = 5001
    ECONNSOCK = 5002
    EINVPARAM = 5003
    EINVSOCK = 5004
    EUNBOUNDSOCK = 5005
    ENOLISTEN = 5006
    ERDVNOSERV = 5007
    ERDVUNBOUND = 5008
    EINVALMSGAPI = 5009
    EINVALBUFFERAPI = 5010
    EDUPLISTEN = 5011
    ELARGEMSG = 5012
    EINVPOLLID = 5013
    EPOLLEMPTY = 5014
    EBINDCONFLICT = 5015
    EASYNCFAIL = 6000
    EASYNCSND = 6001
    EASYNCRCV = 6002
    ETIMEOUT = 6003
    ECONGEST = 6004
    EPEERERR = 7000


_POSIX: dict[int, int] = {
    ErrorCode.ENOSERVER: errno.ETIMEDOUT,
    ErrorCode.ECONNREJ: errno.ECONNREFUSED,
    ErrorCode.ESECFAIL: errno.EACCES,
    ErrorCode.ESCLOSED: errno.EBADF,
    ErrorCode.ECONNFAIL: errno.ECONNABORTED,
    ErrorCode.ECONNLOST: errno.ECONNRESET,
    ErrorCode.ENOCONN: errno.ENOTCONN,
    ErrorCode.ENOBUF: errno.ENOBUFS,
    ErrorCode.EINVPARAM: errno.EINVAL,
    ErrorCode.EINVSOCK: errno.EBADF,
    ErrorCode.ELARGEMSG: errno.EMSGSIZE,
    ErrorCode.EBINDCONFLICT: errno.EADDRINUSE,
    ErrorCode.EDUPLISTEN: errno.EADDRINUSE,
    ErrorCode.EASYNCSND: errno.EAGAIN,
    ErrorCode.EASYNCRCV: errno.EAGAIN,
    ErrorCode.ETIMEOUT: errno.ETIMEDOUT,
}


class RejectCode(IntEnum):
    """Rejection codes a listener may send back (access_control.h: 1000 + HTTP-like status)."""

    FALLBACK = 1000
    BAD_REQUEST = 1400
    UNAUTHORIZED = 1401
    OVERLOAD = 1402
    FORBIDDEN = 1403
    NOT_FOUND = 1404
    BAD_MODE = 1405
    UNACCEPTABLE = 1406
    CONFLICT = 1409
    NOTSUP_MEDIA = 1415
    LOCKED = 1423
    INTERNAL = 1500
    UNIMPLEMENTED = 1501
    GATEWAY = 1502
    DOWN = 1503


# Texts for libsrt's own reasons (SRT_REJ_*, < 1000), used when libsrt itself is not at hand.
SYSTEM_REJECT_REASONS = (
    "unknown or erroneous", "system function error", "rejected by peer", "resource allocation problem",
    "rogue peer or incorrect parameters", "listener's backlog exceeded", "internal program error",
    "socket is closing", "peer is older than the minimum version", "rendezvous-mode cookie collision",
    "incorrect passphrase", "password required or unexpected", "message API / stream API collision",
    "congestion controller type collision", "packet filter settings error", "group settings collision",
    "connection timeout",
)

_REJECT_NAMES = {
    1000: "fallback", 1001: "key not supported", 1002: "bad file path", 1003: "host not found",
    1400: "bad request", 1401: "unauthorized", 1402: "overload", 1403: "forbidden", 1404: "not found",
    1405: "bad mode", 1406: "unacceptable", 1409: "conflict", 1415: "unsupported media", 1423: "locked",
    1424: "failed dependency", 1500: "internal server error", 1501: "unimplemented", 1502: "gateway error",
    1503: "service down", 1505: "version not supported", 1507: "no room",
}


def reject_reason_text(code: int) -> str:
    """Human text for a rejection code, system (< 1000) or application-defined (>= 1000)."""
    if 0 <= code < len(SYSTEM_REJECT_REASONS):
        return SYSTEM_REJECT_REASONS[code]
    if code in _REJECT_NAMES:
        return f"{_REJECT_NAMES[code]} ({code})"
    if code >= 1000:
        return f"application-defined reason {code}"
    return f"unknown reason {code}"


class SrtUnavailable(OSError):
    """libsrt 1.5 could not be loaded; the message names the Debian package to install."""


class SrtError(OSError):
    """A failed libsrt call: ``strerror`` holds libsrt's text, ``code`` its SRT_ERRNO value, ``errno``
    the closest POSIX code (or the system errno libsrt saw, e.g. EADDRINUSE from a failed bind)."""

    def __init__(self, message: str, *, code: int = ErrorCode.UNKNOWN, sys_errno: int = 0,
                 reject_reason: int | None = None) -> None:
        super().__init__(_POSIX.get(code) or sys_errno or errno.EIO, message)
        self.code = code
        self.sys_errno = sys_errno
        self.reject_reason = reject_reason

    def __str__(self) -> str:
        return self.strerror or "SRT error"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (self.strerror, self.code, self.sys_errno, self.reject_reason))


def _rebuild(message: str, code: int, sys_errno: int, reject_reason: int | None) -> SrtError:
    return SrtError(message, code=code, sys_errno=sys_errno, reject_reason=reject_reason)


class SrtRejected(Exception):
    """Raised by an ``on_accept`` policy to refuse a caller with a specific code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = int(code)
        self.reason = reason

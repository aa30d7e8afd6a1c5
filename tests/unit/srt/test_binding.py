"""The ctypes layouts and helpers of the libsrt binding, checked without opening sockets.

The expected sizes and offsets were printed by a C program compiled against libsrt 1.5.1's
``srt/srt.h`` (``offsetof(struct CBytePerfMon, …)``): libsrt writes the whole struct, so a field
missing on the Python side would shift every later counter and overrun the buffer.
"""

from __future__ import annotations

import ctypes
import errno
import pickle
import socket
import struct

import pytest

from kiln.media.net.srt import abi, libsrt
from kiln.media.net.srt.errors import ErrorCode, SrtError, reject_reason_text
from kiln.media.net.srt.stats import SrtStats

OFFSETS_FROM_SRT_H = {
    "msTimeStamp": 0, "pktSentTotal": 8, "pktRecvTotal": 16, "pktSndLossTotal": 24, "pktRcvLossTotal": 28,
    "pktRetransTotal": 32, "usSndDurationTotal": 56, "pktSndDropTotal": 64, "pktRcvDropTotal": 68,
    "byteSentTotal": 80, "byteRecvTotal": 88, "byteRcvLossTotal": 96, "byteRetransTotal": 104,
    "byteSndDropTotal": 112, "byteRcvDropTotal": 120, "pktSent": 136, "mbpsSendRate": 184, "mbpsRecvRate": 192,
    "usSndDuration": 200, "pktReorderDistance": 208, "pktRcvAvgBelatedTime": 216, "pktRcvBelated": 224,
    "msRTT": 328, "mbpsBandwidth": 336, "byteAvailSndBuf": 344, "mbpsMaxBW": 352, "msRcvTsbPdDelay": 392,
    "pktReorderTolerance": 428, "pktSentUniqueTotal": 432, "pktRecvUniqueTotal": 440,
    "byteSentUniqueTotal": 448, "byteRecvUniqueTotal": 456, "byteRecvUnique": 488,
}


def test_perfmon_size_matches_srt_h() -> None:
    assert ctypes.sizeof(abi.CBytePerfMon) == 496


@pytest.mark.parametrize(("name", "offset"), sorted(OFFSETS_FROM_SRT_H.items()))
def test_perfmon_offsets_match_srt_h(name: str, offset: int) -> None:
    assert getattr(abi.CBytePerfMon, name).offset == offset


def test_epoll_event_and_linger_layout() -> None:
    assert ctypes.sizeof(abi.EpollEvent) == 8
    assert abi.EpollEvent.events.offset == 4
    assert ctypes.sizeof(abi.Linger) == 8


def test_stats_read_the_named_fields() -> None:
    perf = abi.CBytePerfMon()
    perf.byteRecvUniqueTotal = 1_360_000
    perf.pktRecvUniqueTotal = 1000
    perf.pktRcvLossTotal = 3
    perf.msRTT = 0.25
    stats = SrtStats.from_perfmon(perf)
    assert (stats.bytes_received_unique, stats.packets_received_unique, stats.packets_receive_lost,
            stats.rtt_ms) == (1_360_000, 1000, 3, 0.25)


def test_sockaddr_ipv4_layout() -> None:
    raw = libsrt.sockaddr("127.0.0.1", 9000).raw
    assert len(raw) == 16
    assert struct.unpack_from("=H", raw)[0] == socket.AF_INET
    assert raw[2:4] == b"\x23\x28" and raw[4:8] == b"\x7f\x00\x00\x01"
    assert libsrt.parse_sockaddr(raw) == ("127.0.0.1", 9000)


def test_sockaddr_ipv6_layout_and_mapped_ipv4() -> None:
    raw = libsrt.sockaddr("::1", 443).raw
    assert len(raw) == 28
    assert libsrt.parse_sockaddr(raw) == ("::1", 443)
    mapped = libsrt.sockaddr("::ffff:10.0.0.7", 5000).raw
    assert libsrt.parse_sockaddr(mapped) == ("10.0.0.7", 5000)


@pytest.mark.parametrize(("host", "port"), [("localhost", 1), ("1.2.3.4", 70000), ("", 1)])
def test_sockaddr_refuses_names_and_bad_ports(host: str, port: int) -> None:
    with pytest.raises(ValueError):
        libsrt.sockaddr(host, port)


def test_parse_sockaddr_of_unknown_family() -> None:
    assert libsrt.parse_sockaddr(b"\x00\x00\x00\x00") == ("", 0)


def test_version_tuple() -> None:
    assert libsrt.version_tuple(0x010501) == (1, 5, 1)


def test_srt_error_is_an_oserror_with_posix_errno_and_libsrt_text() -> None:
    exc = SrtError("connect 1.2.3.4:5: Connection setup failure: connection rejected", code=ErrorCode.ECONNREJ,
                   reject_reason=1403)
    assert isinstance(exc, OSError)
    assert exc.errno == errno.ECONNREFUSED
    assert str(exc) == exc.strerror == "connect 1.2.3.4:5: Connection setup failure: connection rejected"
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.code, copy.reject_reason, str(copy)) == (ErrorCode.ECONNREJ, 1403, str(exc))


def test_timeouts_map_to_etimedout() -> None:
    assert SrtError("x", code=ErrorCode.ENOSERVER).errno == errno.ETIMEDOUT
    assert SrtError("x", code=ErrorCode.ETIMEOUT).errno == errno.ETIMEDOUT
    assert SrtError("x", code=ErrorCode.ECONNLOST).errno == errno.ECONNRESET
    assert SrtError("x", code=9999).errno == errno.EIO
    assert SrtError("x", code=ErrorCode.ESOCKFAIL, sys_errno=errno.EADDRINUSE).errno == errno.EADDRINUSE


@pytest.mark.parametrize(("code", "text"), [
    (10, "incorrect passphrase"), (11, "password required or unexpected"), (16, "connection timeout"),
    (1403, "forbidden (1403)"), (1404, "not found (1404)"), (2042, "application-defined reason 2042"),
])
def test_reject_reason_text(code: int, text: str) -> None:
    assert reject_reason_text(code) == text

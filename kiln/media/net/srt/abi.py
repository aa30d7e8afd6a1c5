"""Numbers and struct layouts of libsrt 1.5.1's C API, as declared in ``srt/srt.h``.

Kept apart from the calls (``libsrt``) so that parsers and tests can use them without loading the
library. ``CBytePerfMon`` lists every field in order: libsrt writes the whole 496-byte struct.
"""

from __future__ import annotations

import ctypes
from enum import IntEnum

SRT_ERROR = -1
SRT_INVALID_SOCK = -1
LIVE_PAYLOAD_SIZE = 1316  # 7 MPEG-TS packets, libsrt's default live payload
LIVE_MAX_PAYLOAD_SIZE = 1456  # MTU 1500 - UDP/IP 28 - SRT header 16
TS_PACKET_SIZE = 188
STRING_OPTION_MAX = 512  # SRTO_STREAMID and SRTO_PACKETFILTER are at most 512 bytes


class SockOpt(IntEnum):
    """SRT_SOCKOPT values (srt.h, libsrt 1.5.1)."""

    MSS = 0
    SNDSYN = 1
    RCVSYN = 2
    ISN = 3
    FC = 4
    SNDBUF = 5
    RCVBUF = 6
    LINGER = 7
    UDP_SNDBUF = 8
    UDP_RCVBUF = 9
    RENDEZVOUS = 12
    SNDTIMEO = 13
    RCVTIMEO = 14
    REUSEADDR = 15
    MAXBW = 16
    STATE = 17
    EVENT = 18
    SNDDATA = 19
    RCVDATA = 20
    SENDER = 21
    TSBPDMODE = 22
    LATENCY = 23
    INPUTBW = 24
    OHEADBW = 25
    PASSPHRASE = 26
    PBKEYLEN = 27
    KMSTATE = 28
    IPTTL = 29
    IPTOS = 30
    TLPKTDROP = 31
    SNDDROPDELAY = 32
    NAKREPORT = 33
    VERSION = 34
    PEERVERSION = 35
    CONNTIMEO = 36
    DRIFTTRACER = 37
    MININPUTBW = 38
    SNDKMSTATE = 40
    RCVKMSTATE = 41
    LOSSMAXTTL = 42
    RCVLATENCY = 43
    PEERLATENCY = 44
    MINVERSION = 45
    STREAMID = 46
    CONGESTION = 47
    MESSAGEAPI = 48
    PAYLOADSIZE = 49
    TRANSTYPE = 50
    KMREFRESHRATE = 51
    KMPREANNOUNCE = 52
    ENFORCEDENCRYPTION = 53
    IPV6ONLY = 54
    PEERIDLETIMEO = 55
    BINDTODEVICE = 56
    PACKETFILTER = 60
    RETRANSMITALGO = 61


class SockStatus(IntEnum):
    """SRT_SOCKSTATUS values returned by ``srt_getsockstate``."""

    INIT = 1
    OPENED = 2
    LISTENING = 3
    CONNECTING = 4
    CONNECTED = 5
    BROKEN = 6
    CLOSING = 7
    CLOSED = 8
    NONEXIST = 9


class TransType(IntEnum):
    LIVE = 0
    FILE = 1


EPOLL_IN = 0x1
EPOLL_OUT = 0x4
EPOLL_ERR = 0x8
EPOLL_ENABLE_EMPTY = 1


class Linger(ctypes.Structure):
    _fields_ = [("l_onoff", ctypes.c_int), ("l_linger", ctypes.c_int)]


class EpollEvent(ctypes.Structure):
    """SRT_EPOLL_EVENT: {SRTSOCKET fd; int events} (8 bytes)."""

    _fields_ = [("fd", ctypes.c_int32), ("events", ctypes.c_int)]


_i32, _i64, _u64, _dbl = ctypes.c_int, ctypes.c_int64, ctypes.c_uint64, ctypes.c_double


class CBytePerfMon(ctypes.Structure):
    """``struct CBytePerfMon`` (SRT_TRACEBSTATS), every field in order: libsrt writes all 496 bytes."""

    _fields_ = [
        ("msTimeStamp", _i64), ("pktSentTotal", _i64), ("pktRecvTotal", _i64),
        ("pktSndLossTotal", _i32), ("pktRcvLossTotal", _i32), ("pktRetransTotal", _i32),
        ("pktSentACKTotal", _i32), ("pktRecvACKTotal", _i32), ("pktSentNAKTotal", _i32),
        ("pktRecvNAKTotal", _i32), ("usSndDurationTotal", _i64),
        ("pktSndDropTotal", _i32), ("pktRcvDropTotal", _i32), ("pktRcvUndecryptTotal", _i32),
        ("byteSentTotal", _u64), ("byteRecvTotal", _u64), ("byteRcvLossTotal", _u64),
        ("byteRetransTotal", _u64), ("byteSndDropTotal", _u64), ("byteRcvDropTotal", _u64),
        ("byteRcvUndecryptTotal", _u64),
        ("pktSent", _i64), ("pktRecv", _i64), ("pktSndLoss", _i32), ("pktRcvLoss", _i32),
        ("pktRetrans", _i32), ("pktRcvRetrans", _i32), ("pktSentACK", _i32), ("pktRecvACK", _i32),
        ("pktSentNAK", _i32), ("pktRecvNAK", _i32), ("mbpsSendRate", _dbl), ("mbpsRecvRate", _dbl),
        ("usSndDuration", _i64), ("pktReorderDistance", _i32), ("pktRcvAvgBelatedTime", _dbl),
        ("pktRcvBelated", _i64),
        ("pktSndDrop", _i32), ("pktRcvDrop", _i32), ("pktRcvUndecrypt", _i32),
        ("byteSent", _u64), ("byteRecv", _u64), ("byteRcvLoss", _u64), ("byteRetrans", _u64),
        ("byteSndDrop", _u64), ("byteRcvDrop", _u64), ("byteRcvUndecrypt", _u64),
        ("usPktSndPeriod", _dbl), ("pktFlowWindow", _i32), ("pktCongestionWindow", _i32),
        ("pktFlightSize", _i32), ("msRTT", _dbl), ("mbpsBandwidth", _dbl),
        ("byteAvailSndBuf", _i32), ("byteAvailRcvBuf", _i32),
        ("mbpsMaxBW", _dbl), ("byteMSS", _i32),
        ("pktSndBuf", _i32), ("byteSndBuf", _i32), ("msSndBuf", _i32), ("msSndTsbPdDelay", _i32),
        ("pktRcvBuf", _i32), ("byteRcvBuf", _i32), ("msRcvBuf", _i32), ("msRcvTsbPdDelay", _i32),
        ("pktSndFilterExtraTotal", _i32), ("pktRcvFilterExtraTotal", _i32),
        ("pktRcvFilterSupplyTotal", _i32), ("pktRcvFilterLossTotal", _i32),
        ("pktSndFilterExtra", _i32), ("pktRcvFilterExtra", _i32), ("pktRcvFilterSupply", _i32),
        ("pktRcvFilterLoss", _i32), ("pktReorderTolerance", _i32),
        ("pktSentUniqueTotal", _i64), ("pktRecvUniqueTotal", _i64),
        ("byteSentUniqueTotal", _u64), ("byteRecvUniqueTotal", _u64),
        ("pktSentUnique", _i64), ("pktRecvUnique", _i64), ("byteSentUnique", _u64), ("byteRecvUnique", _u64),
    ]


# int srt_listen_callback_fn(void* opaq, SRTSOCKET ns, int hsversion, const struct sockaddr* peer, const char* sid)
LISTEN_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int,
                                   ctypes.c_void_p, ctypes.c_char_p)

# void SRT_LOG_HANDLER_FN(void* opaque, int level, const char* file, int line, const char* area, const char* msg)
LOG_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                               ctypes.c_char_p, ctypes.c_char_p)


# libsrt logging (logging_api.h): syslog levels, and flags that strip libsrt's own line decoration.
SYSLOG_WARNING = 4
LOGF_PLAIN = 1 | 2 | 4 | 8  # no time, thread name, severity or end of line: logging adds its own

"""RTMP handshake, server side (Adobe RTMP spec §5.2), sans-IO.

C0/C1 in, S0/S1/S2 out at once, then C2. Plain clients get the simple handshake (S2 echoes C1).
A client whose C1 carries a Flash Player HMAC-SHA256 digest (ffmpeg and Flash-era clients sign C1)
gets the digest ("complex") handshake back: publishers such as ffmpeg and OBS accept either, but
players that validate the server (ffmpeg reading ``rtmp://``, Flash) need the signed S1/S2.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time

from kiln.media.formats.rtmp.errors import RtmpProtocolError

RTMP_VERSION = 3
RTMPE_VERSION = 6
HANDSHAKE_SIZE = 1536
DIGEST_SIZE = 32
SERVER_VERSION = b"\x0d\x0e\x0a\x0d"

_KEY_TAIL = bytes.fromhex("f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae")
FMS_KEY = b"Genuine Adobe Flash Media Server 001" + _KEY_TAIL   # server key; the first 36 bytes sign S1
FP_KEY = b"Genuine Adobe Flash Player 001" + _KEY_TAIL          # client key; the first 30 bytes sign C1
_FMS_PARTIAL = FMS_KEY[:36]
_FP_PARTIAL = FP_KEY[:30]

_EPOCH = time.monotonic()


class HandshakeError(RtmpProtocolError):
    pass


def digest_offset(block: bytes | bytearray, scheme: int) -> int:
    """Where the 32-byte digest sits in a 1536-byte C1/S1 for scheme 0 (offset from bytes 8..11)
    or scheme 1 (offset from bytes 772..775)."""
    base = 8 if scheme == 0 else 772
    return sum(block[base:base + 4]) % 728 + base + 4


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def find_client_digest(c1: bytes) -> tuple[int, bytes] | None:
    """(scheme, digest) when C1 is signed with the Flash Player key, else None."""
    for scheme in (0, 1):
        off = digest_offset(c1, scheme)
        digest = c1[off:off + DIGEST_SIZE]
        if hmac.compare_digest(_hmac(_FP_PARTIAL, c1[:off] + c1[off + DIGEST_SIZE:]), digest):
            return scheme, digest
    return None


def _imprint(block: bytearray, scheme: int, key: bytes) -> None:
    off = digest_offset(block, scheme)
    block[off:off + DIGEST_SIZE] = _hmac(key, bytes(block[:off] + block[off + DIGEST_SIZE:]))


def _uptime_ms() -> int:
    return int((time.monotonic() - _EPOCH) * 1000) & 0xFFFFFFFF


def server_response(c1: bytes) -> tuple[bytes, bytes, bool]:
    """(S1, S2, digest) for this C1."""
    found = find_client_digest(c1) if c1[4:8] != b"\x00\x00\x00\x00" else None
    if found is None:
        s1 = struct.pack(">I", _uptime_ms()) + b"\x00\x00\x00\x00" + os.urandom(HANDSHAKE_SIZE - 8)
        return s1, bytes(c1), False
    scheme, client_digest = found
    signed_s1 = bytearray(struct.pack(">I", _uptime_ms()) + SERVER_VERSION + os.urandom(HANDSHAKE_SIZE - 8))
    _imprint(signed_s1, scheme, _FMS_PARTIAL)
    s2 = os.urandom(HANDSHAKE_SIZE - DIGEST_SIZE)
    s2 += _hmac(_hmac(FMS_KEY, client_digest), s2)
    return bytes(signed_s1), s2, True


class ServerHandshake:
    """Feed received bytes; send what :meth:`feed` returns; when ``done``, ``leftover`` holds the
    first chunk-stream bytes (clients often send C2 and ``connect`` in one write)."""

    __slots__ = ("_buf", "_sent", "done", "leftover", "digest")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._sent = False
        self.done = False
        self.leftover = b""
        self.digest = False

    def feed(self, data: bytes) -> bytes:
        if self.done:
            raise HandshakeError("handshake already complete")
        self._buf += data
        out = b""
        if not self._sent:
            if not self._buf:
                return b""
            version = self._buf[0]
            if version == RTMPE_VERSION:
                raise HandshakeError("encrypted RTMP (RTMPE, C0 version 6) is not supported")
            if version != RTMP_VERSION:
                raise HandshakeError(f"C0 version {version} is not RTMP version 3")
            if len(self._buf) < 1 + HANDSHAKE_SIZE:
                return b""
            c1 = bytes(self._buf[1:1 + HANDSHAKE_SIZE])
            del self._buf[:1 + HANDSHAKE_SIZE]
            s1, s2, self.digest = server_response(c1)
            out = bytes([RTMP_VERSION]) + s1 + s2
            self._sent = True
        if len(self._buf) >= HANDSHAKE_SIZE:
            self.leftover = bytes(self._buf[HANDSHAKE_SIZE:])
            self._buf = bytearray()
            self.done = True
        return out

"""The server handshake: simple (echo) and digest, validated the way FFmpeg's RTMP client validates it."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest

from kiln.media.formats.rtmp.handshake import (
    FMS_KEY,
    FP_KEY,
    HANDSHAKE_SIZE,
    HandshakeError,
    ServerHandshake,
    digest_offset,
    find_client_digest,
)


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def signed_c1(scheme: int) -> bytes:
    """A C1 like FFmpeg's: Flash Player version bytes and a digest signed with the 30-byte player key."""
    c1 = bytearray(b"\x00\x00\x00\x00" + bytes([9, 0, 124, 2]) + os.urandom(HANDSHAKE_SIZE - 8))
    off = digest_offset(c1, scheme)
    c1[off:off + 32] = _hmac(FP_KEY[:30], bytes(c1[:off] + c1[off + 32:]))
    return bytes(c1)


def test_simple_handshake_echoes_c1() -> None:
    hs = ServerHandshake()
    c1 = bytes(8) + os.urandom(HANDSHAKE_SIZE - 8)
    reply = hs.feed(b"\x03" + c1)
    assert len(reply) == 1 + 2 * HANDSHAKE_SIZE
    assert reply[0] == 3
    assert reply[5:9] == b"\x00\x00\x00\x00"          # S1 announces no server version: no digest
    assert reply[1 + HANDSHAKE_SIZE:] == c1           # S2 echoes C1
    assert not hs.done
    assert hs.feed(reply[1:1 + HANDSHAKE_SIZE]) == b""  # C2
    assert hs.done and hs.leftover == b"" and not hs.digest


@pytest.mark.parametrize("scheme", [0, 1])
def test_digest_handshake_validates_like_ffmpeg(scheme: int) -> None:
    c1 = signed_c1(scheme)
    assert find_client_digest(c1) is not None
    hs = ServerHandshake()
    reply = hs.feed(b"\x03" + c1)
    s1 = reply[1:1 + HANDSHAKE_SIZE]
    s2 = reply[1 + HANDSHAKE_SIZE:]
    assert hs.digest
    assert s1[4] >= 3  # FFmpeg only validates servers that announce version >= 3
    # FFmpeg: the S1 digest (at either scheme's offset) is signed with the 36-byte server key
    valid = []
    for s in (0, 1):
        off = digest_offset(s1, s)
        valid.append(_hmac(FMS_KEY[:36], s1[:off] + s1[off + 32:]) == s1[off:off + 32])
    assert any(valid)
    # FFmpeg: S2's last 32 bytes = HMAC(HMAC(full server key, client digest), S2 without them)
    off = digest_offset(c1, scheme)
    key = _hmac(FMS_KEY, c1[off:off + 32])
    assert _hmac(key, s2[:-32]) == s2[-32:]


def test_unsigned_c1_with_a_version_falls_back_to_echo() -> None:
    c1 = b"\x00\x00\x00\x00\x09\x00\x7c\x02" + os.urandom(HANDSHAKE_SIZE - 8)
    reply = ServerHandshake().feed(b"\x03" + c1)
    assert reply[1 + HANDSHAKE_SIZE:] == c1


def test_byte_by_byte_feeding_and_leftover() -> None:
    hs = ServerHandshake()
    data = b"\x03" + signed_c1(0)
    replies = b"".join(hs.feed(data[i:i + 1]) for i in range(len(data)))
    assert len(replies) == 1 + 2 * HANDSHAKE_SIZE
    c2_and_connect = os.urandom(HANDSHAKE_SIZE) + b"\x03connect..."
    assert hs.feed(c2_and_connect) == b""
    assert hs.done and hs.leftover == b"\x03connect..."


@pytest.mark.parametrize(("first", "reason"), [(b"\x06", "RTMPE"), (b"G", "version 71"), (b"\x00", "version 0")])
def test_wrong_c0_is_refused_at_once(first: bytes, reason: str) -> None:
    with pytest.raises(HandshakeError, match=reason):
        ServerHandshake().feed(first + b"ET / HTTP/1.1\r\n")

"""The STUN codec and TCP framing of Kiln's TURN server: what a client sends may be cut anywhere by TCP,
and anything malformed is the server's own error, never another exception."""

from __future__ import annotations

import struct

import pytest
from aioice import stun

from kiln.media.rtc.turn import codec
from kiln.media.rtc.turn.auth import integrity_key
from kiln.media.rtc.turn.codec import TurnProtocolError
from kiln.media.rtc.turn.framing import Frame, StreamFramer, channel_data


def _request(**attrs: object) -> stun.Message:
    return stun.Message(stun.Method.ALLOCATE, stun.Class.REQUEST, attributes=dict(attrs))


def test_parse_reads_a_signed_request_and_every_peer_address() -> None:
    message = stun.Message(stun.Method.CREATE_PERMISSION, stun.Class.REQUEST,
                           attributes={"XOR-PEER-ADDRESS": ("10.0.0.1", 1), "USERNAME": "ome"})
    key = integrity_key("ome", "kiln", "airen")
    raw = bytes(message)
    # a second XOR-PEER-ADDRESS, appended by hand (aioice's dict keeps one): both are read
    extra = struct.pack("!HH", 0x0012, 8) + stun.pack_xor_address(("10.0.0.2", 2), message.transaction_id)
    raw = raw[:2] + struct.pack("!H", len(raw) - 20 + len(extra)) + raw[4:] + extra
    mac = stun.message_integrity(raw, key)
    raw = raw[:2] + struct.pack("!H", len(raw) - 20 + 24) + raw[4:] + struct.pack("!HH", 0x0008, 20) + mac
    parsed = codec.parse(raw)
    assert parsed.peers == (("10.0.0.1", 1), ("10.0.0.2", 2))
    assert parsed.message.attributes["USERNAME"] == "ome"
    assert parsed.message.check_message_integrity(key)
    assert parsed.unknown_required == ()


@pytest.mark.parametrize("mangle", [
    lambda raw: raw[:19],                                     # shorter than a header
    lambda raw: b"\x80" + raw[1:],                            # first bits set
    lambda raw: raw[:4] + b"\x00\x00\x00\x00" + raw[8:],      # no magic cookie
    lambda raw: raw[:2] + struct.pack("!H", 6) + raw[4:],     # length not a multiple of 4 / not matching
    lambda raw: raw + struct.pack("!HH", 0x000D, 40),         # attribute running past the end
    # a 2-byte LIFETIME
    lambda raw: raw[:2] + struct.pack("!H", 8) + raw[4:20] + struct.pack("!HHH", 0x000D, 2, 7) + b"\0\0",
    lambda raw: raw[:2] + struct.pack("!H", 12) + raw[4:20] + struct.pack("!HH", 0x0012, 8) + b"\0\x09" + b"\0" * 6,
])
def test_malformed_messages_raise_the_codec_error(mangle: object) -> None:
    raw = bytes(_request())
    bad = mangle(raw)  # type: ignore[operator]
    if len(bad) >= 4 and bad[2:4] == raw[2:4] and bad[20:]:
        bad = bad[:2] + struct.pack("!H", len(bad) - 20) + bad[4:]
    with pytest.raises(TurnProtocolError):
        codec.parse(bad)


def test_unknown_comprehension_required_attributes_are_listed_in_a_420() -> None:
    raw = bytes(_request(LIFETIME=600))
    extra = struct.pack("!HH", 0x0018, 1) + b"\x80\0\0\0" + struct.pack("!HH", 0x8055, 0)   # EVEN-PORT + optional
    raw = raw[:2] + struct.pack("!H", len(raw) - 20 + len(extra)) + raw[4:] + extra
    parsed = codec.parse(raw)
    assert parsed.unknown_required == (0x0018,)
    answer = codec.error(parsed.message, 420, "Unknown Attribute", unknown=parsed.unknown_required)
    reply = stun.parse_message(answer)  # FINGERPRINT still right after UNKNOWN-ATTRIBUTES went in
    assert reply.error_code == 420 and reply.message_class == stun.Class.ERROR
    assert struct.pack("!HHH", 0x000A, 2, 0x0018) in answer


def test_signed_responses_verify_with_the_key() -> None:
    key = integrity_key("ome", "kiln", "airen")
    request = _request()
    answer = stun.parse_message(codec.response(request, {"LIFETIME": 600}, key))
    assert answer.transaction_id == request.transaction_id
    assert answer.check_message_integrity(key)
    assert not answer.check_message_integrity(integrity_key("ome", "kiln", "wrong"))


def test_the_framer_cuts_stun_and_padded_channel_data_whatever_the_reads() -> None:
    stun_bytes = bytes(_request(LIFETIME=5))
    stream = stun_bytes + channel_data(0x4001, b"abcde") + channel_data(0x4FFF, b"") + stun_bytes
    assert len(channel_data(0x4001, b"abcde")) == 12        # 4 header + 5 data + 3 padding
    for size in (1, 3, 7, len(stream)):
        framer = StreamFramer()
        frames: list[Frame] = []
        for i in range(0, len(stream), size):
            frames += framer.feed(stream[i:i + size])
        assert frames == [Frame(None, stun_bytes), Frame(0x4001, b"abcde"), Frame(0x4FFF, b""),
                          Frame(None, stun_bytes)]


@pytest.mark.parametrize("garbage", [b"\xc0\x00\x00\x00", b"\x50\x00\x00\x04abcd", b"\xffGET / HTTP/1.1\r\n",
                                     b"\x00\x01\x00\x03" + b"\0" * 16])
def test_the_framer_refuses_what_is_not_turn(garbage: bytes) -> None:
    with pytest.raises(TurnProtocolError):
        StreamFramer().feed(garbage)


def test_the_largest_channel_data_passes_and_nothing_is_buffered_beyond_it() -> None:
    framer = StreamFramer()
    assert framer.feed(struct.pack("!HH", 0x4000, 0xFFFF)) == []
    frames = framer.feed(b"x" * 0xFFFF + b"\0")       # 65535 bytes + 1 byte of padding
    assert frames == [Frame(0x4000, b"x" * 0xFFFF)]
    assert framer.feed(b"") == []

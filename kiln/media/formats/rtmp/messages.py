"""RTMP messages (Adobe RTMP spec §5.4, §6, §7): types, control payloads, aggregate splitting."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from kiln.media.formats.rtmp.errors import RtmpProtocolError

SET_CHUNK_SIZE = 1
ABORT = 2
ACKNOWLEDGEMENT = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
AUDIO = 8
VIDEO = 9
DATA_AMF3 = 15
SHARED_OBJECT_AMF3 = 16
COMMAND_AMF3 = 17
DATA_AMF0 = 18
SHARED_OBJECT_AMF0 = 19
COMMAND_AMF0 = 20
AGGREGATE = 22

# User Control event types (§7.1.7)
UC_STREAM_BEGIN = 0
UC_STREAM_EOF = 1
UC_STREAM_DRY = 2
UC_SET_BUFFER_LENGTH = 3
UC_STREAM_IS_RECORDED = 4
UC_PING_REQUEST = 6
UC_PING_RESPONSE = 7

# chunk stream ids the server writes on (the conventional ones; any 2..65599 is legal)
CSID_CONTROL = 2
CSID_COMMAND = 3

PEER_BANDWIDTH_DYNAMIC = 2

_U32 = struct.Struct(">I")


@dataclass(slots=True)
class RtmpMessage:
    type_id: int
    timestamp: int          # 32-bit message timestamp in milliseconds (wraps)
    stream_id: int
    payload: bytes | bytearray  # a message read in several chunks keeps the buffer it was assembled in
    csid: int = 0           # chunk stream it arrived on (0 for messages not read from chunks)

    def __init__(self, type_id: int, timestamp: int, stream_id: int, payload: bytes | bytearray,
                 csid: int = 0) -> None:
        # written out so that mypyc compiles it (a generated dataclass __init__ runs as bytecode per message)
        self.type_id = type_id
        self.timestamp = timestamp
        self.stream_id = stream_id
        self.payload = payload
        self.csid = csid


def u32_payload(value: int) -> bytes:
    return _U32.pack(value & 0xFFFFFFFF)


def set_peer_bandwidth_payload(window: int, limit_type: int = PEER_BANDWIDTH_DYNAMIC) -> bytes:
    return _U32.pack(window) + bytes([limit_type])


def user_control_payload(event: int, *values: int) -> bytes:
    return struct.pack(">H", event) + b"".join(_U32.pack(v & 0xFFFFFFFF) for v in values)


def parse_u32(payload: bytes | bytearray, what: str) -> int:
    if len(payload) < 4:
        raise RtmpProtocolError(f"{what} message has {len(payload)} bytes, needs 4")
    value: int = _U32.unpack_from(payload)[0]
    return value


def split_aggregate(message: RtmpMessage) -> list[RtmpMessage]:
    """The audio/video/data sub-messages of an Aggregate message (§7.1.6): FLV tags whose
    timestamps are offset so that the first one equals the aggregate's own timestamp."""
    data = message.payload
    out: list[RtmpMessage] = []
    pos = 0
    base: int | None = None
    n = len(data)
    while pos < n:
        if pos + 11 > n:
            raise RtmpProtocolError("aggregate message truncated in a sub-message header")
        kind = data[pos] & 0x1F
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        ts = int.from_bytes(data[pos + 4:pos + 7], "big") | (data[pos + 7] << 24)
        end = pos + 11 + size
        if end + 4 > n:
            raise RtmpProtocolError("aggregate sub-message overruns the aggregate")
        if kind not in (AUDIO, VIDEO, DATA_AMF0):
            raise RtmpProtocolError(f"aggregate holds message type {kind}")
        if base is None:
            base = ts
        out.append(RtmpMessage(kind, (message.timestamp + ts - base) & 0xFFFFFFFF, message.stream_id,
                               bytes(data[pos + 11:end]), message.csid))
        pos = end + 4  # back pointer
    return out

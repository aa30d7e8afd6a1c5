"""TURN over TCP: STUN messages and ChannelData back to back on one stream (RFC 8656 §12.5).

The first two bits tell them apart (00 STUN, 01 ChannelData); a STUN message's length is in its header,
a ChannelData's length excludes the padding to 4 bytes that TCP requires. Anything else on the stream
means the peer is not speaking TURN: :class:`TurnProtocolError`, and the connection is closed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from kiln.media.rtc.turn.codec import HEADER, TurnProtocolError

CHANNEL_MIN = 0x4000
CHANNEL_MAX = 0x4FFF      # 0x5000-0x7FFF are reserved (RFC 8656 §12)
MAX_BUFFERED = 4 * 65536  # a frame is at most 65535 + 20 bytes: more than this pending is a broken peer


@dataclass(frozen=True)
class Frame:
    channel: int | None     # None: a STUN message; else the ChannelData's channel number
    data: bytes             # the whole STUN message, or the ChannelData's application data (no padding)


def channel_data(channel: int, payload: bytes) -> bytes:
    """A ChannelData message padded for TCP."""
    return struct.pack("!HH", channel, len(payload)) + payload + bytes(-len(payload) % 4)


class StreamFramer:
    """Cuts a TCP byte stream into frames, whatever the reads' boundaries."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        if len(self._buffer) > MAX_BUFFERED:
            raise TurnProtocolError("more than a frame's worth of bytes without a whole frame")
        frames: list[Frame] = []
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= 4:
            first = buf[pos] >> 6
            number, length = struct.unpack_from("!HH", buf, pos)
            if first == 0:
                if length % 4:
                    raise TurnProtocolError("STUN message length is not a multiple of 4")
                end = pos + HEADER + length
                if end > len(buf):
                    break
                frames.append(Frame(None, bytes(buf[pos:end])))
            elif first == 1:
                if number > CHANNEL_MAX:
                    raise TurnProtocolError(f"ChannelData on reserved channel 0x{number:04x}")
                end = pos + 4 + length + (-length % 4)
                if end > len(buf):
                    break
                frames.append(Frame(number, bytes(buf[pos + 4:pos + 4 + length])))
            else:
                raise TurnProtocolError(f"neither STUN nor ChannelData (first byte 0x{buf[pos]:02x})")
            pos = end
        del buf[:pos]
        return frames

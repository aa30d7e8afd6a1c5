"""Fuzz targets for the TURN server's input (``IceCandidates/TcpRelay``): the TCP byte stream a client sends,
cut into frames and parsed, and the same stream driven through a whole connection after a valid allocation.
Bad input may only raise the codec's error, or close the connection."""

from __future__ import annotations

import asyncio

from aioice import stun
from hypothesis import given
from hypothesis import strategies as st

from kiln.media.rtc.turn import codec
from kiln.media.rtc.turn.codec import TurnProtocolError
from kiln.media.rtc.turn.framing import StreamFramer, channel_data
from tests.fuzz.budget import bounded, fuzz, only
from tests.fuzz.strategies import mutated
from tests.unit.rtc.turn.test_server import UDP, Client, Clock, _server


def _seeds() -> list[bytes]:
    allocate = stun.Message(stun.Method.ALLOCATE, stun.Class.REQUEST,
                            attributes={"REQUESTED-TRANSPORT": UDP, "LIFETIME": 600, "USERNAME": "ome",
                                        "REALM": "kiln", "NONCE": b"0-0"})
    allocate.add_message_integrity(b"k" * 16)
    bind = stun.Message(stun.Method.CHANNEL_BIND, stun.Class.REQUEST,
                        attributes={"CHANNEL-NUMBER": 0x4000, "XOR-PEER-ADDRESS": ("203.0.113.7", 10000)})
    send = stun.Message(stun.Method.SEND, stun.Class.INDICATION,
                        attributes={"XOR-PEER-ADDRESS": ("203.0.113.7", 10000), "DATA": b"x" * 13})
    return [bytes(allocate), bytes(bind) + channel_data(0x4000, b"rtp" * 7), bytes(send) + bytes(bind)]


def _frames(data: bytes, cut: int) -> None:
    framer = StreamFramer()
    for i in range(0, len(data), cut):
        for frame in framer.feed(data[i:i + cut]):
            if frame.channel is None:
                codec.parse(frame.data)


@fuzz(2.0)
@given(mutated(_seeds()), st.integers(1, 64))
def test_turn_stream_frames_and_messages(data: bytes, cut: int) -> None:
    only(TurnProtocolError, _frames, data, cut)


@fuzz(1.0)
@given(mutated(_seeds()))
def test_turn_connection_after_an_allocation(data: bytes) -> None:
    async def main() -> None:
        relays: list[object] = []
        client = Client(_server(Clock(), relays))   # type: ignore[arg-type]
        client.allocate()
        with bounded():
            client.send(data)
        # a connection closed for bad input released its allocation and relayed socket (no leak)
        if client.wire.closed:
            assert client.conn.allocation is None and all(r.closed for r in relays)  # type: ignore[attr-defined]
    asyncio.run(main())

"""The TURN server's connection logic, byte for byte as a client sees it: a connection is driven through an
in-memory transport, relayed sockets are in-memory, and the clock is the test's."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any

import pytest
from aioice import stun

from kiln.media.rtc.turn.auth import integrity_key
from kiln.media.rtc.turn.framing import StreamFramer, channel_data
from kiln.media.rtc.turn.server import TurnConnection, TurnLimits, TurnServer
from kiln.media.rtc.turn.targets import RelayTargets

KEY = integrity_key("ome", "kiln", "airen")
ICE = ("127.0.0.1", 10000)
UDP = 0x11000000


class Wire(asyncio.Transport):
    """What the connection writes, as the client reads it."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = False
        self.backlog = 0

    def write(self, data: Any) -> None:
        self.out += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("198.51.100.7", 40000) if name == "peername" else default


class MemoryRelay:
    def __init__(self, port: int, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.address = ("127.0.0.1", port)
        self.on_datagram = on_datagram
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.closed = False

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((data, addr))

    def close(self) -> None:
        self.closed = True


class Client:
    """One TCP connection to the server, speaking TURN by hand."""

    def __init__(self, server: TurnServer) -> None:
        self.server = server
        self.wire = Wire()
        self.conn = TurnConnection(server)
        self.conn.connection_made(self.wire)
        self.framer = StreamFramer()
        self.nonce: bytes | None = None

    def send(self, data: bytes) -> None:
        self.conn.data_received(data)

    def frames(self) -> list[Any]:
        got = self.framer.feed(bytes(self.wire.out))
        self.wire.out.clear()
        return [f if f.channel is not None else stun.parse_message(f.data) for f in got]

    def ask(self, method: stun.Method, sign: bool = True, password: str = "airen", **attrs: Any) -> stun.Message:
        message = stun.Message(method, stun.Class.REQUEST, attributes=dict(attrs))
        if sign:
            message.attributes.update({"USERNAME": "ome", "REALM": "kiln", "NONCE": self.nonce or b"none"})
            message.add_message_integrity(integrity_key("ome", "kiln", password))
        self.send(bytes(message))
        (answer,) = self.frames()
        assert answer.transaction_id == message.transaction_id
        if answer.message_class == stun.Class.ERROR and "NONCE" in answer.attributes:
            self.nonce = answer.attributes["NONCE"]
        return answer  # type: ignore[no-any-return]

    def allocate(self, **attrs: Any) -> stun.Message:
        if self.nonce is None:
            first = self.ask(stun.Method.ALLOCATE, sign=False, **{"REQUESTED-TRANSPORT": UDP})
            assert first.error_code == 401
        return self.ask(stun.Method.ALLOCATE, **{"REQUESTED-TRANSPORT": UDP, **attrs})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _server(clock: Clock, relays: list[MemoryRelay], **limits: Any) -> TurnServer:
    def open_relay(host: str, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> MemoryRelay:
        relay = MemoryRelay(50000 + len(relays), on_datagram)
        relays.append(relay)
        return relay
    return TurnServer("127.0.0.1", 0, RelayTargets.of("127.0.0.1", [10000, 10001], ["203.0.113.7"]),
                      limits=TurnLimits(**limits), open_relay=open_relay, clock=clock)


def run(test: Callable[[], None]) -> None:
    async def main() -> None:
        test()
    asyncio.run(main())


def test_allocate_needs_the_long_term_credentials() -> None:
    def test() -> None:
        clock, relays = Clock(), []
        client = Client(_server(clock, relays))
        first = client.ask(stun.Method.ALLOCATE, sign=False, **{"REQUESTED-TRANSPORT": UDP})
        assert first.error_code == 401 and first.attributes["REALM"] == "kiln" and first.attributes["NONCE"]
        wrong = client.ask(stun.Method.ALLOCATE, password="guess", **{"REQUESTED-TRANSPORT": UDP})
        assert wrong.error_code == 401 and relays == []
        ok = client.ask(stun.Method.ALLOCATE, **{"REQUESTED-TRANSPORT": UDP, "LIFETIME": 60})
        assert ok.message_class == stun.Class.RESPONSE and ok.check_message_integrity(KEY)
        assert ok.attributes["XOR-RELAYED-ADDRESS"] == ("127.0.0.1", 50000)
        assert ok.attributes["XOR-MAPPED-ADDRESS"] == ("198.51.100.7", 40000)
        assert ok.attributes["LIFETIME"] == 600   # never below the default for an Allocate
        again = client.ask(stun.Method.ALLOCATE, **{"REQUESTED-TRANSPORT": UDP})
        assert again.error_code == 437 and again.check_message_integrity(KEY)
    run(test)


def test_a_stale_nonce_gets_438_and_a_new_one() -> None:
    def test() -> None:
        clock, relays = Clock(), []
        client = Client(_server(clock, relays))
        assert client.allocate().message_class == stun.Class.RESPONSE
        old = client.nonce
        clock.now += 601
        stale = client.ask(stun.Method.REFRESH, LIFETIME=600)
        assert stale.error_code == 438 and stale.attributes["NONCE"] != old
        assert client.ask(stun.Method.REFRESH, LIFETIME=600).message_class == stun.Class.RESPONSE
    run(test)


def test_refusals_other_transport_capacity_and_no_allocation() -> None:
    def test() -> None:
        clock, relays = Clock(), []
        server = _server(clock, relays, max_allocations=1)
        a = Client(server)
        assert a.allocate(**{"REQUESTED-TRANSPORT": 0x06000000}).error_code == 442
        ipv6 = stun.Message(stun.Method.ALLOCATE, stun.Class.REQUEST, attributes={
            "REQUESTED-TRANSPORT": UDP, "USERNAME": "ome", "REALM": "kiln", "NONCE": a.nonce})
        raw = bytes(ipv6) + struct.pack("!HHB3x", 0x0017, 4, 2)       # REQUESTED-ADDRESS-FAMILY IPv6
        raw = raw[:2] + struct.pack("!H", len(raw) - 20) + raw[4:]
        signed = raw[:2] + struct.pack("!H", len(raw) - 20 + 24) + raw[4:] + struct.pack("!HH", 0x0008, 20) \
            + stun.message_integrity(raw, KEY)
        a.send(signed)
        assert [f.error_code for f in a.frames()] == [440]
        assert a.ask(stun.Method.CREATE_PERMISSION, **{"XOR-PEER-ADDRESS": ("203.0.113.7", 0)}).error_code == 437
        assert a.allocate().message_class == stun.Class.RESPONSE
        b = Client(server)
        assert b.allocate().error_code == 508 and server.refused_capacity == 1
        assert server.allocations == 1
    run(test)


def test_permission_only_for_kilns_ice_addresses_and_data_both_ways() -> None:
    def test() -> None:
        clock, relays = Clock(), []
        client = Client(_server(clock, relays))
        client.allocate()
        relay = relays[0]
        foreign = client.ask(stun.Method.CREATE_PERMISSION, **{"XOR-PEER-ADDRESS": ("8.8.8.8", 53)})
        assert foreign.error_code == 403
        send = stun.Message(stun.Method.SEND, stun.Class.INDICATION,
                            attributes={"XOR-PEER-ADDRESS": ("203.0.113.7", 10000), "DATA": b"early"})
        client.send(bytes(send))
        assert relay.sent == []       # no permission yet: discarded
        ok = client.ask(stun.Method.CREATE_PERMISSION, **{"XOR-PEER-ADDRESS": ("203.0.113.7", 10000)})
        assert ok.message_class == stun.Class.RESPONSE
        client.send(bytes(send))
        # the advertised (public) address is reached on the ICE port as this host sees it
        assert relay.sent == [(b"early", ("127.0.0.1", 10000))]
        relay.on_datagram(b"from kiln", ("127.0.0.1", 10000))
        relay.on_datagram(b"from elsewhere", ("127.0.0.1", 9999))
        (data,) = client.frames()
        assert data.message_method == stun.Method.DATA and data.message_class == stun.Class.INDICATION
        assert data.attributes == {"XOR-PEER-ADDRESS": ("203.0.113.7", 10000), "DATA": b"from kiln"}
        clock.now += 301
        relay.on_datagram(b"after expiry", ("127.0.0.1", 10000))
        assert client.frames() == []
    run(test)


def test_channels_carry_padded_channel_data_split_across_reads() -> None:
    def test() -> None:
        clock, relays = Clock(), []
        client = Client(_server(clock, relays))
        client.allocate()
        relay = relays[0]
        peer = ("203.0.113.7", 10001)
        bound = client.ask(stun.Method.CHANNEL_BIND, **{"CHANNEL-NUMBER": 0x4000, "XOR-PEER-ADDRESS": peer})
        assert bound.message_class == stun.Class.RESPONSE
        assert client.ask(stun.Method.CHANNEL_BIND, **{"CHANNEL-NUMBER": 0x4001,
                                                        "XOR-PEER-ADDRESS": peer}).error_code == 400
        assert client.ask(stun.Method.CHANNEL_BIND, **{"CHANNEL-NUMBER": 0x4002,
                                                        "XOR-PEER-ADDRESS": ("203.0.113.7", 5)}).error_code == 403
        stream = channel_data(0x4000, b"rtp one") + channel_data(0x4000, b"two!") + channel_data(0x4009, b"nobody")
        for i in range(len(stream)):
            client.send(stream[i:i + 1])
        assert relay.sent == [(b"rtp one", ("127.0.0.1", 10001)), (b"two!", ("127.0.0.1", 10001))]
        relay.on_datagram(b"srtp back", ("127.0.0.1", 10001))
        assert client.wire.out == channel_data(0x4000, b"srtp back")
        assert len(client.wire.out) % 4 == 0
        client.wire.out.clear()
        client.wire.backlog = 10 << 20          # a client that does not read: dropped, never buffered
        relay.on_datagram(b"x" * 1000, ("127.0.0.1", 10001))
        assert client.wire.out == b"" and client.conn.dropped == 1
    run(test)


def test_refresh_zero_deletes_and_expiry_closes() -> None:
    def test() -> None:
        clock, relays = Clock(), []
        server = _server(clock, relays)
        a, b = Client(server), Client(server)
        a.allocate()
        b.allocate()
        gone = a.ask(stun.Method.REFRESH, LIFETIME=0)
        assert gone.attributes["LIFETIME"] == 0 and relays[0].closed and a.conn.allocation is None
        assert a.ask(stun.Method.REFRESH, LIFETIME=600).error_code == 437
        clock.now += 599
        server.sweep()
        assert not b.wire.closed
        clock.now += 2
        server.sweep()
        assert b.wire.closed and relays[1].closed and server.allocations == 0
    run(test)


NOT_TURN = [b"\xffGET / HTTP/1.1\r\n\r\n", b"\x00\x03\x00\x04" + b"\0" * 20,
            b"\x00\x03\x00\x08" + b"\x21\x12\xa4\x42" + b"\0" * 12 + b"\x00\x0d\x00\x09" + b"\0" * 4]


@pytest.mark.parametrize("garbage", NOT_TURN)
def test_what_is_not_turn_closes_the_connection_quietly(garbage: bytes) -> None:
    def test() -> None:
        clock, relays = Clock(), []
        client = Client(_server(clock, relays))
        client.allocate()
        client.send(garbage)
        assert client.wire.closed and relays[0].closed
        client.send(b"more")            # after the close: ignored, no exception
    run(test)


def test_binding_requests_are_answered_and_other_methods_refused() -> None:
    def test() -> None:
        client = Client(_server(Clock(), []))
        binding = client.ask(stun.Method.BINDING, sign=False)
        assert binding.message_class == stun.Class.RESPONSE
        assert binding.attributes["XOR-MAPPED-ADDRESS"] == ("198.51.100.7", 40000)
        assert client.ask(stun.Method.SHARED_SECRET, sign=False).error_code == 400
    run(test)


def test_a_connection_without_an_allocation_is_closed_when_idle_and_connections_are_capped() -> None:
    async def main() -> None:
        server = _server(Clock(), [], idle_s=0.05, max_connections=1)
        idle = Client(server)
        extra = Client(server)
        assert extra.wire.closed and server.connections == {idle.conn}
        for _ in range(1000):  # up to ~10 s: a loaded machine
            if idle.wire.closed:
                break
            await asyncio.sleep(0.01)
        assert idle.wire.closed
    asyncio.run(main())

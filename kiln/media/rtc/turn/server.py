"""The TURN server on ``IceCandidates/TcpRelay`` (RFC 8656, TCP to the client, UDP relayed addresses).

One :class:`TurnConnection` per TCP connection holds at most one allocation (its 5-tuple is the
connection). Requests are authenticated with the long-term credentials (401 with realm and nonce, 438
for a stale nonce); Allocate, Refresh, CreatePermission, ChannelBind, Send indications and ChannelData
are served; Binding requests are answered. Peers are Kiln's ICE ports only (:mod:`.targets`): a
permission for any other address is refused (403). Limits: ``max_allocations`` (508 beyond it),
``max_connections`` (closed at once), a connection without an allocation is closed after ``idle_s``,
allocations, permissions and channels expire, and data for a client whose TCP buffer is full is dropped
(as the UDP it stands for would be). A peer that does not speak TURN is logged and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from aioice import stun

from kiln.media.rtc.turn import codec
from kiln.media.rtc.turn.allocation import Allocation, BindRefused, granted_lifetime
from kiln.media.rtc.turn.auth import Credentials
from kiln.media.rtc.turn.codec import TurnProtocolError
from kiln.media.rtc.turn.framing import Frame, StreamFramer, channel_data
from kiln.media.rtc.turn.relay import Relay, RelayOpener, open_udp_relay
from kiln.media.rtc.turn.targets import Address, RelayTargets

log = logging.getLogger(__name__)

UDP = 17
AUTHENTICATED = (stun.Method.ALLOCATE, stun.Method.REFRESH, stun.Method.CREATE_PERMISSION,
                 stun.Method.CHANNEL_BIND)


@dataclass(frozen=True)
class TurnLimits:
    max_allocations: int = 1000
    max_connections: int = 2000
    idle_s: float = 30.0             # a connection that holds no allocation this long is closed
    write_buffer: int = 2 << 20      # relayed data for a client with more than this unsent is dropped
    sweep_s: float = 5.0


class TurnServer:
    def __init__(self, host: str, port: int, targets: RelayTargets, *, credentials: Credentials | None = None,
                 limits: TurnLimits = TurnLimits(), open_relay: RelayOpener = open_udp_relay,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.port = port
        self.targets = targets
        self.credentials = credentials or Credentials()
        self.limits = limits
        self.open_relay = open_relay
        self.clock = clock
        self.connections: set[TurnConnection] = set()
        self.allocations_made = 0
        self.refused_capacity = 0
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def allocations(self) -> int:
        return sum(1 for c in self.connections if c.allocation is not None)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: TurnConnection(self), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._sweeper = loop.create_task(self._sweep_forever())
        log.info("webrtc turn listening address=%s:%d transport=tcp relay_to=%s:%s max_allocations=%d", self.host,
                 self.port, self.targets.local_host, ",".join(str(p) for p in sorted(self.targets.ports)),
                 self.limits.max_allocations)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close("server shutdown")
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.limits.sweep_s)
            self.sweep()

    def sweep(self) -> None:
        """Expire allocations (closing their connection), permissions and channel bindings."""
        now = self.clock()
        for connection in list(self.connections):
            connection.sweep(now)


class TurnConnection(asyncio.Protocol):
    def __init__(self, server: TurnServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.client: Address = ("", 0)
        self.framer = StreamFramer()
        self.allocation: Allocation | None = None
        self.relay: Relay | None = None
        self.dropped = 0
        self._idle: asyncio.TimerHandle | None = None
        self._closed = False

    # -- asyncio.Protocol --
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername") or ("", 0)
        self.client = (str(peer[0]), int(peer[1]))
        if len(self.server.connections) >= self.server.limits.max_connections:
            log.warning("webrtc turn connection refused client=%s:%d reason=max_connections %d", *self.client,
                        self.server.limits.max_connections)
            self._closed = True
            transport.close()
            return
        self.server.connections.add(self)
        self._idle = asyncio.get_running_loop().call_later(self.server.limits.idle_s, self._idle_expired)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            for frame in self.framer.feed(data):
                self._frame(frame)
                if self._closed:
                    return
        except TurnProtocolError as exc:
            self.close(f"not TURN: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        self._release("connection closed")
        self._closed = True
        self.server.connections.discard(self)

    # -- life --
    def close(self, reason: str) -> None:
        if self._closed:
            return
        log.info("webrtc turn connection closed client=%s:%d reason=%s", *self.client, reason)
        self._release(reason)
        self._closed = True
        self.server.connections.discard(self)
        if self.transport is not None:
            self.transport.close()

    def _idle_expired(self) -> None:
        if self.allocation is None:
            self.close(f"no allocation within {self.server.limits.idle_s:g} s")

    def _release(self, reason: str) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self.relay is not None:
            self.relay.close()
            self.relay = None
        if self.allocation is not None:
            log.info("webrtc turn allocation ended client=%s:%d relayed=%s:%d reason=%s dropped=%d", *self.client,
                     *self.allocation.relayed, reason, self.dropped)
            self.allocation = None

    def sweep(self, now: float) -> None:
        if self.allocation is None:
            return
        if not self.allocation.alive(now):
            self.close("allocation expired")
            return
        self.allocation.sweep(now)

    # -- frames --
    def _frame(self, frame: Frame) -> None:
        if frame.channel is not None:
            self._channel_data(frame.channel, frame.data)
            return
        parsed = codec.parse(frame.data)
        message = parsed.message
        if message.message_class == stun.Class.INDICATION:
            if message.message_method == stun.Method.SEND:
                self._send_indication(parsed)
            return
        if message.message_class != stun.Class.REQUEST:
            return  # responses to nothing this server asked: ignored
        if message.message_method == stun.Method.BINDING:
            self._write(codec.response(message, {"XOR-MAPPED-ADDRESS": self.client}, None))
            return
        if message.message_method not in AUTHENTICATED:
            self._write(codec.error(message, 400, "Bad Request"))
            return
        if parsed.unknown_required:
            self._write(codec.error(message, 420, "Unknown Attribute", unknown=parsed.unknown_required))
            return
        key = self._authenticate(message)
        if key is None:
            return
        if message.message_method == stun.Method.ALLOCATE:
            if parsed.family not in (None, 1):   # relayed addresses are IPv4 (RFC 8656 §7.2 step 7)
                self._write(codec.error(message, 440, "Address Family not Supported", key=key))
                return
            self._allocate(message, key)
        elif self.allocation is None:
            self._write(codec.error(message, 437, "Allocation Mismatch", key=key))
        elif message.message_method == stun.Method.REFRESH:
            self._refresh(message, key)
        elif message.message_method == stun.Method.CREATE_PERMISSION:
            self._create_permission(message, parsed.peers, key)
        else:
            self._channel_bind(message, parsed.peers, key)

    def _authenticate(self, message: stun.Message) -> bytes | None:
        """The long-term key when ``message`` is signed with it and a fresh nonce; else the error is sent."""
        creds, now = self.server.credentials, self.server.clock()
        challenge = {"REALM": creds.realm, "NONCE": creds.nonce(now)}
        attrs = message.attributes
        if "MESSAGE-INTEGRITY" not in attrs:
            self._write(codec.error(message, 401, "Unauthorized", challenge))
            return None
        if not all(name in attrs for name in ("USERNAME", "REALM", "NONCE")):
            self._write(codec.error(message, 400, "Bad Request"))
            return None
        if not creds.nonce_fresh(attrs["NONCE"], now):
            self._write(codec.error(message, 438, "Stale Nonce", challenge))
            return None
        if attrs["USERNAME"] != creds.username or attrs["REALM"] != creds.realm \
                or not message.check_message_integrity(creds.key):
            log.info("webrtc turn unauthorized client=%s:%d username=%r", *self.client, attrs["USERNAME"][:64])
            self._write(codec.error(message, 401, "Unauthorized", challenge))
            return None
        return creds.key

    def _allocate(self, message: stun.Message, key: bytes) -> None:
        attrs = message.attributes
        if self.allocation is not None:
            self._write(codec.error(message, 437, "Allocation Mismatch", key=key))
            return
        transport = attrs.get("REQUESTED-TRANSPORT")
        if transport is None:
            self._write(codec.error(message, 400, "Bad Request: no REQUESTED-TRANSPORT", key=key))
            return
        if transport >> 24 != UDP:
            self._write(codec.error(message, 442, "Unsupported Transport Protocol", key=key))
            return
        server = self.server
        if server.allocations >= server.limits.max_allocations:
            server.refused_capacity += 1
            log.warning("webrtc turn allocation refused client=%s:%d reason=max_allocations %d", *self.client,
                        server.limits.max_allocations)
            self._write(codec.error(message, 508, "Insufficient Capacity", key=key))
            return
        try:
            self.relay = server.open_relay(server.targets.local_host, self._relayed)
        except OSError as exc:
            log.warning("webrtc turn allocation refused client=%s:%d reason=relay socket: %s", *self.client, exc)
            self._write(codec.error(message, 508, "Insufficient Capacity", key=key))
            return
        requested = attrs.get("LIFETIME")
        lifetime = max(granted_lifetime(requested), granted_lifetime(None))
        now = server.clock()
        self.allocation = Allocation(self.relay.address, now + lifetime)
        server.allocations_made += 1
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        log.info("webrtc turn allocation client=%s:%d relayed=%s:%d lifetime_s=%d", *self.client,
                 *self.relay.address, lifetime)
        self._write(codec.response(message, {"XOR-RELAYED-ADDRESS": self.relay.address, "LIFETIME": lifetime,
                                             "XOR-MAPPED-ADDRESS": self.client}, key))

    def _refresh(self, message: stun.Message, key: bytes) -> None:
        assert self.allocation is not None
        lifetime = granted_lifetime(message.attributes.get("LIFETIME"))
        if lifetime == 0:
            self._write(codec.response(message, {"LIFETIME": 0}, key))
            self._release("deleted by the client")
            self._idle = asyncio.get_running_loop().call_later(self.server.limits.idle_s, self._idle_expired)
            return
        self.allocation.refresh(lifetime, self.server.clock())
        self._write(codec.response(message, {"LIFETIME": lifetime}, key))

    def _create_permission(self, message: stun.Message, peers: tuple[Address, ...], key: bytes) -> None:
        assert self.allocation is not None
        if not peers:
            self._write(codec.error(message, 400, "Bad Request: no XOR-PEER-ADDRESS", key=key))
            return
        refused = [p for p in peers if not self.server.targets.allowed_ip(p[0])]
        if refused:
            log.info("webrtc turn permission refused client=%s:%d peer=%s reason=not one of Kiln's ICE addresses",
                     *self.client, refused[0][0])
            self._write(codec.error(message, 403, "Forbidden", key=key))
            return
        now = self.server.clock()
        for peer in peers:
            self.allocation.permit(peer[0], now)
        self._write(codec.response(message, {}, key))

    def _channel_bind(self, message: stun.Message, peers: tuple[Address, ...], key: bytes) -> None:
        assert self.allocation is not None
        number = message.attributes.get("CHANNEL-NUMBER")
        if number is None or len(peers) != 1:
            self._write(codec.error(message, 400, "Bad Request: CHANNEL-NUMBER and one XOR-PEER-ADDRESS", key=key))
            return
        if self.server.targets.destination(peers[0]) is None:
            log.info("webrtc turn channel refused client=%s:%d peer=%s:%d reason=not one of Kiln's ICE ports",
                     *self.client, *peers[0])
            self._write(codec.error(message, 403, "Forbidden", key=key))
            return
        try:
            self.allocation.bind(number, peers[0], self.server.clock())
        except BindRefused as exc:
            self._write(codec.error(message, 400, f"Bad Request: {exc}", key=key))
            return
        self._write(codec.response(message, {}, key))

    # -- data --
    def _send_indication(self, parsed: codec.Parsed) -> None:
        data = parsed.message.attributes.get("DATA")
        if self.allocation is None or data is None or len(parsed.peers) != 1:
            return
        self._to_peer(parsed.peers[0], data)

    def _channel_data(self, number: int, data: bytes) -> None:
        if self.allocation is None:
            return
        peer = self.allocation.peer_of(number, self.server.clock())
        if peer is not None:
            self._to_peer(peer, data)

    def _to_peer(self, peer: Address, data: bytes) -> None:
        assert self.allocation is not None
        destination = self.server.targets.destination(peer)
        if destination is None or self.relay is None or not self.allocation.permitted(peer[0], self.server.clock()):
            return   # RFC 8656 §11.2/§12.4: silently discarded
        self.relay.sendto(data, destination)

    def _relayed(self, data: bytes, source: Address) -> None:
        """A datagram on the relayed address: to the client if it came from an ICE port the client permitted."""
        allocation, targets = self.allocation, self.server.targets
        if allocation is None or self._closed or not targets.from_ice_port(source):
            return
        now = self.server.clock()
        ip = next((ip for ip in targets.peer_ips if allocation.permitted(ip, now)), None)
        if ip is None:
            return
        peer = (ip, source[1])
        if self.transport is None or self.transport.get_write_buffer_size() > self.server.limits.write_buffer:
            self.dropped += 1
            return
        number = allocation.channel_of(peer, now)
        if number is not None:
            self.transport.write(channel_data(number, data))
        else:
            self.transport.write(codec.indication(stun.Method.DATA, {"XOR-PEER-ADDRESS": peer, "DATA": data}))

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self._closed:
            self.transport.write(data)


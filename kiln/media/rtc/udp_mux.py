"""Every WebRTC session on a few shared UDP ports, as OME serves them (``*:10000-10004/udp``).

aioice binds one socket per session on an ephemeral port; Kiln binds the configured ports once and
gives each session a virtual socket on one of them (round robin). Datagrams are routed by
:mod:`kiln.media.rtc.stun_route`: checks by ufrag, the rest by the remote address a session has
spoken with. A datagram no session claims is counted and dropped. A session's virtual socket
closes with its ICE connection, removing its routes, so nothing outlives a viewer. An ICE restart adds
a second ufrag for the same session (``route``) until the new pair is chosen (``unroute``, ``forget``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from typing import Any, cast

from aioice.ice import StunProtocol

from kiln.media.rtc.stun_route import binding_request_ufrag

log = logging.getLogger(__name__)

RECEIVE_BUFFER = 4 << 20  # a port carries many viewers' RTCP and checks at once
SEND_BUFFER = 4 << 20

Address = tuple[str, int]


class VirtualTransport(asyncio.DatagramTransport):
    """What one session's StunProtocol sees as its socket: sends go out of the shared port."""

    def __init__(self, port: SharedUdpPort, protocol: StunProtocol) -> None:
        super().__init__()
        self._port = port
        self._protocol = protocol
        self._closing = False

    def sendto(self, data: Any, addr: Any = None) -> None:
        if self._closing or addr is None:
            return
        self._port.send_for(self._protocol, bytes(data), (addr[0], addr[1]))

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._port.detach(self._protocol)
        asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self._closing

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sockname":
            return self._port.sockname
        return default


class SharedUdpPort(asyncio.DatagramProtocol):
    """One bound UDP port and the sessions it carries."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.transport: asyncio.DatagramTransport | None = None
        self.send_socket: socket.socket | None = None  # the port's socket for threads (media send threads)
        self.sockname: Address = (host, port)
        self._by_ufrag: dict[str, StunProtocol] = {}
        self._by_addr: dict[Address, StunProtocol] = {}
        self.unrouted = 0

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self.port))
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            # a transport may only be used from its loop (uvloop's not at all from elsewhere): threads that send
            # media get their own descriptor of the same socket, non-blocking as the loop's (one file status)
            self.send_socket = socket.socket(fileno=os.dup(sock.fileno()))
            self.send_socket.setblocking(False)
        name = transport.get_extra_info("sockname")
        self.sockname = (name[0], name[1])
        self.port = name[1]

    def close(self) -> None:
        for protocol in list(self._by_ufrag.values()):
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transport.close()
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self.send_socket is not None:
            self.send_socket.close()  # a send thread's sendto then fails (EBADF): a lost packet, never another fd
            self.send_socket = None

    @property
    def sessions(self) -> int:
        return len({id(p) for p in self._by_ufrag.values()})  # a restarting session has two ufrags

    # -- sessions --
    def attach(self, ufrag: str, make: Callable[[], StunProtocol]) -> StunProtocol:
        """A session's protocol on this port, checks for ``ufrag`` routed to it."""
        if ufrag in self._by_ufrag:
            raise ValueError(f"ufrag {ufrag!r} already has a session on port {self.port}")
        protocol = make()
        protocol.connection_made(VirtualTransport(self, protocol))
        self._by_ufrag[ufrag] = protocol
        return protocol

    def route(self, ufrag: str, protocol: StunProtocol) -> None:
        """Checks for ``ufrag`` also go to ``protocol`` (an ICE restart's new credentials)."""
        if self._by_ufrag.get(ufrag, protocol) is not protocol:
            raise ValueError(f"ufrag {ufrag!r} already has a session on port {self.port}")
        self._by_ufrag[ufrag] = protocol

    def unroute(self, ufrag: str, protocol: StunProtocol) -> None:
        """Checks for ``ufrag`` no longer reach ``protocol`` (a restart's old or abandoned credentials)."""
        if self._by_ufrag.get(ufrag) is protocol:
            del self._by_ufrag[ufrag]

    def forget(self, addr: Address, protocol: StunProtocol) -> None:
        """Datagrams from ``addr`` are no longer ``protocol``'s (a remote address a restart moved away from)."""
        if self._by_addr.get(addr) is protocol:
            del self._by_addr[addr]

    def detach(self, protocol: StunProtocol) -> None:
        for ufrag in [u for u, p in self._by_ufrag.items() if p is protocol]:
            del self._by_ufrag[ufrag]
        for addr in [a for a, p in self._by_addr.items() if p is protocol]:
            del self._by_addr[addr]

    def send_for(self, protocol: StunProtocol, data: bytes, addr: Address) -> None:
        if self.transport is None:
            return
        self._by_addr.setdefault(addr, protocol)  # its answers come back from there
        self.transport.sendto(data, addr)

    # -- asyncio.DatagramProtocol --
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        remote: Address = (addr[0], addr[1])
        protocol = self._by_addr.get(remote)
        if protocol is None:
            ufrag = binding_request_ufrag(data)
            protocol = self._by_ufrag.get(ufrag) if ufrag is not None else None
            if protocol is None:
                self.unrouted += 1
                return
            self._by_addr[remote] = protocol
        protocol.datagram_received(data, remote)

    def error_received(self, exc: Exception) -> None:
        log.debug("webrtc udp port error port=%d error=%s", self.port, exc)


class PortPool:
    """The configured UDP ports; a new session takes the next one in turn."""

    def __init__(self, host: str, ports: tuple[int, ...], advertise: tuple[str, ...] = ()) -> None:
        if not ports:
            raise ValueError("a port pool needs at least one port")
        self.ports = [SharedUdpPort(host, p) for p in ports]
        self.advertise = advertise
        self._next = 0

    async def open(self) -> None:
        opened: list[SharedUdpPort] = []
        try:
            for port in self.ports:
                await port.open()
                opened.append(port)
        except OSError:
            for port in opened:
                port.close()
            raise

    def close(self) -> None:
        for port in self.ports:
            port.close()

    def next_port(self) -> SharedUdpPort:
        port = self.ports[self._next % len(self.ports)]
        self._next += 1
        return port

    @property
    def sessions(self) -> int:
        return sum(p.sessions for p in self.ports)

    def addresses(self) -> list[Address]:
        return [p.sockname for p in self.ports]

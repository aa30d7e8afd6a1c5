"""An allocation's relayed UDP socket: opened at once (the Allocate answer needs its address), read by the
loop's reader callback and written with non-blocking ``sendto`` (a full socket drops, as UDP does)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

Address = tuple[str, int]
OnDatagram = Callable[[bytes, Address], None]
READS_PER_WAKE = 64
BUFFER = 1 << 20


class Relay(Protocol):
    address: Address

    def sendto(self, data: bytes, addr: Address) -> None: ...

    def close(self) -> None: ...


RelayOpener = Callable[[str, OnDatagram], Relay]


class UdpRelay:
    def __init__(self, host: str, on_datagram: OnDatagram) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.setblocking(False)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)
            self._sock.bind((host, 0))
        except OSError:
            self._sock.close()
            raise
        name = self._sock.getsockname()
        self.address: Address = (name[0], name[1])
        self._on_datagram = on_datagram
        self.dropped = 0
        self._loop.add_reader(self._sock.fileno(), self._readable)

    def _readable(self) -> None:
        for _ in range(READS_PER_WAKE):
            try:
                data, addr = self._sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:   # an ICMP error for an earlier send: nothing to do for UDP
                log.debug("turn relay receive error relayed=%s:%d error=%s", *self.address, exc)
                return
            self._on_datagram(data, (addr[0], addr[1]))

    def sendto(self, data: bytes, addr: Address) -> None:
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.dropped += 1
        except OSError as exc:
            self.dropped += 1
            log.debug("turn relay send error relayed=%s:%d peer=%s:%d error=%s", *self.address, *addr, exc)

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()


def open_udp_relay(host: str, on_datagram: OnDatagram) -> Relay:
    return UdpRelay(host, on_datagram)

"""A DNS server the test holds: it hears every query and answers none until told, as a name server that does not
answer (a resolver then waits its whole timeout), then answers every held and later query with one address.

It listens on UDP port 53 of an address of its own in 127.0.0.0/8 (resolv.conf names no port), so several tests on
one machine do not collide; binding port 53 needs root, as the mount namespace its users put Kiln in does.
"""

from __future__ import annotations

import logging
import random
import socket
import threading

import dns.message
import dns.rdatatype
import dns.rrset

from tests.peers.ports import wait_until

log = logging.getLogger(__name__)


class HeldDns:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(50):
            address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
            try:
                self.sock.bind((address, 53))
                break
            except OSError:
                continue
        else:
            raise OSError("no free 127.x.y.z:53 to bind")
        self.address = address
        self.sock.settimeout(0.2)  # close() does not wake a blocked recvfrom: the loop looks at _closed
        self._closed = False
        self.asked: list[str] = []  # query names, in order (A and AAAA of one lookup both count)
        self._held: list[tuple[dns.message.Message, tuple[str, int]]] = []
        self._answer: str | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="held-dns", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except Exception:  # noqa: BLE001 - a malformed datagram is not the test's business
                continue
            with self._lock:
                self.asked.append(str(query.question[0].name).rstrip(".") if query.question else "")
                if self._answer is None:
                    self._held.append((query, peer))
                    continue
            self._reply(query, peer, self._answer)

    def _reply(self, query: dns.message.Message, peer: tuple[str, int], address: str) -> None:
        response = dns.message.make_response(query)
        question = query.question[0] if query.question else None
        if question is not None and question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", address))
        try:
            self.sock.sendto(response.to_wire(), peer)
        except OSError:
            pass

    def wait_asked(self, name: str, timeout: float = 20.0) -> None:
        wait_until(lambda: name in self.asked, timeout, f"a DNS query for {name}")

    def answer(self, address: str) -> None:
        """From now on answer every query (A: ``address``; others: no record), the held ones first."""
        with self._lock:
            self._answer = address
            held, self._held = self._held, []
        for query, peer in held:
            self._reply(query, peer, address)

    def close(self) -> None:
        self._closed = True
        self._thread.join(5)
        self.sock.close()

"""Where relayed data may go: Kiln's own ICE ports, and nowhere else.

A player behind a UDP-blocking firewall allocates a relayed address here and asks permission for the
address Kiln's ICE candidate advertises (``IceCandidates``). That address may be a public IP Kiln cannot
send to from inside (NAT), so a permitted peer is mapped to the ICE port as this host reaches it, and
datagrams from that port are shown to the player as coming from the address it permitted.
"""

from __future__ import annotations

from dataclasses import dataclass

Address = tuple[str, int]
_WILDCARDS = ("0.0.0.0", "", "*")


@dataclass(frozen=True)
class RelayTargets:
    local_host: str                 # where relayed sockets bind and where the ICE ports are reached
    ports: frozenset[int]           # the ICE ports
    peer_ips: tuple[str, ...]       # addresses a player may name for them (advertised first)

    @classmethod
    def of(cls, bound: str, ports: list[int], advertised: list[str]) -> RelayTargets:
        """``bound``: the ICE ports' bound address; ``advertised``: what their candidates say."""
        if ":" in bound:   # IPv6 ICE ports: relayed addresses are IPv4 only (RFC 8656's default family)
            raise ValueError("TURN relays to IPv4 ICE ports only")
        local = "127.0.0.1" if bound in _WILDCARDS else bound
        ips = [a for a in advertised if a]
        ips += [ip for ip in (bound, local) if ip not in _WILDCARDS and ip not in ips]
        return cls(local, frozenset(ports), tuple(ips))

    def allowed_ip(self, ip: str) -> bool:
        return ip in self.peer_ips

    def destination(self, peer: Address) -> Address | None:
        """Where a datagram for ``peer`` goes, or None when ``peer`` is not one of Kiln's ICE ports."""
        if peer[1] in self.ports and peer[0] in self.peer_ips:
            return (self.local_host, peer[1])
        return None

    def from_ice_port(self, source: Address) -> bool:
        return source[0] == self.local_host and source[1] in self.ports

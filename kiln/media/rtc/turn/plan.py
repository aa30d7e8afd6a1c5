"""``IceCandidates/TcpRelay`` read: the port Kiln's TURN server listens on, and the ``turn:`` URLs players get.

OME's forms: ``*:3478`` (one URL per local IPv4 address), ``<IP or name>:3478`` (that address as is, e.g. a
public IP behind NAT), ``${PublicIP}:3478`` (STUN discovery: not done by Kiln, local addresses are used
and a warning says so). The URLs carry ``?transport=tcp`` and OME's fixed credentials; players get them
in the signalling offer (``iceServers`` and the legacy ``ice_servers``) when they ask ``?transport=tcp``
or ``TcpForce`` is set, and in WHIP/WHEP ``Link`` headers (RFC 8840 / WHIP §4.4) on every 201.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kiln.media.rtc.signalling import IceServer
from kiln.media.rtc.turn.auth import PASSWORD, USERNAME

_RELAY = re.compile(r"^\s*(?P<address>\[[0-9A-Fa-f:.]+\]|\$\{PublicIP\}|[^:/\s\[\]]+)\s*:\s*(?P<port>\d{1,5})"
                    r"\s*(?:/\s*tcp\s*)?$", re.IGNORECASE)
_ANY = ("*", "0.0.0.0", "::", "${PublicIP}")


class TcpRelayError(ValueError):
    """A TcpRelay value Kiln cannot read; the text names it."""


@dataclass(frozen=True)
class TcpRelay:
    address: str          # "*", "${PublicIP}", or the address/name to advertise
    port: int
    force: bool = False   # TcpForce: every offer carries the TURN server, as if ?transport=tcp

    @classmethod
    def parse(cls, text: str, force: bool = False) -> TcpRelay:
        match = _RELAY.match(text)
        if match is None:
            raise TcpRelayError(f"TcpRelay {text!r} is not <address>:<port>")
        port = int(match.group("port"))
        if not 0 <= port < 65536:
            raise TcpRelayError(f"TcpRelay {text!r}: port out of range")
        return cls(match.group("address").strip("[]"), port, force)

    @property
    def warnings(self) -> tuple[str, ...]:
        if self.address == "${PublicIP}":
            return ("TcpRelay ${PublicIP}: public address discovery is not implemented by Kiln, local addresses "
                    "are advertised",)
        return ()

    def urls(self, local_addresses: list[str], port: int | None = None) -> tuple[str, ...]:
        """The ``turn:`` URLs: the configured address, or one per local address when it is ``*``."""
        port = port or self.port
        hosts = local_addresses if self.address in _ANY else [self.address]
        return tuple(f"turn:{_host(h)}:{port}?transport=tcp" for h in hosts)


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@dataclass(frozen=True)
class TurnOffer:
    """What signalling and WHIP/WHEP tell players about the TURN server."""

    servers: tuple[IceServer, ...]
    force: bool

    @classmethod
    def of(cls, urls: tuple[str, ...], force: bool) -> TurnOffer:
        return cls((IceServer(urls, USERNAME, PASSWORD),) if urls else (), force)

    def for_offer(self, transport: str | None) -> tuple[IceServer, ...]:
        """The ``iceServers`` of an offer: only when the player asked ``?transport=tcp`` or TcpForce is set
        (OvenPlayer and OvenLiveKit go relay-only when they receive them)."""
        return self.servers if self.force or (transport or "").lower() == "tcp" else ()

    def link_headers(self) -> list[str]:
        """``Link`` header values for a WHIP/WHEP 201, OME's form."""
        return [f'<{url}>; rel="ice-server"; username="{s.username}"; credential="{s.credential}"; '
                f'credential-type="password"' for s in self.servers for url in s.urls]

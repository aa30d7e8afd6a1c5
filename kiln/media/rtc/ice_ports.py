"""Where WebRTC media goes: ``Bind/Publishers|Providers/WebRTC/IceCandidates/IceCandidate``.

OME's form is ``<address>:<ports>/<transport>``, e.g. ``*:10000-10004/udp``: ``*`` advertises every
local address, an explicit address (``1.2.3.4``, a public IP behind NAT) is advertised as is, and
``${PublicIP}`` asks a STUN server (not done by Kiln: warned, local addresses are used). Kiln
serves UDP candidates; ``/tcp`` candidates are not implemented and say so. WebRTC over TCP is
``TcpRelay``, Kiln's TURN server (:mod:`kiln.media.rtc.turn`), which relays to these UDP ports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kiln.config.ports import PortError, parse_port_list

_CANDIDATE = re.compile(r"^\s*(?P<address>\[[0-9A-Fa-f:.]+\]|[^:/\s]+|\$\{PublicIP\})\s*:\s*(?P<ports>[0-9,\-\s]+)"
                        r"\s*(?:/\s*(?P<transport>[A-Za-z]+))?\s*$")


class IceConfigError(ValueError):
    """An IceCandidate Kiln cannot read; the text names it."""


@dataclass(frozen=True)
class IceCandidateSpec:
    """One IceCandidate: ``address`` is ``*`` (every local address) or the address to advertise."""

    address: str
    ports: tuple[int, ...]
    transport: str = "udp"

    @property
    def any_address(self) -> bool:
        return self.address in ("*", "${PublicIP}")


@dataclass(frozen=True)
class IcePlan:
    """The UDP ports Kiln binds for WebRTC media and what it advertises on each; ``warnings`` say what of
    the configuration is not served (TCP candidates, public-IP discovery)."""

    ports: tuple[int, ...]
    advertise: tuple[str, ...]          # explicit addresses; empty: the addresses the socket is bound on
    warnings: tuple[str, ...] = ()


def parse_ice_candidate(text: str) -> IceCandidateSpec:
    match = _CANDIDATE.match(text)
    if match is None:
        raise IceConfigError(f"IceCandidate {text!r} is not <address>:<port or range>[/udp|tcp]")
    transport = (match.group("transport") or "udp").lower()
    if transport not in ("udp", "tcp"):
        raise IceConfigError(f"IceCandidate {text!r}: transport must be udp or tcp")
    try:
        ports = parse_port_list(match.group("ports"))
    except PortError as exc:
        raise IceConfigError(f"IceCandidate {text!r}: {exc}") from None
    address = match.group("address").strip("[]")
    return IceCandidateSpec(address, tuple(ports), transport)


def ice_plan(candidates: str | None) -> IcePlan:
    """The plan for ``BindConfig.webrtc_candidate_ports`` (IceCandidate values joined by ``,``... each of
    which may itself hold a port list, so entries are split on the address prefix)."""
    if not candidates:
        return IcePlan((), (), ("no IceCandidates configured: WebRTC media uses ephemeral UDP ports",))
    ports: list[int] = []
    advertise: list[str] = []
    warnings: list[str] = []
    for spec in (parse_ice_candidate(item) for item in _split_candidates(candidates)):
        if spec.transport == "tcp":
            warnings.append(f"IceCandidate {spec.address}:{_ports_text(spec.ports)}/tcp: ICE over TCP is not "
                            "implemented by Kiln, the candidate is not served")
            continue
        if spec.address == "${PublicIP}":
            warnings.append("IceCandidate ${PublicIP}: public address discovery is not implemented by Kiln, "
                            "local addresses are advertised")
        elif not spec.any_address and spec.address not in advertise:
            advertise.append(spec.address)
        ports += [p for p in spec.ports if p not in ports]
    if not ports:
        warnings.append("no UDP IceCandidate configured: WebRTC media uses ephemeral UDP ports")
    return IcePlan(tuple(ports), tuple(advertise), tuple(warnings))


def _split_candidates(joined: str) -> list[str]:
    """``*:10000-10004/udp,1.2.3.4:10006/udp`` -> the two candidates (a comma may also sit inside one
    candidate's port list, ``*:10000,10002/udp``, so a piece without an address joins the previous one)."""
    out: list[str] = []
    for piece in joined.split(","):
        if ":" in piece or not out:
            out.append(piece)
        else:
            out[-1] += "," + piece
    return [p for p in (o.strip() for o in out) if p]


def _ports_text(ports: tuple[int, ...]) -> str:
    return f"{ports[0]}-{ports[-1]}" if len(ports) > 1 else str(ports[0])

"""Opening the TURN server at startup from ``Bind/.../WebRTC/IceCandidates`` (``TcpRelay``, ``TcpForce``)."""

from __future__ import annotations

import logging

from aioice.ice import get_host_addresses

from kiln.media.rtc.connection import advertised_address
from kiln.media.rtc.turn.plan import TcpRelay, TcpRelayError, TurnOffer
from kiln.media.rtc.turn.server import TurnServer
from kiln.media.rtc.turn.targets import RelayTargets
from kiln.media.rtc.udp_mux import PortPool

log = logging.getLogger(__name__)
_WILDCARDS = ("0.0.0.0", "", "*", "::")


async def open_turn(host: str, tcp_relay: str | None, tcp_force: bool,
                    pool: PortPool | None) -> tuple[TurnServer, TurnOffer] | None:
    """The running TURN server and what offers say about it; None (logged) when TcpRelay is not set or
    there are no shared ICE ports to relay to. A TcpRelay Kiln cannot read stops startup (OSError)."""
    if not tcp_relay:
        if tcp_force:
            log.warning("webrtc turn TcpForce is set without TcpRelay: no TURN server, offers carry none")
        return None
    try:
        relay = TcpRelay.parse(tcp_relay, tcp_force)
    except TcpRelayError as exc:
        raise OSError(f"Server.Bind.Publishers.WebRTC.IceCandidates: {exc}") from None
    for warning in relay.warnings:
        log.warning("webrtc turn %s", warning)
    if pool is None:
        log.warning("webrtc turn not opened tcp_relay=%s reason=it relays to the IceCandidates UDP ports and none "
                    "is configured", tcp_relay)
        return None
    bound = pool.ports[0].sockname[0]
    advertised = list(pool.advertise) or [advertised_address(pool, bound)]
    try:
        targets = RelayTargets.of(bound, [p.port for p in pool.ports], advertised)
    except ValueError as exc:
        log.warning("webrtc turn not opened tcp_relay=%s reason=%s", tcp_relay, exc)
        return None
    server = TurnServer(host, relay.port, targets)
    try:
        await server.start()
    except OSError as exc:   # a busy port stops `kiln serve` with one line naming the element
        raise OSError(exc.errno, f"Server.Bind.Publishers.WebRTC.IceCandidates.TcpRelay {host}:{relay.port}: "
                                 f"{exc.strerror or exc}") from None
    local = [host] if host not in _WILDCARDS else (get_host_addresses(use_ipv4=True, use_ipv6=False) or ["127.0.0.1"])
    offer = TurnOffer.of(relay.urls(local, server.port), relay.force)
    log.info("webrtc turn offers urls=%s force=%s (without TcpForce only players asking ?transport=tcp get them)",
             ",".join(url for s in offer.servers for url in s.urls), relay.force)
    return server, offer

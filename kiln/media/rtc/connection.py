"""aiortc peer connections whose ICE runs on Kiln's shared UDP ports (:mod:`kiln.media.rtc.udp_mux`).

aiortc builds its aioice ``Connection`` itself, deep inside ``RTCIceGatherer``; Kiln swaps in a
factory once (``install``) that builds a :class:`PooledConnection` while a pool is in the context
(``new_peer_connection`` sets it) and aiortc's own class otherwise, so aiortc used elsewhere in the
process (a test's client, a bench viewer) is untouched. A pooled connection gathers one host
candidate per advertised address on one shared port and no STUN/TURN candidates: the server's
addresses are known, and the browser's reflexive address is learned from its checks. A pooled
connection can restart ICE (:mod:`kiln.media.rtc.ice_restart`): its new ufrag is routed to the same
virtual socket, so the session, its DTLS and SRTP go on while the new pair is checked.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
from typing import Any

import aioice
import aiortc.rtcicetransport as rtcicetransport
from aioice import stun
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import StunProtocol, get_host_addresses
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcconfiguration import RTCBundlePolicy

from kiln.media.rtc.ice_restart import RestartableConnection
from kiln.media.rtc.udp_mux import PortPool, SharedUdpPort

log = logging.getLogger(__name__)

_POOL: contextvars.ContextVar[PortPool | None] = contextvars.ContextVar("kiln_rtc_pool", default=None)
_MADE: contextvars.ContextVar[list[PooledConnection] | None] = contextvars.ContextVar("kiln_rtc_made", default=None)
_CONSENT: contextvars.ContextVar[float] = contextvars.ContextVar("kiln_rtc_consent", default=30.0)
CONSENT_CHECKS = 6  # consent requests per timeout (aioice: 6 every 5 s)
_installed = False
_WILDCARDS = ("0.0.0.0", "::", "")


class PooledConnection(RestartableConnection):
    """An aioice connection whose host candidates live on a shared port of ``pool``."""

    def __init__(self, pool: PortPool, consent_timeout_s: float, **kwargs: Any) -> None:
        kwargs.pop("stun_server", None)  # the server's addresses are configured, not discovered
        super().__init__(**kwargs)
        self.pool = pool
        self.consent_timeout_s = consent_timeout_s
        self._routes: list[tuple[SharedUdpPort, StunProtocol]] = []

    async def get_component_candidates(self, component: int, addresses: list[str],
                                       timeout: int = 5) -> list[Candidate]:
        port = self.pool.next_port()
        address = advertised_address(self.pool, port.sockname[0])
        protocol = port.attach(self.local_username, lambda: StunProtocol(self))
        self._routes.append((port, protocol))
        # aioice pairs checks by protocol, one local candidate each: one address per session
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", address), component=component, transport="udp",
            priority=candidate_priority(component, "host"), host=address, port=port.port, type="host")
        self._protocols.append(protocol)
        return [protocol.local_candidate]

    async def query_consent(self) -> None:
        """Consent freshness (RFC 7675) on the configured timeout instead of aioice's fixed 30 s: a viewer
        that answers no consent request for ``consent_timeout_s`` is closed (its session then ends)."""
        assert self.remote_password is not None
        interval = self.consent_timeout_s / CONSENT_CHECKS
        answered = time.monotonic()
        while True:
            await asyncio.sleep(interval * (0.8 + 0.4 * random.random()))
            for pair in list(self._nominated.values()):
                request, key = self.consent_request(pair)  # a restarting pair keeps its credentials
                try:
                    await pair.protocol.request(request, pair.remote_addr, integrity_key=key, retransmissions=0)
                    answered = time.monotonic()
                except stun.TransactionError:
                    pass
            silent = time.monotonic() - answered
            if silent >= self.consent_timeout_s:
                log.info("webrtc ice consent expired local_username=%s silent_s=%.1f timeout_s=%.1f",
                         self.local_username, silent, self.consent_timeout_s)
                self._query_consent_task = None
                await self.close()
                return

    # -- how a restart's credentials and addresses reach this connection on the shared ports --
    def _route_ufrag(self, ufrag: str) -> None:
        for port, protocol in self._routes:
            port.route(ufrag, protocol)

    def _unroute_ufrag(self, ufrag: str) -> None:
        for port, protocol in self._routes:
            port.unroute(ufrag, protocol)

    def _forget_address(self, addr: tuple[str, int]) -> None:
        for port, protocol in self._routes:
            port.forget(addr, protocol)


def advertised_address(pool: PortPool, bound: str) -> str:
    """The address a pooled session advertises: the configured one, else the bound one, else (bound on
    every interface) the machine's first non-loopback IPv4 address."""
    if pool.advertise:
        return pool.advertise[0]
    if bound not in _WILDCARDS:
        return bound
    found = get_host_addresses(use_ipv4=True, use_ipv6=False)
    return found[0] if found else "127.0.0.1"


def _connection_factory(*args: Any, **kwargs: Any) -> aioice.Connection:
    pool = _POOL.get()
    if pool is None:
        return aioice.Connection(*args, **kwargs)
    connection = PooledConnection(pool, _CONSENT.get(), *args, **kwargs)
    made = _MADE.get()
    if made is not None:
        made.append(connection)
    return connection


def install() -> None:
    """Make aiortc build pooled ICE connections when a pool is in context (idempotent)."""
    global _installed
    if not _installed:
        setattr(rtcicetransport, "Connection", _connection_factory)  # noqa: B010 - aiortc reads it by name
        _installed = True


def new_peer_connection() -> RTCPeerConnection:
    """A peer connection with one bundled transport and no STUN server. Its ICE runs on a pool when
    aiortc creates the gatherer (the first ``addTransceiver``, or ``setRemoteDescription`` of an offer)
    inside :class:`pool_context`."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


class pool_context:  # noqa: N801 - used as a context manager, reads as one
    """``with pool_context(pool, consent_timeout_s) as made: pc.addTransceiver(...)``: gatherers created inside
    use ``pool``, their connections end when the peer answers no consent check for ``consent_timeout_s``, and
    ``made.connections`` lists them (an ICE restart is asked of the connection)."""

    def __init__(self, pool: PortPool | None, consent_timeout_s: float = 30.0) -> None:
        self.pool = pool
        self.consent_timeout_s = consent_timeout_s
        self.connections: list[PooledConnection] = []
        self._tokens: tuple[contextvars.Token[PortPool | None], contextvars.Token[float],
                            contextvars.Token[list[PooledConnection] | None]] | None = None

    def __enter__(self) -> pool_context:
        install()
        self._tokens = (_POOL.set(self.pool), _CONSENT.set(self.consent_timeout_s), _MADE.set(self.connections))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tokens is not None:
            _POOL.reset(self._tokens[0])
            _CONSENT.reset(self._tokens[1])
            _MADE.reset(self._tokens[2])
            self._tokens = None

"""aiortc peer connections whose ICE runs on Kiln's shared UDP ports (:mod:`kiln.media.rtc.udp_mux`).

aiortc builds its aioice ``Connection`` itself, deep inside ``RTCIceGatherer``; Kiln swaps in a
factory once (``install``) that builds a :class:`PooledConnection` while a pool is in the context
(``new_peer_connection`` sets it) and aiortc's own class otherwise, so aiortc used elsewhere in the
process (a test's client, a bench viewer) is untouched. A pooled connection gathers one host
candidate per advertised address on one shared port and no STUN/TURN candidates: the server's
addresses are known, and the browser's reflexive address is learned from its checks.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

import aioice
import aiortc.rtcicetransport as rtcicetransport
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import StunProtocol, get_host_addresses
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcconfiguration import RTCBundlePolicy

from kiln.media.rtc.udp_mux import PortPool

log = logging.getLogger(__name__)

_POOL: contextvars.ContextVar[PortPool | None] = contextvars.ContextVar("kiln_rtc_pool", default=None)
_installed = False
_WILDCARDS = ("0.0.0.0", "::", "")


class PooledConnection(aioice.Connection):
    """An aioice connection whose host candidates live on a shared port of ``pool``."""

    def __init__(self, pool: PortPool, **kwargs: Any) -> None:
        kwargs.pop("stun_server", None)  # the server's addresses are configured, not discovered
        super().__init__(**kwargs)
        self.pool = pool

    async def get_component_candidates(self, component: int, addresses: list[str],
                                       timeout: int = 5) -> list[Candidate]:
        port = self.pool.next_port()
        address = advertised_address(self.pool, port.sockname[0])
        protocol = port.attach(self.local_username, lambda: StunProtocol(self))
        # aioice pairs checks by protocol, one local candidate each: one address per session
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", address), component=component, transport="udp",
            priority=candidate_priority(component, "host"), host=address, port=port.port, type="host")
        self._protocols.append(protocol)
        return [protocol.local_candidate]


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
    return PooledConnection(pool, *args, **kwargs)


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
    """``with pool_context(pool): pc.addTransceiver(...)``: gatherers created inside use ``pool``."""

    def __init__(self, pool: PortPool | None) -> None:
        self.pool = pool
        self._token: contextvars.Token[PortPool | None] | None = None

    def __enter__(self) -> None:
        install()
        self._token = _POOL.set(self.pool)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _POOL.reset(self._token)

"""Opening the ICE port pool at startup, and saying in the log what it can and cannot do."""

from __future__ import annotations

import logging

from kiln.media.rtc.ice_ports import IceConfigError, ice_plan
from kiln.media.rtc.udp_mux import PortPool

log = logging.getLogger(__name__)


async def open_ice_pool(host: str, candidates: str | None) -> PortPool | None:
    """The shared UDP ports for ``IceCandidates`` bound on ``host``; None (logged) when none is configured,
    in which case each session takes an ephemeral port as aioice does."""
    try:
        plan = ice_plan(candidates)
    except IceConfigError as exc:
        raise OSError(f"Server.Bind.Publishers.WebRTC.IceCandidates: {exc}") from None
    for warning in plan.warnings:
        log.warning("webrtc ice %s", warning)
    if not plan.ports:
        return None
    pool = PortPool(host, plan.ports, plan.advertise)
    await pool.open()
    log.info("webrtc ice ports open host=%s ports=%s advertise=%s sessions_per_port=unbounded (routed by ICE ufrag, "
             "then by remote address)", host, ",".join(str(p) for p in plan.ports),
             ",".join(plan.advertise) or "bound address")
    return pool

"""srt-live-transmit (Debian srt-tools) as an SRT relay, listener or caller peer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.peers.ports import wait_udp_bound
from tests.peers.process import Peer

log = logging.getLogger(__name__)

SRT_LIVE_TRANSMIT = "srt-live-transmit"


def _bound_port(uri: str, *, is_source: bool) -> int | None:
    """The local UDP port this URI makes srt-live-transmit bind (listener SRT, or a UDP source)."""
    parts = urlsplit(uri)
    query = parse_qs(parts.query)
    if parts.scheme == "srt" and query.get("mode", [""])[0] == "listener":
        return parts.port
    if parts.scheme == "srt" and not parts.hostname:  # srt://:port is a listener too
        return parts.port
    if parts.scheme == "udp" and is_source:
        return parts.port
    return None


def srt_live_transmit(
    src: str,
    dst: str,
    *,
    log_dir: Path,
    exit_on_disconnect: bool = True,
    extra_args: Sequence[str] = (),
    ready_timeout: float = 10.0,
) -> Peer:
    """Run `srt-live-transmit src dst`; returns once any listening side (SRT listener, UDP source) is bound.

    With `exit_on_disconnect` (`-a:no`) it exits when the SRT peer leaves. A `file://con` destination
    writes to the peer's stdout file (`peer.stdout_path`).
    """
    argv = [SRT_LIVE_TRANSMIT, "-q"]
    if exit_on_disconnect:
        argv.append("-a:no")
    argv += [*extra_args, src, dst]
    peer = Peer.spawn("srt-live-transmit", argv, log_dir)
    for port in (_bound_port(src, is_source=True), _bound_port(dst, is_source=False)):
        if port:
            wait_udp_bound(port, ready_timeout, proc=peer)
    return peer

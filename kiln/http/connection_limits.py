"""Per-client limits on Kiln's uvicorn listeners (API, LL-HLS, Thumbnail): what a slowloris costs.

uvicorn times out an idle keep-alive connection, but not one that was just accepted, nor one that
sends half a request and stops: each holds a socket and a protocol object for ever. The protocol
here closes a connection that has not delivered a request's headers within ``request_timeout``
(from accept, or from the first bytes of a later request), and refuses connections beyond
``max_per_client`` from one address at once (closed at accept, logged). Header size is bounded by
h11 (``max_header_bytes``: uvicorn answers 400 and closes); the API bounds body size and time itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from kiln.config.limits import ConnectionLimits

log = logging.getLogger(__name__)

LOG_EVERY_S = 5.0


class _RateLimitedLog:
    def __init__(self) -> None:
        self.last = 0.0
        self.suppressed = 0

    def warn(self, text: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self.last < LOG_EVERY_S:
            self.suppressed += 1
            return
        log.warning(text + " suppressed_since_last=%d", *args, self.suppressed)
        self.last, self.suppressed = now, 0


def guarded_protocol(limits: ConnectionLimits, listener: str, base: type[Any] = H11Protocol) -> type[Any]:
    """An H11Protocol class (or a subclass of ``base``, another uvicorn HTTP protocol: media_protocol.py)
    for one listener (its counts are shared by that listener's connections)."""
    counts: dict[str, int] = {}
    refused_log, expired_log = _RateLimitedLog(), _RateLimitedLog()

    class GuardedH11Protocol(base):  # type: ignore[misc]
        _kiln_host: str | None = None
        _kiln_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            host = self.client[0] if self.client else ""
            if limits.max_per_client and counts.get(host, 0) >= limits.max_per_client:
                refused_log.warn("http connection refused listener=%s client=%s reason=too many connections "
                                 "limit=%d", listener, host, limits.max_per_client)
                transport.abort()
                return
            counts[host] = counts.get(host, 0) + 1
            self._kiln_host = host
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._release()
            self._disarm()
            super().connection_lost(exc)

        def _release(self) -> None:
            if self._kiln_host is not None:
                left = counts.get(self._kiln_host, 1) - 1
                if left > 0:
                    counts[self._kiln_host] = left
                else:
                    counts.pop(self._kiln_host, None)
                self._kiln_host = None

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.transport.get_protocol() is not self:
                # upgraded to a WebSocket: its protocol owns the connection now (and this one never hears
                # connection_lost), so no deadline may cut it and it no longer counts here
                self._disarm()
                self._release()
                return
            if self._waiting_for_headers():
                if self._kiln_deadline is None:
                    self._arm()
            else:
                self._disarm()

        def _waiting_for_headers(self) -> bool:
            return (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing()

        def _arm(self) -> None:
            self._disarm()
            self._kiln_deadline = self.loop.call_later(limits.request_timeout, self._expired)

        def _disarm(self) -> None:
            if self._kiln_deadline is not None:
                self._kiln_deadline.cancel()
                self._kiln_deadline = None

        def _expired(self) -> None:
            self._kiln_deadline = None
            if self._waiting_for_headers():
                expired_log.warn("http connection closed listener=%s client=%s reason=no request headers "
                                 "within %.1fs", listener, self._kiln_host, limits.request_timeout)
                self.transport.abort()

    GuardedH11Protocol.__name__ = f"GuardedH11Protocol[{listener}]"
    return GuardedH11Protocol

"""Pull on demand (media spec §4.1): a request for a stream that is not here starts a pull and waits.

Resolution order is OME's: the vhost's ``Origins`` (first matching location), then the
``OriginMapStore`` (Redis), else nothing (the player gets its 404). Many players asking for the
same missing stream at once share one pull; each waits at most ``PULL_WAIT_S``. A stream this
process is already pulling on demand is never pulled again from inside that pull (a describe
that comes back to us through a chain of edges is a loop, refused at once by ``busy``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kiln.events.redact import redact_url
from kiln.media.origins.rules import pull_properties, resolve

log = logging.getLogger(__name__)

PULL_WAIT_S = 15.0
RESOLVE_WAIT_S = 5.0


class PullStarter(Protocol):
    """The control plane: start a pull under ``vhost/app/name``; True once it connected."""

    async def start_pull(self, vhost: str, app: str, name: str, urls: list[str], properties: dict[str, Any],
                         cause: str, resolve: Callable[[], list[str]] | None = None) -> bool: ...


class VhostConfigs(Protocol):
    def vhost_config(self, vhost: str) -> dict[str, Any] | None: ...


class MapLookup(Protocol):
    async def lookup(self, vhost: str, app: str, stream: str) -> str | None:
        """The OVT URL an origin registered for ``app/stream`` (None: none, or Redis unreachable)."""


@dataclass(frozen=True)
class PullPlan:
    urls: list[str]
    properties: dict[str, Any]
    cause: str
    resolve: Callable[[], list[str]] | None = None  # asked again before each retry (OriginMapStore)


class OriginPuller:
    def __init__(self, configs: VhostConfigs, starter: PullStarter, map_lookup: MapLookup | None = None) -> None:
        self.configs = configs
        self.starter = starter
        self.map_lookup = map_lookup
        self._inflight: dict[tuple[str, str, str], asyncio.Future[bool]] = {}

    def busy(self, vhost: str, app: str, stream: str) -> bool:
        """This process is resolving or starting a pull of that stream right now."""
        return (vhost, app, stream) in self._inflight

    async def plan(self, vhost: str, app: str, stream: str, query: str, map_store: bool = True) -> PullPlan | None:
        config = self.configs.vhost_config(vhost) or {}
        origins = config.get("origins")
        found = resolve(origins, app, stream, query)
        if found is not None:
            return PullPlan(found.urls, found.properties, found.cause)
        if self.map_lookup is None or not map_store:
            return None
        url = await self.map_lookup.lookup(vhost, app, stream)
        if url is None:
            return None
        return PullPlan([url], pull_properties(origins, False), f"OriginMapStore key={app}/{stream}",
                        self._resolver(vhost, app, stream))

    def _resolver(self, vhost: str, app: str, stream: str) -> Callable[[], list[str]]:
        """For the pull's worker thread: look the stream up again on this loop, bounded."""
        loop = asyncio.get_running_loop()
        lookup = self.map_lookup

        def resolve() -> list[str]:
            if lookup is None:
                return []
            try:
                url = asyncio.run_coroutine_threadsafe(lookup.lookup(vhost, app, stream), loop).result(RESOLVE_WAIT_S)
            except Exception as exc:  # the loop is gone or the lookup did not answer: keep the old URLs
                log.info("origin re-resolve failed stream=%s/%s/%s reason=%s", vhost, app, stream,
                         type(exc).__name__)
                return []
            return [url] if url else []

        return resolve

    async def pull(self, vhost: str, app: str, stream: str, query: str = "", map_store: bool = True) -> bool:
        """Start (or join) the pull of a missing stream; True when it connected within ``PULL_WAIT_S``.
        ``map_store=False`` (an OVT describe, spec §3.2) tries the local Origins only."""
        key = (vhost, app, stream)
        running = self._inflight.get(key)
        if running is None:
            running = self._inflight[key] = asyncio.ensure_future(self._pull(vhost, app, stream, query, map_store))
            running.add_done_callback(lambda _f: self._inflight.pop(key, None))
        try:
            return await asyncio.wait_for(asyncio.shield(running), PULL_WAIT_S)
        except TimeoutError:
            log.warning("origin pull not ready vhost=%s app=%s stream=%s waited=%.0fs", vhost, app, stream,
                        PULL_WAIT_S)
            return False

    async def _pull(self, vhost: str, app: str, stream: str, query: str, map_store: bool) -> bool:
        plan = await self.plan(vhost, app, stream, query, map_store)
        if plan is None:
            log.info("origin pull: no origin vhost=%s app=%s stream=%s", vhost, app, stream)
            return False
        log.info("origin pull vhost=%s app=%s stream=%s urls=%s cause=%s", vhost, app, stream,
                 ",".join(redact_url(u) for u in plan.urls), plan.cause)
        try:
            return await self.starter.start_pull(vhost, app, stream, plan.urls, plan.properties, plan.cause,
                                                 plan.resolve)
        except Exception:  # a control-plane failure must answer the player, not hang it
            log.exception("origin pull failed vhost=%s app=%s stream=%s", vhost, app, stream)
            return False

"""DynamicAppRemoval's sweep: every ``sweep_s``, dynamic apps unused for ``idle_s`` are removed.

OME's orchestrator runs this every 10 s with a 60 s idle time; ``KILN_DYNAMIC_APP_IDLE_S`` and
``KILN_DYNAMIC_APP_SWEEP_S`` change both (tests use short ones; README). What is unused is decided
by ``kiln.domain.dynamic_apps.IdleApps``; the removal goes through the vhost actor, journaled
(``AppDeleted``), as DELETE app does, so a restart does not bring the app back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sized
from typing import Any, Protocol

import pykka

from kiln.actors.base import ActorGone, ask
from kiln.actors.commands import RemoveDynamicApp
from kiln.domain.dynamic_apps import IDLE_S, SWEEP_S, AppKey, IdleApps, Seen
from kiln.domain.errors import DomainError

log = logging.getLogger(__name__)

class DynamicApps(Protocol):
    def dynamic_apps(self) -> list[tuple[str, str, float]]:
        """Every dynamic app now: (vhost, app, created time)."""


class StreamsInApp(Protocol):
    def in_app(self, vhost: str, app: str) -> Sized: ...


class Vhosts(Protocol):
    def vhost(self, vhost: str) -> pykka.ActorRef[Any] | None: ...


class DynamicAppRemoval:
    def __init__(self, apps: DynamicApps, streams: StreamsInApp, vhosts: Vhosts, *, idle_s: float = IDLE_S,
                 sweep_s: float = SWEEP_S, clock: Callable[[], float] = time.time) -> None:
        self.apps = apps
        self.streams = streams
        self.vhosts = vhosts
        self.sweep_s = sweep_s
        self.clock = clock
        self.idle = IdleApps(clock(), idle_s)

    async def run(self) -> None:
        log.info("dynamic app removal on idle_s=%g sweep_s=%g", self.idle.idle_s, self.sweep_s)
        while True:
            await asyncio.sleep(self.sweep_s)
            try:
                await self.sweep()
            except Exception:  # one failed sweep must not end the module
                log.exception("dynamic app removal sweep failed")

    async def sweep(self) -> list[AppKey]:
        """Remove the apps unused for the idle time; returns those removed."""
        seen = [Seen(vhost, app, created, len(self.streams.in_app(vhost, app)) > 0)
                for vhost, app, created in self.apps.dynamic_apps()]
        removed = []
        for vhost, app in self.idle.due(seen, self.clock()):
            why = await remove_dynamic_app(self.vhosts, vhost, app)
            if why is not None:
                log.info("dynamic app not removed vhost=%s app=%s reason=%s", vhost, app, why)
                continue
            log.info("dynamic app unused for %gs, removed vhost=%s app=%s", self.idle.idle_s, vhost, app)
            removed.append((vhost, app))
        return removed


async def remove_dynamic_app(vhosts: Vhosts, vhost: str, app: str) -> str | None:
    """Remove a dynamic app through its vhost's actor (journaled, as DELETE app); None once removed, else why not
    (the vhost gone, the app gone or not dynamic, a stream in it)."""
    ref = vhosts.vhost(vhost)
    if ref is None:
        return "its vhost is gone"
    try:
        await ask(ref, RemoveDynamicApp(app))
    except (ActorGone, DomainError) as exc:
        return str(exc)
    return None

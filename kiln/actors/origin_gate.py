"""The control plane's side of pull on demand: an origin pull becomes a ``CreatePull`` command.

Media (``kiln.media.origins``) decides which URLs a missing stream is pulled from; this gate asks
the app's stream supervisor to pull them, exactly as ``POST …/streams`` does, so the pull is the
same worker with the same retries, failover and journal records, and its ``cause`` (the Origins
rule or the OriginMapStore lookup) is journaled with it.

A pull for an app the vhost does not have first makes it from the vhost's ``*`` template, as OME's
``RequestPullStreamWithUrls`` does (only once an origin was found for the stream): the vhost actor
journals it like POST apps and registers its supervisors before it answers. Concurrent first viewers
of streams of one new app: the vhost actor takes their commands one at a time, the first makes the
app and the others find it made (a Conflict).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sized
from typing import Any, Protocol

import pykka

from kiln.actors.base import ActorGone, ask
from kiln.actors.commands import CreateDynamicApp, CreatePull
from kiln.actors.dynamic_removal import remove_dynamic_app
from kiln.domain.errors import Conflict, DomainError

log = logging.getLogger(__name__)


class Supervisors(Protocol):
    def streams(self, vhost: str, app: str) -> pykka.ActorRef[Any] | None: ...

    def vhost(self, vhost: str) -> pykka.ActorRef[Any] | None: ...


class LiveStreams(Protocol):
    def in_app(self, vhost: str, app: str) -> Sized: ...


class OriginGate:
    def __init__(self, supervisors: Supervisors, streams: LiveStreams | None = None) -> None:
        self.supervisors = supervisors
        self.streams = streams
        self._pulling: dict[tuple[str, str], int] = {}  # pulls being started per dynamic app made here (loop only)

    async def start_pull(self, vhost: str, app: str, name: str, urls: list[str], properties: dict[str, Any],
                         cause: str, resolve: Callable[[], list[str]] | None = None) -> bool:
        ref = self.supervisors.streams(vhost, app)
        made = False
        if ref is None:
            ref, made = await self._dynamic_app(vhost, app, name)
        if ref is None:
            return False
        key = (vhost, app)
        self._pulling[key] = self._pulling.get(key, 0) + 1
        try:
            connected = await self._pull(ref, vhost, app, name, urls, properties, cause, resolve)
        finally:
            left = self._pulling.pop(key) - 1
            if left:
                self._pulling[key] = left
        if made and not connected:
            await self._unmake(vhost, app, name)
        return connected

    async def _pull(self, ref: pykka.ActorRef[Any], vhost: str, app: str, name: str, urls: list[str],
                    properties: dict[str, Any], cause: str, resolve: Callable[[], list[str]] | None) -> bool:
        body = {"name": name, "urls": urls, "properties": properties}
        try:
            waiter = await ask(ref, CreatePull(body, f"{cause} ({vhost}/{app}/{name})", cause, resolve, origins=True))
        except Conflict:
            return True  # live already, or being pulled: the caller waits for it like the others
        except (ActorGone, DomainError) as exc:
            log.info("origin pull refused vhost=%s app=%s stream=%s reason=%s", vhost, app, name, exc)
            return False
        connected: bool = await asyncio.wrap_future(waiter)
        return connected

    async def _unmake(self, vhost: str, app: str, stream: str) -> None:
        """A dynamic app made for a pull that failed (no origin has that stream) is removed at once, when no other
        pull is being started in it and it has no stream: a player asking for names no origin has leaves no app
        behind (OME keeps it until DynamicAppRemoval, if that is on, removes it a minute later)."""
        if self._pulling.get((vhost, app)) or self.streams is None or len(self.streams.in_app(vhost, app)) > 0:
            return
        why = await remove_dynamic_app(self.supervisors, vhost, app)
        if why is not None:
            log.info("dynamic app kept vhost=%s app=%s reason=%s", vhost, app, why)
            return
        log.info("dynamic app removed vhost=%s app=%s reason=its first pull failed stream=%s", vhost, app, stream)

    async def _dynamic_app(self, vhost: str, app: str, stream: str) -> tuple[pykka.ActorRef[Any] | None, bool]:
        """The stream supervisor of ``app`` made from the vhost's template now (True) or by a concurrent pull
        a moment ago (False); None, logged, when the vhost has no template or refuses the name."""
        vhost_ref = self.supervisors.vhost(vhost)
        if vhost_ref is None:
            log.info("origin pull refused vhost=%s app=%s stream=%s reason=no such virtual host", vhost, app, stream)
            return None, False
        made = True
        try:
            await ask(vhost_ref, CreateDynamicApp(app, stream))
        except Conflict:
            made = False  # made by a concurrent first viewer's pull
        except (ActorGone, DomainError) as exc:
            log.info("origin pull refused vhost=%s app=%s stream=%s reason=%s", vhost, app, stream, exc)
            return None, False
        return self.supervisors.streams(vhost, app), made

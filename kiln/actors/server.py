"""The server actor: owns the vhost set (``kiln.domain.server.Server``), journals what it decides,
then starts or stops the vhost actors."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pykka

from kiln.actors.base import CommandActor, Outcome, tell_quietly
from kiln.actors.catalog_deps import ActorRegistry, EventSink
from kiln.actors.commands import CreateVhosts, DeleteVhost, ReloadCertificates, Teardown
from kiln.actors.vhost import VhostActor
from kiln.config.tls import load_chain
from kiln.domain import server as domain
from kiln.domain.aggregate import decide_and_apply
from kiln.domain.app_config import require_array
from kiln.domain.batch import decide_each
from kiln.domain.errors import Conflict, Failed, Invalid
from kiln.eventlog import Encoded
from kiln.events import catalog as ce
from kiln.events.base import Event
from kiln.regular_files import require_regular
from kiln.timefmt import now

log = logging.getLogger(__name__)

RELOAD_FAILED = "Failed to reload certificate. Check server log for more information."


class ServerDeps(Protocol):
    """What the server actor uses; the same object is handed down to the vhost actors."""

    @property
    def events(self) -> EventSink: ...

    @property
    def directory(self) -> ActorRegistry: ...


class ListenerCertificates(Protocol):
    """The listeners that serve a vhost's Host/TLS certificate (the LL-HLS TLS port): reloaded with it."""

    def reload_certificate(self, vhost: str) -> bool:
        """Load ``vhost``'s certificate again where a listener serves it; False when it cannot be
        loaded (logged; the old chain keeps serving), True when no listener serves it."""
        ...

    def preload(self, vhost: str, config: dict[str, Any]) -> None:
        """Load a new vhost's certificate for every listener now (a handshake, on the event loop, reads no file)."""
        ...


class ServerActor(CommandActor):
    def __init__(self, ctx: ServerDeps, vhosts: list[domain.VhostState],
                 certificates: ListenerCertificates | None = None,
                 resolve_path: Callable[[str], Path] = Path) -> None:
        """``vhosts``: the state recovery found (Server.xml, snapshot and journal), handed in by the
        service; the actor never reads a projection. ``certificates``: the listeners that swap their
        certificate on ``:reloadCertificate``. ``resolve_path``: a relative Host/TLS path as Server.xml
        means it (against Server.xml's directory)."""
        super().__init__()
        self.ctx = ctx
        self.certificates = certificates
        self.resolve_path = resolve_path
        self.starting = vhosts
        self.server = domain.Server.starting_with(self.starting)
        self.vhosts: dict[str, pykka.ActorRef[Any]] = {}

    def on_start(self) -> None:
        self.ctx.directory.register(("server",), self.actor_ref)
        for state in self.starting:
            self._spawn(state)
            self._warn_if_shadowed(state.name)

    def on_stop(self) -> None:
        for name, ref in list(self.vhosts.items()):
            ref.stop(block=True, timeout=30)
            self.ctx.directory.unregister(("vhost", name), ref)
        self.ctx.directory.unregister(("server",), self.actor_ref)

    def _spawn(self, state: domain.VhostState) -> None:
        ref = VhostActor.start(self.ctx, state)
        self.vhosts[state.name] = ref
        self.ctx.directory.register(("vhost", state.name), ref)

    def handle_CreateVhosts(self, cmd: CreateVhosts) -> Outcome:
        commands = [domain.CreateVhost(item) for item in require_array(cmd.items)]
        batch = decide_each(self.server, commands, now(), self.ctx.events.encode, respond=_vhost_response,
                            per_item=(Invalid, Conflict))
        accepted = Encoded.joined(batch.stored)
        durable = [self.ctx.events.emit(accepted)] if accepted.records else []  # one append: one fsync
        for events in batch.accepted:
            created = domain.created_vhost(events)
            self._spawn(created)
            self._warn_if_shadowed(created.name)
            if self.certificates is not None:
                self.certificates.preload(created.name, created.config)
        if batch.stopped_by is not None:  # the vhosts before it stay created (their events are in ``accepted``)
            return Outcome(None, durable, batch.stopped_by)
        return Outcome(batch.results, durable)

    def _warn_if_shadowed(self, name: str) -> None:
        """The first vhost whose host names match wins: say so when an earlier one takes every name."""
        shadowed = self.server.shadowed(name)
        if shadowed:
            log.warning("vhost shadowed vhost=%s shadowed_by=%s host_names=%s: an earlier vhost matches each "
                        "host name first, so this vhost receives no stream by host name (only by its name, "
                        "in an SRT stream id)", name, ",".join(dict.fromkeys(shadowed.values())),
                        ",".join(shadowed))

    def handle_DeleteVhost(self, cmd: DeleteVhost) -> Outcome:
        fut = self.ctx.events.emit(decide_and_apply(self.server, domain.DeleteVhost(cmd.name), now(),
                                                    self.ctx.events.encode))
        ref = self.vhosts.pop(cmd.name)
        self.ctx.directory.unregister(("vhost", cmd.name), ref)
        tell_quietly(ref, Teardown("vhost deleted"))
        ref.stop(block=False)
        log.info("vhost deleted name=%s", cmd.name)
        return Outcome(None, [fut])

    def handle_ReloadCertificates(self, cmd: ReloadCertificates) -> Outcome:
        names = [cmd.vhost] if cmd.vhost is not None else list(self.server.vhosts)
        states = [self.server.vhost(name) for name in names]  # an unknown name refuses before any reload
        failed = [state.name for state in states
                  if not (_reload_certificate(state, self.resolve_path) and self._reload_listeners(state))]
        if failed:
            raise Failed(RELOAD_FAILED)
        return Outcome(None)

    def _reload_listeners(self, state: domain.VhostState) -> bool:
        return self.certificates is None or self.certificates.reload_certificate(state.name)


def _vhost_response(events: list[Event]) -> dict[str, Any]:
    created = events[0]
    assert isinstance(created, ce.VhostCreated)
    return created.config


def _reload_certificate(vhost: domain.VhostState, resolve: Callable[[str], Path]) -> bool:
    """Load the vhost's certificate files again; False when they cannot be read (logged)."""
    host = vhost.config.get("host")
    tls = (host.get("tls") if isinstance(host, dict) else None) or {}
    if not isinstance(tls, dict) or not tls.get("certPath"):
        return True
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        key = str(tls.get("keyPath") or "")
        # regular files only, no passphrase prompt: a FIFO or a prompt would hold this actor (every vhost command)
        load_chain(context, resolve(str(tls["certPath"])), resolve(key) if key else None)
        if tls.get("chainCertPath"):
            context.load_verify_locations(require_regular(resolve(str(tls["chainCertPath"]))))
        log.info("certificate reloaded vhost=%s cert=%s", vhost.name, tls["certPath"])
        return True
    except (OSError, ssl.SSLError) as exc:
        log.error("certificate reload failed vhost=%s cert=%s error=%s", vhost.name, tls["certPath"], exc)
        return False

"""The server actor: owns the set of virtual hosts, serialises their creation and deletion."""

from __future__ import annotations

import logging
import ssl
from typing import Any

from kiln.actors import configcheck
from kiln.actors.base import CommandActor, Outcome, tell_quietly
from kiln.actors.commands import CreateVhosts, DeleteVhost, ReloadCertificates, Teardown
from kiln.actors.context import Context, ItemResult
from kiln.actors.vhost import VhostActor
from kiln.errors import ApiError, read_only, vhost_not_found
from kiln.events import catalog as ce
from kiln.timefmt import now

log = logging.getLogger(__name__)


class ServerActor(CommandActor):
    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx
        self.vhosts: dict[str, Any] = {}
        self.read_only: dict[str, bool] = {}

    def on_start(self) -> None:
        self.ctx.directory.register(("server",), self.actor_ref)
        for name in self.ctx.catalog.vhost_names():
            view = self.ctx.catalog.vhost(name)
            assert view is not None
            apps = [(a.config, a.read_only) for a in view.apps.values()]
            self._spawn(name, view.config, view.read_only, apps)

    def on_stop(self) -> None:
        for name, ref in list(self.vhosts.items()):
            ref.stop(block=True, timeout=30)
            self.ctx.directory.unregister(("vhost", name), ref)
        self.ctx.directory.unregister(("server",), self.actor_ref)

    def _spawn(self, name: str, config: dict[str, Any], is_read_only: bool,
               apps: list[tuple[dict[str, Any], bool]]) -> None:
        ref = VhostActor.start(self.ctx, name, config, is_read_only, apps)
        self.vhosts[name] = ref
        self.read_only[name] = is_read_only
        self.ctx.directory.register(("vhost", name), ref)

    def handle_CreateVhosts(self, cmd: CreateVhosts) -> Outcome:
        if not isinstance(cmd.items, list):
            raise ApiError(400, "Request body must be an array")
        results: list[ItemResult] = []
        durable = []
        for item in cmd.items:
            try:
                config = configcheck.validate_vhost(item)
            except ApiError as exc:
                results.append(ItemResult(exc.status, exc.message))
                continue
            name = str(config["name"])
            if name in self.vhosts:
                results.append(ItemResult(409, f"The virtual host already exists: [{name}]"))
                continue
            body = {k: v for k, v in config.items() if k != "applications"}
            created = now()
            events: list[Any] = [ce.VhostCreated(name, body, created)]
            apps = configcheck.apps_of_vhost(config)
            for app in apps:
                events.append(ce.AppCreated(name, str(app["name"]), app, created))
            durable.append(self.ctx.events.emit(events))
            self._spawn(name, body, False, [(app, False) for app in apps])
            results.append(ItemResult(200, "OK", body))
        return Outcome(results, durable)

    def handle_DeleteVhost(self, cmd: DeleteVhost) -> Outcome:
        ref = self.vhosts.get(cmd.name)
        if ref is None:
            raise vhost_not_found(cmd.name)
        if self.read_only[cmd.name]:
            raise read_only(cmd.name)
        fut = self.ctx.events.emit([ce.VhostDeleted(cmd.name)])
        del self.vhosts[cmd.name]
        del self.read_only[cmd.name]
        self.ctx.directory.unregister(("vhost", cmd.name), ref)
        tell_quietly(ref, Teardown("vhost deleted"))
        ref.stop(block=False)
        log.info("vhost deleted name=%s", cmd.name)
        return Outcome(None, [fut])

    def handle_ReloadCertificates(self, cmd: ReloadCertificates) -> Outcome:
        names = [cmd.vhost] if cmd.vhost is not None else list(self.vhosts)
        failed = []
        for name in names:
            if name not in self.vhosts:
                raise vhost_not_found(name)
            view = self.ctx.catalog.vhost(name)
            tls = ((view.config.get("host") or {}).get("tls") if view else None) or {}
            if not isinstance(tls, dict) or not tls.get("certPath"):
                continue
            try:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(str(tls["certPath"]), str(tls.get("keyPath") or "") or None)
                if tls.get("chainCertPath"):
                    context.load_verify_locations(str(tls["chainCertPath"]))
                log.info("certificate reloaded vhost=%s cert=%s", name, tls["certPath"])
            except (OSError, ssl.SSLError) as exc:
                log.error("certificate reload failed vhost=%s cert=%s error=%s", name, tls["certPath"], exc)
                failed.append(name)
        if failed:
            raise ApiError(500, "Failed to reload certificate. Check server log for more information.")
        return Outcome(None)

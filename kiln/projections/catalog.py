"""The catalog read model: virtual hosts, applications (with output profiles), pulls, live streams.

Config-file entities are seeded at startup and marked read-only; API-created ones come from the
journal. An app's configuration is edited by the same pure functions the domain decides with
(``kiln.domain.app_config``), so the read model and the app aggregate cannot drift apart.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiln.domain.app_config import merge_patch as merge_patch  # re-exported for older importers
from kiln.domain.app_config import profiles_of as profiles_of
from kiln.domain.app_config import with_profile_deleted, with_profile_replaced, with_profiles_added
from kiln.domain.server import TEMPLATE_NAME, AppState, VhostState
from kiln.events import catalog as ce
from kiln.events import streams as se
from kiln.projections.copies import shallow
from kiln.projections.dispatch import LockedDispatch, handlers_of

# --- state -----------------------------------------------------------------------------------------


@dataclass
class AppView:
    vhost: str
    name: str
    config: dict[str, Any]
    read_only: bool
    created_time: float
    dynamic: bool = False


@dataclass
class VhostView:
    name: str
    config: dict[str, Any]
    read_only: bool
    created_time: float
    apps: dict[str, AppView] = field(default_factory=dict)
    template: dict[str, Any] | None = None  # Server.xml's ``<Application>`` named ``*``: not an app


@dataclass
class PullView:
    vhost: str
    app: str
    name: str
    urls: list[str]
    properties: dict[str, Any]
    persistent: bool
    created_time: float
    cause: str = ""


@dataclass
class StreamLifecycle:
    """What the journal knows of a live stream instance (for audit and restart recovery)."""

    vhost: str
    app: str
    name: str
    instance: str
    source_type: str
    source_url: str
    created_time: float
    tracks: list[dict[str, Any]] = field(default_factory=list)


class CatalogProjection(LockedDispatch):
    """Thread-safe: updated by the thread committing to the journal, read by HTTP handlers."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.vhosts: dict[str, VhostView] = {}
        self.pulls: dict[tuple[str, str, str], PullView] = {}
        self.live: dict[tuple[str, str, str], StreamLifecycle] = {}
        self.schedules: dict[tuple[str, str, str], se.ScheduleDefined] = {}  # scheduled channels, as last defined
        self.multiplexes: dict[tuple[str, str, str], se.MultiplexDefined] = {}  # multiplex channels
        self._host_table: tuple[tuple[str, dict[str, Any]], ...] | None = None  # host_table(), until a vhost changes

    # -- seeding from configuration (not journaled) --
    def seed_config_vhost(self, config: dict[str, Any], created_time: float) -> None:
        with self._lock:
            body = {k: v for k, v in config.items() if k != "applications"}
            view = VhostView(str(config["name"]), body, read_only=True, created_time=created_time)
            for app in _config_apps(config):
                if str(app["name"]) == TEMPLATE_NAME:
                    view.template = app
                else:
                    view.apps[str(app["name"])] = AppView(view.name, str(app["name"]), app, True, created_time)
            self.vhosts[view.name] = view
            self._host_table = None

    # -- events --
    def _on_VhostCreated(self, ev: ce.VhostCreated) -> None:
        if ev.name in self.vhosts and self.vhosts[ev.name].read_only:
            return  # shadowed by the configuration file
        self.vhosts[ev.name] = VhostView(ev.name, ev.config, False, ev.created_time)
        self._host_table = None

    def _on_VhostDeleted(self, ev: ce.VhostDeleted) -> None:
        view = self.vhosts.get(ev.name)
        if view is not None and not view.read_only:
            del self.vhosts[ev.name]
            self._host_table = None
            for key in [k for k in self.pulls if k[0] == ev.name]:
                del self.pulls[key]
            for key in [k for k in self.schedules if k[0] == ev.name]:
                del self.schedules[key]
            for key in [k for k in self.multiplexes if k[0] == ev.name]:
                del self.multiplexes[key]

    def _on_VhostTemplateSet(self, ev: ce.VhostTemplateSet) -> None:
        vh = self.vhosts.get(ev.vhost)
        if vh is not None and not vh.read_only:
            vh.template = ev.config

    def _on_AppCreated(self, ev: ce.AppCreated) -> None:
        vh = self.vhosts.get(ev.vhost)
        if vh is None or (vh.read_only and not ev.dynamic):
            return
        if ev.dynamic and ev.name in vh.apps and vh.apps[ev.name].read_only and not vh.apps[ev.name].dynamic:
            return  # Server.xml now defines an app of that name: it wins
        # a dynamic app of a Server.xml vhost is that vhost's configuration (its template) made concrete: read-only,
        # and, like the vhost's other apps, configured by Server.xml as it is now (a template edited before a
        # restart applies to the apps made from it; the journaled copy is used only when the template is gone)
        config = {**vh.template, "name": ev.name} if ev.dynamic and vh.read_only and vh.template else ev.config
        vh.apps[ev.name] = AppView(ev.vhost, ev.name, config, vh.read_only, ev.created_time, ev.dynamic)

    def _app(self, vhost: str, app: str) -> AppView | None:
        vh = self.vhosts.get(vhost)
        if vh is None or vh.read_only:
            return None
        return vh.apps.get(app)

    def _on_AppPatched(self, ev: ce.AppPatched) -> None:
        if (view := self._app(ev.vhost, ev.name)) is not None:
            view.config = ev.config

    def _on_AppDeleted(self, ev: ce.AppDeleted) -> None:
        vh = self.vhosts.get(ev.vhost)
        found = vh.apps.get(ev.name) if vh is not None else None
        if vh is not None and (not vh.read_only or (found is not None and found.dynamic)):
            vh.apps.pop(ev.name, None)
            for key in [k for k in self.pulls if k[:2] == (ev.vhost, ev.name)]:
                del self.pulls[key]
            for key in [k for k in self.schedules if k[:2] == (ev.vhost, ev.name)]:
                del self.schedules[key]
            for key in [k for k in self.multiplexes if k[:2] == (ev.vhost, ev.name)]:
                del self.multiplexes[key]

    def _on_OutputProfilesAdded(self, ev: ce.OutputProfilesAdded) -> None:
        if (view := self._app(ev.vhost, ev.app)) is not None:
            view.config = with_profiles_added(view.config, ev.profiles)

    def _on_OutputProfileReplaced(self, ev: ce.OutputProfileReplaced) -> None:
        if (view := self._app(ev.vhost, ev.app)) is not None:
            view.config = with_profile_replaced(view.config, ev.profile)

    def _on_OutputProfileDeleted(self, ev: ce.OutputProfileDeleted) -> None:
        if (view := self._app(ev.vhost, ev.app)) is not None:
            view.config = with_profile_deleted(view.config, ev.name)

    def _on_PullDefined(self, ev: se.PullDefined) -> None:
        self.pulls[(ev.vhost, ev.app, ev.name)] = PullView(
            ev.vhost, ev.app, ev.name, list(ev.urls), dict(ev.properties), ev.persistent, ev.created_time, ev.cause)

    def _on_PullRemoved(self, ev: se.PullRemoved) -> None:
        self.pulls.pop((ev.vhost, ev.app, ev.name), None)

    def _on_ScheduleDefined(self, ev: se.ScheduleDefined) -> None:
        self.schedules[(ev.vhost, ev.app, ev.name)] = ev

    def _on_ScheduleRemoved(self, ev: se.ScheduleRemoved) -> None:
        self.schedules.pop((ev.vhost, ev.app, ev.name), None)

    def _on_MultiplexDefined(self, ev: se.MultiplexDefined) -> None:
        self.multiplexes[(ev.vhost, ev.app, ev.name)] = ev

    def _on_MultiplexRemoved(self, ev: se.MultiplexRemoved) -> None:
        self.multiplexes.pop((ev.vhost, ev.app, ev.name), None)

    def _on_StreamStarted(self, ev: se.StreamStarted) -> None:
        self.live[(ev.vhost, ev.app, ev.name)] = StreamLifecycle(
            ev.vhost, ev.app, ev.name, ev.instance, ev.source_type, ev.source_url, ev.created_time)

    def _on_StreamTracksDescribed(self, ev: se.StreamTracksDescribed) -> None:
        life = self.live.get((ev.vhost, ev.app, ev.name))
        if life is not None and life.instance == ev.instance:
            life.tracks = list(ev.tracks)

    def _on_StreamEnded(self, ev: se.StreamEnded) -> None:
        life = self.live.get((ev.vhost, ev.app, ev.name))
        if life is not None and life.instance == ev.instance:
            del self.live[(ev.vhost, ev.app, ev.name)]

    # -- reads: shallow copies, so callers never see a half-applied update. A view's config (and a pull's
    # urls and properties, a stream's tracks) is shared, not copied: every handler above replaces these,
    # none edits one in place, and readers must not edit them either (deep copies made reads 3x slower) --
    def vhost_names(self) -> list[str]:
        with self._lock:
            return list(self.vhosts)

    def host_table(self) -> tuple[tuple[str, dict[str, Any]], ...]:
        """(name, OME JSON) of every vhost in match order, one tuple until a vhost comes or goes
        (host routing keys its answers on it, kiln/config/hosts.py)."""
        with self._lock:
            table = self._host_table
            if table is None:
                table = self._host_table = tuple((name, view.config) for name, view in self.vhosts.items())
            return table

    def has_vhost(self, name: str) -> bool:
        with self._lock:
            return name in self.vhosts

    def vhost(self, name: str) -> VhostView | None:
        with self._lock:
            view = self.vhosts.get(name)
            if view is None:
                return None
            found = shallow(view)
            found.apps = {name: shallow(app) for name, app in view.apps.items()}
            return found

    def app_names(self, vhost: str) -> list[str] | None:
        with self._lock:
            view = self.vhosts.get(vhost)
            return list(view.apps) if view is not None else None

    def vhost_states(self) -> list[VhostState]:
        """Every vhost with its apps, as the server actor starts with them after recovery."""
        with self._lock:
            return [VhostState(v.name, copy.deepcopy(v.config), v.read_only,
                               tuple(AppState(a.name, copy.deepcopy(a.config), a.read_only, dynamic=a.dynamic)
                                     for a in v.apps.values()), copy.deepcopy(v.template))
                    for v in self.vhosts.values()]

    def dynamic_apps(self) -> list[tuple[str, str, float]]:
        """Every app made from a ``*`` template: (vhost, app, created time)."""
        with self._lock:
            return [(a.vhost, a.name, a.created_time) for v in self.vhosts.values() for a in v.apps.values()
                    if a.dynamic]

    def app_template(self, vhost: str) -> dict[str, Any] | None:
        """The vhost's ``*`` application (Server.xml), shared, not copied; None: the vhost has none."""
        with self._lock:
            view = self.vhosts.get(vhost)
            return view.template if view is not None else None

    def app(self, vhost: str, app: str) -> AppView | None:
        with self._lock:
            view = self.vhosts.get(vhost)
            found = view.apps.get(app) if view is not None else None
            return shallow(found) if found is not None else None

    def app_config(self, vhost: str, app: str) -> dict[str, Any] | None:
        """An app's OME JSON, shared, not copied (events replace configs, never edit them): every player
        request looks it up, and copying the view cost more than the rest of the lookup."""
        with self._lock:
            view = self.vhosts.get(vhost)
            found = view.apps.get(app) if view is not None else None
            return found.config if found is not None else None

    def pull_list(self) -> list[PullView]:
        with self._lock:
            return [shallow(p) for p in self.pulls.values()]

    def schedule_names(self, vhost: str, app: str) -> list[str]:
        with self._lock:
            return [k[2] for k in self.schedules if k[:2] == (vhost, app)]

    def schedule(self, vhost: str, app: str, name: str) -> dict[str, Any] | None:
        """A channel's stored schedule (``Schedule.to_stored()``), shared: events replace it, never edit it."""
        with self._lock:
            found = self.schedules.get((vhost, app, name))
            return found.schedule if found is not None else None

    def multiplex_names(self, vhost: str, app: str) -> list[str]:
        with self._lock:
            return [k[2] for k in self.multiplexes if k[:2] == (vhost, app)]

    def multiplex(self, vhost: str, app: str, name: str) -> dict[str, Any] | None:
        """A channel's stored profile (``Multiplex.to_stored()``), shared: events replace it, never edit it."""
        with self._lock:
            found = self.multiplexes.get((vhost, app, name))
            return found.multiplex if found is not None else None

    def live_streams(self) -> list[StreamLifecycle]:
        with self._lock:
            return [shallow(s) for s in self.live.values()]

    # -- snapshots (journaled state only) --
    def snapshot(self) -> dict[str, Any]:
        return self.capture()()

    def capture(self) -> Callable[[], dict[str, Any]]:
        """The state now, copied cheaply under the lock; the returned function renders the snapshot from
        the copy on any thread. Configs are shared, not copied: events replace them, never edit them."""
        with self._lock:
            vhosts = [(v.name, v.config, v.created_time, [(a.name, a.config, a.created_time, a.dynamic)
                                                          for a in v.apps.values()], v.template)
                      for v in self.vhosts.values() if not v.read_only]
            # Server.xml vhosts are not in snapshots (the file seeds them), but their dynamic apps are journaled
            dynamic = [{"vhost": a.vhost, "name": a.name, "config": a.config, "created_time": a.created_time}
                       for v in self.vhosts.values() if v.read_only for a in v.apps.values() if a.dynamic]
            pulls = [dict(p.__dict__) for p in self.pulls.values()]
            live = [dict(s.__dict__) for s in self.live.values()]
            schedules = [dict(s.__dict__) for s in self.schedules.values()]
            multiplexes = [dict(m.__dict__) for m in self.multiplexes.values()]

        def render() -> dict[str, Any]:
            return {
                "vhosts": [{"name": name, "config": config, "created_time": created,
                            "apps": [{"name": a, "config": c, "created_time": t, **({"dynamic": True} if d else {})}
                                     for a, c, t, d in apps], **({"template": tpl} if tpl is not None else {})}
                           for name, config, created, apps, tpl in vhosts],
                "dynamic_apps": dynamic,
                "pulls": pulls,
                "live": live,
                "schedules": schedules,
                "multiplexes": multiplexes,
            }

        return render

    def restore(self, state: dict[str, Any]) -> None:
        with self._lock:
            for v in state.get("vhosts", []):
                if v["name"] in self.vhosts:
                    continue  # a configuration-file vhost now has this name
                view = VhostView(v["name"], v["config"], False, v["created_time"], template=v.get("template"))
                for a in v["apps"]:
                    view.apps[a["name"]] = AppView(view.name, a["name"], a["config"], False, a["created_time"],
                                                   bool(a.get("dynamic")))
                self.vhosts[view.name] = view
            for a in state.get("dynamic_apps", []):
                self._on_AppCreated(ce.AppCreated(a["vhost"], a["name"], a["config"], a["created_time"], True))
            for p in state.get("pulls", []):
                self.pulls[(p["vhost"], p["app"], p["name"])] = PullView(**p)
            for s in state.get("live", []):
                self.live[(s["vhost"], s["app"], s["name"])] = StreamLifecycle(**s)
            for s in state.get("schedules", []):
                self.schedules[(s["vhost"], s["app"], s["name"])] = se.ScheduleDefined(**s)
            for m in state.get("multiplexes", []):
                self.multiplexes[(m["vhost"], m["app"], m["name"])] = se.MultiplexDefined(**m)
            self._host_table = None

    # -- reads for the stream supervisors (arch-streams) --
    def pull_definitions(self) -> list[se.PullDefined]:
        """The defined pulls as the events that defined them: what stream supervisors fold at startup."""
        with self._lock:
            return [se.PullDefined(p.vhost, p.app, p.name, list(p.urls), copy.deepcopy(p.properties), p.persistent,
                                   p.created_time, p.cause) for p in self.pulls.values()]

    def schedule_definitions(self) -> list[se.ScheduleDefined]:
        """The scheduled channels as the events that last defined them: what stream supervisors fold at startup."""
        with self._lock:
            return list(self.schedules.values())

    def multiplex_definitions(self) -> list[se.MultiplexDefined]:
        """The multiplex channels as the events that defined them: what stream supervisors fold at startup."""
        with self._lock:
            return list(self.multiplexes.values())


def _config_apps(vhost_config: dict[str, Any]) -> list[dict[str, Any]]:
    section = vhost_config.get("applications")
    if not isinstance(section, dict):
        return []
    apps = section.get("application", [])
    return [apps] if isinstance(apps, dict) else list(apps)


CatalogProjection._handlers = handlers_of(CatalogProjection)

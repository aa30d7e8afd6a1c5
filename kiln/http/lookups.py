"""The 404 checks every resource shares, answered from the read models (rest-spec §1.10).

Handlers pass the process's context; this module says, as Protocols, what it reads of it: the
catalog, the actor directory, and the live streams (which it hands out as ``LiveStreamHandle``s,
never as media objects).
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any, Protocol

from kiln.domain.settings import AppSettings
from kiln.errors import app_not_found, stream_not_found, vhost_not_found
from kiln.http.views.stream import StreamSnapshot
from kiln.projections.catalog import AppView, VhostView


class CatalogReads(Protocol):
    def has_vhost(self, name: str) -> bool: ...
    def vhost(self, name: str) -> VhostView | None: ...
    def app(self, vhost: str, app: str) -> AppView | None: ...


class ActorDirectory(Protocol):
    def vhost(self, vhost: str) -> Any: ...
    def app(self, vhost: str, app: str) -> Any: ...
    def streams(self, vhost: str, app: str) -> Any: ...
    def tasks(self, vhost: str, app: str) -> Any: ...


class LiveStreamHandle(Protocol):
    """A live input stream as HTTP sees it: its output names and a snapshot to render."""

    @property
    def outputs(self) -> Container[str]: ...
    def snapshot(self) -> StreamSnapshot: ...


class Lookups(Protocol):
    @property
    def catalog(self) -> CatalogReads: ...
    @property
    def directory(self) -> ActorDirectory: ...
    @property
    def media(self) -> Any: ...  # ``media.streams.get(vhost, app, name)``; None without media


def need_vhost(ctx: Lookups, vhost: str) -> VhostView:
    view = ctx.catalog.vhost(vhost)
    if view is None:
        raise vhost_not_found(vhost)
    return view


def need_app(ctx: Lookups, vhost: str, app: str) -> AppView:
    if not ctx.catalog.has_vhost(vhost):
        raise vhost_not_found(vhost)
    view = ctx.catalog.app(vhost, app)
    if view is None:
        raise app_not_found(vhost, app)
    return view


def app_ref(ctx: Lookups, vhost: str, app: str) -> Any:
    ref = ctx.directory.app(vhost, app)
    if ref is None:
        raise app_not_found(vhost, app)
    return ref


def streams_ref(ctx: Lookups, vhost: str, app: str) -> Any:
    """The app's stream supervisor (pulls, deletes, events)."""
    ref = ctx.directory.streams(vhost, app)
    if ref is None:
        raise app_not_found(vhost, app)
    return ref


def tasks_ref(ctx: Lookups, vhost: str, app: str) -> Any:
    """The app's task supervisor (push, record, dumps)."""
    ref = ctx.directory.tasks(vhost, app)
    if ref is None:
        raise app_not_found(vhost, app)
    return ref


def vhost_ref(ctx: Lookups, vhost: str) -> Any:
    ref = ctx.directory.vhost(vhost)
    if ref is None:
        raise vhost_not_found(vhost)
    return ref


def need_stream(ctx: Lookups, vhost: str, app: str, stream: str) -> LiveStreamHandle:
    """The live input stream (or 404), as a handle: its outputs and its snapshot."""
    need_app(ctx, vhost, app)
    registry = ctx.media.streams if ctx.media is not None else None
    found: LiveStreamHandle | None = registry.get(vhost, app, stream) if registry is not None else None
    if found is None:
        raise stream_not_found(vhost, app, stream)
    return found


def app_json(view: AppView) -> dict[str, Any]:
    return {**view.config, "dynamic": view.dynamic}


_SETTINGS: dict[int, tuple[dict[str, Any], AppSettings]] = {}


def settings_of(view: AppView) -> AppSettings:
    """The app's settings parsed from its config, once per config: the catalog replaces an app's config
    on every change and never edits one, so the same object means the same settings (the entry keeps
    the config alive, so its id cannot be reused while cached)."""
    found = _SETTINGS.get(id(view.config))
    if found is not None and found[0] is view.config:
        return found[1]
    if len(_SETTINGS) >= 1024:
        _SETTINGS.clear()
    settings = AppSettings.parse(view.config)
    _SETTINGS[id(view.config)] = (view.config, settings)
    return settings


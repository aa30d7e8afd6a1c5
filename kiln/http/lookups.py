"""The 404 checks every resource shares, answered from the read models (rest-spec §1.10)."""

from __future__ import annotations

from typing import Any

from kiln.actors.context import Context
from kiln.errors import app_not_found, stream_not_found, vhost_not_found
from kiln.projections.catalog import AppView, VhostView


def need_vhost(ctx: Context, vhost: str) -> VhostView:
    view = ctx.catalog.vhost(vhost)
    if view is None:
        raise vhost_not_found(vhost)
    return view


def need_app(ctx: Context, vhost: str, app: str) -> AppView:
    need_vhost(ctx, vhost)
    view = ctx.catalog.app(vhost, app)
    if view is None:
        raise app_not_found(vhost, app)
    return view


def app_ref(ctx: Context, vhost: str, app: str) -> Any:
    ref = ctx.directory.app(vhost, app)
    if ref is None:
        raise app_not_found(vhost, app)
    return ref


def streams_ref(ctx: Context, vhost: str, app: str) -> Any:
    """The app's stream supervisor (pulls, deletes, events)."""
    ref = ctx.directory.streams(vhost, app)
    if ref is None:
        raise app_not_found(vhost, app)
    return ref


def tasks_ref(ctx: Context, vhost: str, app: str) -> Any:
    """The app's task supervisor (push, record, dumps)."""
    ref = ctx.directory.tasks(vhost, app)
    if ref is None:
        raise app_not_found(vhost, app)
    return ref


def vhost_ref(ctx: Context, vhost: str) -> Any:
    ref = ctx.directory.vhost(vhost)
    if ref is None:
        raise vhost_not_found(vhost)
    return ref


def need_stream(ctx: Context, vhost: str, app: str, stream: str) -> Any:
    """The live input stream, from the media registry (or 404)."""
    need_app(ctx, vhost, app)
    registry = ctx.media.streams if ctx.media is not None else None
    found = registry.get(vhost, app, stream) if registry is not None else None
    if found is None:
        raise stream_not_found(vhost, app, stream)
    return found


def app_json(view: AppView) -> dict[str, Any]:
    return {**view.config, "dynamic": view.dynamic}

"""What a Server.xml says about dynamic applications, in words (``kiln config check`` and startup).

An ``<Application>`` named ``*`` is OME's template for dynamic apps: when a player's stream is pulled
on demand (the vhost's Origins or OriginMapStore) for an app the vhost does not have, the app is made
from it under the requested name. Nothing else makes one: not ingest, not ``POST …/streams``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from kiln.config.model import ServerConfig
from kiln.domain.dynamic_apps import IDLE_S, SWEEP_S

log = logging.getLogger(__name__)

IDLE_ENV = "KILN_DYNAMIC_APP_IDLE_S"  # DynamicAppRemoval's idle time (OME: 60 s); README, tests
SWEEP_ENV = "KILN_DYNAMIC_APP_SWEEP_S"  # and how often it looks (OME: 10 s)
TEMPLATE_NAME = "*"
TEMPLATE_TEXT = ("template for dynamic applications: a player's pull (Origins/OriginMapStore) of a stream of an "
                 "app this vhost does not have makes that app from it")


def has_template(vhost: dict[str, Any]) -> bool:
    apps = (vhost.get("applications") or {}).get("application") or []
    return any(isinstance(a, dict) and str(a.get("name", "")).strip() == TEMPLATE_NAME for a in apps)


def _pulls(vhost: dict[str, Any]) -> bool:
    origins = vhost.get("origins")
    store = vhost.get("originMapStore")
    return bool(isinstance(origins, dict) and origins.get("origin")) or bool(
        isinstance(store, dict) and store.get("redisServer"))


def dynamic_app_warnings(config: ServerConfig) -> list[str]:
    """A ``*`` application that will never be used, DynamicAppRemoval with nothing to remove (check and startup)."""
    out = []
    for vhost in config.vhosts:
        if has_template(vhost) and not _pulls(vhost):
            out.append(f"vhost {vhost.get('name')}: its '*' application is never used: dynamic applications are made "
                       "only for streams pulled on demand, and this vhost has no Origins or OriginMapStore")
    if config.modules.dynamic_app_removal and not any(has_template(v) for v in config.vhosts):
        out.append("Modules.DynamicAppRemoval: no vhost has a '*' application, so there is nothing to remove")
    return out


def removal_text(config: ServerConfig, idle_s: float, sweep_s: float) -> str:
    if not config.modules.dynamic_app_removal:
        return "dynamic app removal: off (dynamic applications stay until deleted)"
    return f"dynamic app removal: on (no stream for {idle_s:g} s: removed; checked every {sweep_s:g} s)"


def timings(environ: Mapping[str, str] | None = None) -> tuple[float, float]:
    """(idle_s, sweep_s): OME's 60 s and 10 s unless the environment says otherwise (positive numbers)."""
    env = os.environ if environ is None else environ
    out = []
    for name, default in ((IDLE_ENV, IDLE_S), (SWEEP_ENV, SWEEP_S)):
        raw = env.get(name, "").strip()
        try:
            value = float(raw) if raw else default
        except ValueError:
            value = default
        if not value > 0 or value != value:
            log.warning("ignored env=%s value=%r reason=not a positive number default=%s", name, raw, default)
            value = default
        out.append(value)
    return out[0], out[1]

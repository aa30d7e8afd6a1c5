"""Which virtual host a URL's host part selects: the first vhost with a matching Host name.

Names may be wildcards (``*`` matches anything, ``*.example.com`` a subdomain); matching is
case-insensitive and ignores a port. A vhost *name* also matches when asked (SRT stream ids use
names). This is configuration (each vhost's ``Host/Names``), read by ingest and the publishers'
HTTP ports alike, so it lives here rather than in either of them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any, Protocol


class ConfiguredVhost(Protocol):
    """A vhost as the catalog shows it: its name and its OME JSON."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> dict[str, Any]: ...


class ConfiguredApp(Protocol):
    @property
    def config(self) -> dict[str, Any]: ...


class VhostCatalog(Protocol):
    """What host routing reads: the vhosts and their apps (the catalog projection offers this)."""

    def vhost_names(self) -> Iterable[str]: ...

    def vhost(self, name: str) -> ConfiguredVhost | None: ...

    def app(self, vhost: str, app: str) -> ConfiguredApp | None: ...


def _host_only(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_names(config: dict[str, Any]) -> list[str]:
    host = config.get("host")
    names = host.get("names") if isinstance(host, dict) else None
    if isinstance(names, str):
        return [names]
    return [str(n) for n in names] if isinstance(names, list) else []


def resolve_vhost(catalog: VhostCatalog, host: str, *, allow_vhost_name: bool = False) -> str | None:
    wanted = _host_only(host)
    views = [catalog.vhost(name) for name in catalog.vhost_names()]
    if allow_vhost_name:
        for view in views:
            if view is not None and view.name == host:
                return view.name
    for view in views:
        if view is None:
            continue
        for pattern in host_names(view.config):
            if fnmatch.fnmatchcase(wanted, pattern.strip().lower()):
                return view.name
    return None


class HostRouter:
    """Host routing over a catalog, offered to ingest and to the publishers' HTTP servers."""

    def __init__(self, catalog: VhostCatalog) -> None:
        self.catalog = catalog

    def vhost_for_host(self, host: str, *, allow_vhost_name: bool = False) -> str | None:
        return resolve_vhost(self.catalog, host, allow_vhost_name=allow_vhost_name)

    def app_for_host(self, host: str, app: str) -> tuple[str, dict[str, Any] | None] | None:
        """The vhost the host selects (None: no vhost) and that app's OME JSON (None: no such app)."""
        vhost = self.vhost_for_host(host)
        if vhost is None:
            return None
        view = self.catalog.app(vhost, app)
        return vhost, (view.config if view is not None else None)

"""Which virtual host a URL's host part selects: the first vhost with a matching Host name.

Names may be wildcards (``*`` matches anything, ``*.example.com`` a subdomain); matching is
case-insensitive and ignores a port. A vhost *name* also matches (SRT stream ids use names).
"""

from __future__ import annotations

import fnmatch
from typing import Any


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


def resolve_vhost(catalog: Any, host: str, *, allow_vhost_name: bool = False) -> str | None:
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

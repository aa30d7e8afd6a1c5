"""Which virtual host a URL's host part selects: the first vhost with a matching Host name.

Names may hold ``*`` wildcards, OME's only wildcard (``*`` matches anything, ``*.example.com`` a
subdomain); every other character is literal, so ``[::1]`` is the IPv6 host, not a character class.
Matching is case-insensitive and ignores a port. A vhost *name* also matches when asked (SRT stream
ids use names). This is configuration (each vhost's ``Host/Names``), read by ingest and the
publishers' HTTP ports alike, so it lives here rather than in either of them. It is pure, so the
domain may ask it which vhost shadows another (the first match wins, so a vhost whose names an
earlier vhost all matches never receives a stream by host name).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
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


HostTable = Sequence[tuple[str, dict[str, Any]]]  # (vhost name, its OME JSON) in match order


class VhostCatalog(Protocol):
    """What host routing reads: the vhosts and their apps (the catalog projection offers this)."""

    def host_table(self) -> HostTable:
        """The vhosts in match order; a new object whenever a vhost comes or goes (so it keys caches)."""

    def app_config(self, vhost: str, app: str) -> dict[str, Any] | None:
        """The app's OME JSON (None: no such app), not a copy: routing only reads it."""

    def app_template(self, vhost: str) -> dict[str, Any] | None:
        """The vhost's ``*`` application (None: none), not a copy."""


def _host_only(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _pattern_only(pattern: str) -> str:
    """A Host/Names entry as hosts are compared: trimmed, lower case, an IPv6 literal unbracketed."""
    pattern = pattern.strip().lower()
    if pattern.startswith("[") and pattern.endswith("]"):
        return pattern[1:-1]
    return pattern


@lru_cache(maxsize=1024)
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in _pattern_only(pattern).split("*")), re.DOTALL)


def host_matches(pattern: str, host: str) -> bool:
    """Whether a Host/Names entry matches a URL's host part (port and IPv6 brackets dropped)."""
    return _wildcard_regex(pattern).fullmatch(_host_only(host)) is not None


def name_covers(earlier: str, later: str) -> bool:
    """Whether every host ``later`` matches is matched by ``earlier`` as well.

    ``later`` is read literally, its ``*`` standing for itself: only a ``*`` of ``earlier`` can
    match it, and that ``*`` matches whatever ``later``'s ``*`` stands for, so a match proves cover.
    """
    return _wildcard_regex(earlier).fullmatch(_pattern_only(later)) is not None


def shadowing(earlier: Sequence[tuple[str, Sequence[str]]], names: Sequence[str]) -> dict[str, str]:
    """``{host name: earlier vhost}`` when every one of ``names`` is matched first by an earlier vhost
    (``earlier``: (vhost name, its host names) in match order); empty when one name is reachable."""
    found: dict[str, str] = {}
    for name in names:
        by = next((vhost for vhost, patterns in earlier if any(name_covers(p, name) for p in patterns)), None)
        if by is None:
            return {}
        found[name] = by
    return found


def shadowing_text(shadowed: dict[str, str]) -> str:
    """``tv.example.com by default, ...``: which earlier vhost takes each host name."""
    return ", ".join(f"{name} by {by}" for name, by in shadowed.items())


def host_names(config: dict[str, Any]) -> list[str]:
    host = config.get("host")
    names = host.get("names") if isinstance(host, dict) else None
    if isinstance(names, str):
        return [names]
    return [str(n) for n in names] if isinstance(names, list) else []


def resolve_vhost(table: HostTable, host: str, *, allow_vhost_name: bool = False) -> str | None:
    if allow_vhost_name:
        for name, _ in table:
            if name == host:
                return name
    for name, config in table:
        for pattern in host_names(config):
            if host_matches(pattern, host):
                return name
    return None


_MAX_REMEMBERED_HOSTS = 4096


class HostRouter:
    """Host routing over a catalog, offered to ingest and to the publishers' HTTP servers."""

    def __init__(self, catalog: VhostCatalog) -> None:
        self.catalog = catalog
        # answers per (host, allow_vhost_name), for one host table: every player request asks, and
        # matching every vhost's names each time showed in the LL-HLS serving profile. Replaced whole
        # (never cleared) when the table changes, so a thread still resolving against the old table
        # writes into the old dict, never into the new one.
        self._remembered: tuple[HostTable, dict[tuple[str, bool], str | None]] = ((), {})

    def vhost_for_host(self, host: str, *, allow_vhost_name: bool = False) -> str | None:
        table = self.catalog.host_table()
        remembered = self._remembered
        if remembered[0] is not table:
            remembered = self._remembered = (table, {})
        answers = remembered[1]
        key = (host, allow_vhost_name)
        try:
            return answers[key]
        except KeyError:
            found = resolve_vhost(table, host, allow_vhost_name=allow_vhost_name)
            if len(answers) < _MAX_REMEMBERED_HOSTS:  # Host headers are the client's to choose: bounded
                answers[key] = found
            return found

    def vhost_config(self, vhost: str) -> dict[str, Any] | None:
        """A vhost's OME JSON (``origins``, ``originMapStore``); None when there is no such vhost."""
        return next((config for name, config in self.catalog.host_table() if name == vhost), None)

    def app_config(self, vhost: str, app: str) -> dict[str, Any] | None:
        """An app's OME JSON (None: no such app)."""
        return self.catalog.app_config(vhost, app)

    def app_template(self, vhost: str) -> dict[str, Any] | None:
        """The vhost's ``*`` application (OME's template for dynamic apps); None: it has none."""
        return self.catalog.app_template(vhost)

    def app_for_host(self, host: str, app: str) -> tuple[str, dict[str, Any] | None] | None:
        """The vhost the host selects (None: no vhost) and that app's OME JSON (None: no such app)."""
        vhost = self.vhost_for_host(host)
        if vhost is None:
            return None
        return vhost, self.catalog.app_config(vhost, app)

"""Which app owns an MPEG-TS/UDP port: the first whose ``Providers/MPEGTS/StreamMap`` lists it.

UDP has no stream id, so the port alone names the stream (``stream_${Port}`` → ``stream_4000``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from kiln.config.ports import PortError, parse_port_list

NAME_PORT_VARIABLE = "${Port}"


class AppEntry(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def config(self) -> dict[str, Any]: ...


class VhostEntry(Protocol):
    @property
    def apps(self) -> Mapping[str, AppEntry]: ...


class AppsCatalog(Protocol):
    """The vhosts and their apps in configuration order (the catalog projection offers this)."""

    def vhost_names(self) -> Iterable[str]: ...

    def vhost(self, name: str) -> VhostEntry | None: ...


def _stream_entries(app_config: dict[str, Any]) -> list[dict[str, Any]]:
    providers = app_config.get("providers")
    mpegts = providers.get("mpegts") if isinstance(providers, dict) else None
    stream_map = mpegts.get("streamMap") if isinstance(mpegts, dict) else None
    entries = stream_map.get("stream") if isinstance(stream_map, dict) else None
    if isinstance(entries, dict):
        entries = [entries]
    return [e for e in entries or [] if isinstance(e, dict)]


def mapped_stream(catalog: AppsCatalog, port: int) -> tuple[str, str, str] | None:
    """(vhost, app, stream name) for the first app whose MPEG-TS StreamMap lists ``port``."""
    for vhost in catalog.vhost_names():
        view = catalog.vhost(vhost)
        if view is None:
            continue
        for app in view.apps.values():
            for entry in _stream_entries(app.config):
                try:
                    ports = parse_port_list(str(entry.get("port", "")))
                except PortError:
                    continue
                name = str(entry.get("name") or "")
                if port in ports and name:
                    return vhost, app.name, name.replace(NAME_PORT_VARIABLE, str(port))
    return None

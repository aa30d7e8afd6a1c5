"""Configured features Kiln accepts but does not implement (issue 14, honesty).

OME's schema is accepted whole so that a Server.xml or an API body written for OME loads; what Kiln
does not run must then be said, naming the element, by ``kiln config check`` and at startup, so
nobody believes a port is open or a stream is protected when it is not. Each feature is one row:
when a branch implements it, its row goes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kiln.config.model import ServerConfig
from kiln.config.values import is_true


@dataclass(frozen=True)
class Row:
    element: str                           # where it is configured, as OME's Server.xml names it
    feature: str                           # what Kiln does not do
    present: Callable[[dict[str, Any]], bool]


def _has(*keys: str) -> Callable[[dict[str, Any]], bool]:
    """A section is configured (present, even empty) at this key path."""

    def present(node: dict[str, Any]) -> bool:
        value: Any = node
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return False
            value = value[key]
        return value is not None

    return present


def _enabled(*keys: str) -> Callable[[dict[str, Any]], bool]:
    """A section's ``Enable`` is true at this key path."""

    def present(node: dict[str, Any]) -> bool:
        value: Any = node
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return isinstance(value, dict) and is_true(value.get("enable"))

    return present


def _enabled_value(*keys: str) -> Callable[[dict[str, Any]], bool]:
    """A switch at this key path is true (``<Ulpfec>true</Ulpfec>``)."""

    def present(node: dict[str, Any]) -> bool:
        value: Any = node
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return is_true(value)

    return present


def _switched_off(*keys: str) -> Callable[[dict[str, Any]], bool]:
    """A switch at this key path is given and not true (``<Enable>false</Enable>``)."""

    def present(node: dict[str, Any]) -> bool:
        value: Any = node
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value is not None and not isinstance(value, dict) and not is_true(value)

    return present


def _any_origin(test: Callable[[dict[str, Any]], bool]) -> Callable[[dict[str, Any]], bool]:
    """Some ``Origins/Origin`` of the vhost passes ``test``."""

    def present(vhost: dict[str, Any]) -> bool:
        origins = vhost.get("origins")
        found = origins.get("origin") if isinstance(origins, dict) else None
        items = found if isinstance(found, list) else [found]
        return any(isinstance(o, dict) and test(o) for o in items)

    return present


_LINK_LOCAL = "link-local addresses are not added as ICE candidates (one address is advertised per session)"
# Server-level elements, looked up in the <Server> element as JSON (ServerConfig.tree).
SERVER_ROWS = (
    Row("Server.PrivacyProtection", "client addresses are kept whole in logs, the journal and the API",
        _enabled_value("privacyProtection")),
    Row("Server.Modules.LLHLS.Enable", "false: LL-HLS is still served with parts and blocking reloads",
        _switched_off("modules", "llhls", "enable")),
    Row("Server.Modules.DynamicAppRemoval", "applications are never removed for being unused",
        _enabled("modules", "dynamicAppRemoval")),
    Row("Server.Alert", "no alert is ever sent", _has("alert")),
    Row("Server.Defaults.CrossDomains", "CORS headers come from each app's publisher CrossDomains only",
        _has("defaults", "crossDomains")),
    Row("Server.Managers.API.Storage", "API-made vhosts and apps are kept in Kiln's journal in the data dir, "
        "nothing is written to Storage.Path", _enabled("managers", "api", "storage")),
    Row("Server.Bind.Providers.WebRTC.IceCandidates.EnableLinkLocalAddress",
        _LINK_LOCAL,
        _enabled_value("bind", "providers", "webrtc", "iceCandidates", "enableLinkLocalAddress")),
    Row("Server.Bind.Publishers.WebRTC.IceCandidates.EnableLinkLocalAddress",
        _LINK_LOCAL,
        _enabled_value("bind", "publishers", "webrtc", "iceCandidates", "enableLinkLocalAddress")),
)


def _worker_counts(node: Any, path: str) -> list[tuple[str, str]]:
    """Every ``WorkerCount`` under ``Bind`` (element path, value): OME's thread counts per listener."""
    if not isinstance(node, dict):
        return []
    out = []
    for key, value in node.items():
        tag = key[:1].upper() + key[1:] if key not in _BIND_TAGS else _BIND_TAGS[key]
        if key == "workerCount" and not isinstance(value, dict):
            out.append((f"{path}.WorkerCount", str(value)))
        else:
            out += _worker_counts(value, f"{path}.{tag}")
    return out


_BIND_TAGS = {"api": "API", "rtmp": "RTMP", "srt": "SRT", "mpegts": "MPEGTS", "webrtc": "WebRTC", "rtspc": "RTSPC",
              "ovt": "OVT", "file": "File", "llhls": "LLHLS", "hls": "HLS"}


def _server_warnings(config: ServerConfig) -> list[str]:
    out = []
    tree = config.tree
    if len(config.ips) > 1:
        out.append(f"Server.IP ({', '.join(config.ips[1:])}): not implemented by Kiln, only the first IP "
                   f"({config.ips[0]}) is bound")
    for row in SERVER_ROWS:
        if row.present(tree):
            out.append(f"{row.element}: not implemented by Kiln, {row.feature}")
    for element, count in _worker_counts(tree.get("bind"), "Server.Bind"):
        out.append(f"{element} ({count}): not implemented by Kiln, the listener is served by Kiln's event loop "
                   f"(media work runs on Kiln's own threads)")
    ingest_tls = _port_text(tree, "bind", "providers", "webrtc", "signalling", "tlsPort")
    if ingest_tls is not None and ingest_tls != str(config.bind.webrtc_signalling_tls_port):
        out.append(f"Server.Bind.Providers.WebRTC.Signalling.TLSPort ({ingest_tls}): not implemented by Kiln, "
                   f"WebRTC ingest over TLS is served only on Server.Bind.Publishers.WebRTC.Signalling.TLSPort")
    return out


def _port_text(tree: dict[str, Any], *keys: str) -> str | None:
    value: Any = tree
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return None if value is None or isinstance(value, dict) else str(value).strip()


VHOST_ROWS = (
    Row("VirtualHost.Origins.Origin.Failback", "failing back to the first URL (pulls fail over in turn only)",
        _any_origin(lambda o: is_true(o.get("failback")))),
    Row("VirtualHost.Origins.Properties.StreamFailbackTimeout", "failing back to the first URL",
        _has("origins", "properties", "streamFailbackTimeout")),
    Row("VirtualHost.Origins.Origin.Relay", "Relay=false: OVT pulls always relay the origin's outputs",
        _any_origin(lambda o: str(o.get("relay", "")).strip().lower() == "false" or o.get("relay") is False)),
)

APP_ROWS = (
    Row("Providers.File", "file provider", _has("providers", "file")),
    Row("Providers.Schedule", "scheduled channels", _has("providers", "schedule")),
    Row("Providers.Multiplex", "multiplex channels", _has("providers", "multiplex")),
    Row("Providers.RTSP", "RTSP push ingest", _has("providers", "rtsp")),
    Row("Providers.RTMP.EventGenerator", "RTMP event generator", _has("providers", "rtmp", "eventGenerator")),
    Row("Publishers.WebRTC.Ulpfec", "ULPFEC for WebRTC viewers (NACK retransmission is used)",
        _enabled_value("publishers", "webrtc", "ulpfec")),
    Row("Publishers.LLHLS.DRM", "LL-HLS DRM: streams are sent in the clear", _enabled("publishers", "llhls", "drm")),
    Row("Publishers.LLHLS.DVR.EventPlaylistType", "EVENT playlists: the DVR playlist is a sliding window",
        _has("publishers", "llhls", "dvr", "eventPlaylistType")),
    Row("Publishers.HLS.DVR.EventPlaylistType", "EVENT playlists: the DVR playlist is a sliding window",
        _has("publishers", "hls", "dvr", "eventPlaylistType")),
    Row("OutputProfiles.HWAccels", "hardware encoding and decoding (software is used)",
        lambda app: _enabled("outputProfiles", "hwaccels", "decoder")(app)
        or _enabled("outputProfiles", "hwaccels", "encoder")(app)
        or is_true((app.get("outputProfiles") or {}).get("hardwareAcceleration"))),
    Row("PersistentStreams", "persistent streams", _has("persistentStreams")),
    Row("TranscodeWebhook", "transcode webhook", _has("transcodeWebhook")),
    Row("EventGenerator", "event generator", _has("eventGenerator")),
)

# Bind entries Kiln parses but opens no listener for (attribute of BindConfig -> element, feature).
UNOPENED_BINDS = (
    ("webrtc_ingest_signalling_port", "Bind.Providers.WebRTC.Signalling", "WebRTC ingest signalling"),
    ("webrtc_signalling_tls_port", "Bind.Publishers.WebRTC.Signalling.TLSPort", "WebRTC signalling (TLS)"),
    ("hls_tls_port", "Bind.Publishers.HLS.TLSPort", "HLS v3 (TLS)"),
)


def _apps(vhost: dict[str, Any]) -> list[dict[str, Any]]:
    apps = (vhost.get("applications") or {}).get("application") or []
    return [a for a in apps if isinstance(a, dict)]


def unimplemented_warnings(config: ServerConfig) -> list[str]:
    """One line per configured element Kiln does not implement, naming where it is."""
    out = []
    for attr, element, feature in UNOPENED_BINDS:
        port = getattr(config.bind, attr, None)
        if attr == "webrtc_signalling_tls_port" and port is not None and port == config.bind.llhls_tls_port:
            continue  # served by the LL-HLS TLS listener, as in OME
        if attr == "webrtc_ingest_signalling_port" and port is not None and port == config.bind.webrtc_signalling_port:
            continue  # WebRTC ingest is served on the shared signalling port, as in OME
        if port is not None:
            out.append(f"Server.{element} ({port}): not implemented by Kiln, {feature} is not opened")
    if config.bind.webrtc_tcp_relay_workers is not None:
        out.append(f"Server.Bind.Publishers.WebRTC.IceCandidates.TcpRelayWorkerCount "
                   f"({config.bind.webrtc_tcp_relay_workers}): not implemented by Kiln, the TURN relay runs on "
                   f"Kiln's event loop")
    if config.modules.p2p:
        out.append("Server.Modules.P2P: not implemented by Kiln, peer-to-peer delivery is off")
    out += _server_warnings(config)
    for vhost in config.vhosts:
        name = vhost.get("name")
        for row in VHOST_ROWS:
            if row.present(vhost):
                out.append(f"vhost {name}: {row.element}: not implemented by Kiln, {row.feature}")
        for app in _apps(vhost):
            if config.bind.webrtc_signalling_port is None and _has("providers", "webrtc")(app):
                out.append(f"vhost {name} app {app.get('name')}: Application.Providers.WebRTC: not opened: WebRTC "
                           f"ingest is served on Server.Bind.Publishers.WebRTC.Signalling, which is not configured")
            for row in APP_ROWS:
                if row.present(app):
                    out.append(f"vhost {name} app {app.get('name')}: Application.{row.element}: "
                               f"not implemented by Kiln, {row.feature}")
    return out

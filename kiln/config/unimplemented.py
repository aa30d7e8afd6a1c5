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


def _any_origin(test: Callable[[dict[str, Any]], bool]) -> Callable[[dict[str, Any]], bool]:
    """Some ``Origins/Origin`` of the vhost passes ``test``."""

    def present(vhost: dict[str, Any]) -> bool:
        origins = vhost.get("origins")
        found = origins.get("origin") if isinstance(origins, dict) else None
        items = found if isinstance(found, list) else [found]
        return any(isinstance(o, dict) and test(o) for o in items)

    return present


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

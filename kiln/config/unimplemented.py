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


def _at(node: Any, keys: tuple[str, ...]) -> Any:
    """The value at this key path; None where a step is missing or is not a section."""
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


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
        value = _at(node, keys)
        return isinstance(value, dict) and is_true(value.get("enable"))

    return present


def _enabled_value(*keys: str) -> Callable[[dict[str, Any]], bool]:
    """A switch at this key path is true (``<Ulpfec>true</Ulpfec>``)."""

    def present(node: dict[str, Any]) -> bool:
        value = _at(node, keys)
        return is_true(value)

    return present


def _switched_off(*keys: str) -> Callable[[dict[str, Any]], bool]:
    """A switch at this key path is given and not true (``<Enable>false</Enable>``)."""

    def present(node: dict[str, Any]) -> bool:
        value = _at(node, keys)
        return value is not None and not isinstance(value, dict) and not is_true(value)

    return present


_LINK_LOCAL = "link-local addresses are not added as ICE candidates (one address is advertised per session)"
# Server-level elements, looked up in the <Server> element as JSON (ServerConfig.tree).
SERVER_ROWS = (
    Row("Server.PrivacyProtection", "client addresses are kept whole in logs, the journal and the API",
        _enabled_value("privacyProtection")),
    Row("Server.Modules.LLHLS.Enable", "false: LL-HLS is still served with parts and blocking reloads",
        _switched_off("modules", "llhls", "enable")),
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
        out.append(f"{element} ({count}): not implemented by Kiln, Kiln's event loop serves it "
                   f"(media work runs on Kiln's own threads)")
    bind = tree.get("bind") if isinstance(tree.get("bind"), dict) else {}
    ingest_ice = _dig(bind, "providers", "webrtc", "iceCandidates")
    play_ice = _dig(bind, "publishers", "webrtc", "iceCandidates")
    if isinstance(ingest_ice, dict) and isinstance(play_ice, dict) and ingest_ice != play_ice:
        out.append("Server.Bind.Providers.WebRTC.IceCandidates: not implemented by Kiln, WebRTC ingest shares "
                   "Server.Bind.Publishers.WebRTC.IceCandidates (its ports, TcpRelay and TcpForce), which differ")
    ingest_tls = _port_text(tree, "bind", "providers", "webrtc", "signalling", "tlsPort")
    if ingest_tls is not None and ingest_tls != str(config.bind.webrtc_signalling_tls_port):
        out.append(f"Server.Bind.Providers.WebRTC.Signalling.TLSPort ({ingest_tls}): not implemented by Kiln, "
                   f"WebRTC ingest over TLS is served only on Server.Bind.Publishers.WebRTC.Signalling.TLSPort")
    return out


def _dig(node: Any, *keys: str) -> Any:
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _port_text(tree: dict[str, Any], *keys: str) -> str | None:
    value = _at(tree, keys)
    return None if value is None or isinstance(value, dict) else str(value).strip()


def _profiles(app: dict[str, Any]) -> list[dict[str, Any]]:
    profiles = app.get("outputProfiles")
    found = profiles.get("outputProfile") if isinstance(profiles, dict) else None
    return [p for p in found if isinstance(p, dict)] if isinstance(found, list) else []


def _any_encode(key: str, kinds: tuple[str, ...] = ("videos", "audios", "images")) -> Callable[[dict[str, Any]], bool]:
    """Some encode of some output profile sets ``key`` (to anything but an empty text)."""

    def present(app: dict[str, Any]) -> bool:
        for profile in _profiles(app):
            encodes = profile.get("encodes")
            if not isinstance(encodes, dict):
                continue
            for kind in kinds:
                items = encodes.get(kind)
                for encode in items if isinstance(items, list) else []:
                    if isinstance(encode, dict) and encode.get(key) not in (None, "", {}):
                        return True
        return False

    return present


def _any_playlist(key: str) -> Callable[[dict[str, Any]], bool]:
    """Some playlist of some output profile has ``key``."""

    def present(app: dict[str, Any]) -> bool:
        for profile in _profiles(app):
            playlists = profile.get("playlists")
            for playlist in playlists if isinstance(playlists, list) else []:
                if isinstance(playlist, dict) and playlist.get(key) not in (None, [], ""):
                    return True
        return False

    return present


def _any_enabled(*keys: str) -> Callable[[dict[str, Any]], bool]:
    """Some item of the list at this key path has ``Enable`` true (``Dumps/Dump``)."""

    def present(node: dict[str, Any]) -> bool:
        value = _at(node, keys)
        items = value if isinstance(value, list) else [value]
        return any(isinstance(item, dict) and is_true(item.get("enable")) for item in items)

    return present


def _above_zero(*keys: str) -> Callable[[dict[str, Any]], bool]:
    """A number at this key path is above 0."""

    def present(node: dict[str, Any]) -> bool:
        value = _at(node, keys)
        try:
            return value is not None and not isinstance(value, dict) and float(str(value)) > 0
        except ValueError:
            return True  # not a number: OME would read something, Kiln reads nothing

    return present


def _not_value(expected: str, *keys: str) -> Callable[[dict[str, Any]], bool]:
    """A value at this key path is given and is not ``expected`` (case-insensitive)."""

    def present(node: dict[str, Any]) -> bool:
        value = _at(node, keys)
        return value is not None and str(value).strip().lower() != expected.lower()

    return present


VHOST_ROWS = (
    Row("VirtualHost.CrossDomains", "no default CORS for the vhost's apps: set CrossDomains in each app's publishers",
        _has("crossDomains")),
)

APP_ROWS = (
    Row("Providers.File", "file provider", _has("providers", "file")),
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
    # transcoding
    Row("OutputProfiles.Decodes.OnlyKeyframes", "decoding keyframes only: every frame is decoded",
        _enabled_value("outputProfiles", "decodes", "onlyKeyframes")),
    Row("Decodes.OnlyKeyframes", "decoding keyframes only: every frame is decoded",
        _enabled_value("decodes", "onlyKeyframes")),
    Row("OutputProfiles.MediaOptions", "output media options: input tracks are used as they arrive",
        _has("outputProfiles", "mediaOptions")),
    *(Row(f"OutputProfiles.OutputProfile.Encodes.{tag}.Modules", "choosing the encoder module: Kiln encodes with "
          "FFmpeg's libx264, libx265, libvpx, aac, libopus and its image encoders", _any_encode("modules", (kind,)))
      for tag, kind in (("Video", "videos"), ("Audio", "audios"), ("Image", "images"))),
    Row("OutputProfiles.OutputProfile.Encodes.Video.Lookahead", "encoder lookahead: x264's default is used",
        _any_encode("lookahead", ("videos",))),
    Row("OutputProfiles.OutputProfile.Playlist.RenditionTemplate", "rendition templates: only a playlist's "
        "Rendition elements make renditions", _any_playlist("renditionTemplates")),
    Row("Providers.RTMP.PassthroughOutputProfile", "passthrough: the stream goes through the output profiles",
        _has("providers", "rtmp", "passthroughOutputProfile")),
    Row("Providers.SRT.PassthroughOutputProfile", "passthrough: the stream goes through the output profiles",
        _has("providers", "srt", "passthroughOutputProfile")),
    Row("Providers.MPEGTS.PassthroughOutputProfile", "passthrough: the stream goes through the output profiles",
        _has("providers", "mpegts", "passthroughOutputProfile")),
    Row("Providers.WebRTC.PassthroughOutputProfile", "passthrough: the stream goes through the output profiles",
        _has("providers", "webrtc", "passthroughOutputProfile")),
    # publishing
    Row("Publishers.AppWorkerCount", "publisher worker threads: Kiln sizes its own",
        _has("publishers", "appWorkerCount")),
    Row("Publishers.StreamWorkerCount", "publisher worker threads: Kiln sizes its own",
        _has("publishers", "streamWorkerCount")),
    Row("Publishers.DelayBufferTimeMs", "delaying the publishers: streams are published without delay",
        _above_zero("publishers", "delayBufferTimeMs")),
    Row("Publishers.WebRTC.Rtx", "false: RTX (RFC 4588) is still offered to viewers for NACKed packets",
        _switched_off("publishers", "webrtc", "rtx")),
    Row("Publishers.WebRTC.JitterBuffer", "the WebRTC jitter buffer: frames are sent as they arrive",
        _enabled_value("publishers", "webrtc", "jitterBuffer")),
    Row("Publishers.WebRTC.PlayoutDelay", "the playout-delay RTP extension: players choose their own delay",
        _has("publishers", "webrtc", "playoutDelay")),
    Row("Publishers.WebRTC.BandwidthEstimation", "other bandwidth estimation than REMB: viewers' REMB is read",
        _not_value("remb", "publishers", "webrtc", "bandwidthEstimation")),
    Row("Publishers.LLHLS.CacheControl", "Cache-Control settings: OME's defaults are sent",
        _has("publishers", "llhls", "cacheControl")),
    Row("Publishers.HLS.CacheControl", "Cache-Control settings: OME's defaults are sent",
        _has("publishers", "hls", "cacheControl")),
    Row("Publishers.LLHLS.DefaultQueryString", "default query strings: a request's own query is used as is",
        _has("publishers", "llhls", "defaultQueryString")),
    Row("Publishers.LLHLS.Dumps.Dump", "dumps started by the configuration: start them with :startHlsDump",
        _any_enabled("publishers", "llhls", "dumps", "dump")),
    Row("Publishers.FILE.StreamMap", "recording by stream map: start recordings with :startRecord",
        _enabled("publishers", "file", "streamMap")),
    *(Row(f"Publishers.{tag}.StreamMap", "pushing by stream map: start pushes with :startPush",
          _enabled("publishers", key, "streamMap"))
      for tag, key in (("Push", "push"), ("RTMPPush", "rtmpPush"), ("SRTPush", "srtPush"),
                       ("MPEGTSPush", "mpegtsPush"))),
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


def vhost_warnings(vhost: dict[str, Any]) -> list[str]:
    """``VirtualHost.<element>: not implemented by Kiln, ...`` for one vhost's JSON, from Server.xml or the API."""
    return [f"{row.element}: not implemented by Kiln, {row.feature}" for row in VHOST_ROWS if row.present(vhost)]


def app_warnings(app: dict[str, Any]) -> list[str]:
    """``Application.<element>: not implemented by Kiln, ...`` for one app's JSON, from Server.xml or the API."""
    return [f"Application.{row.element}: not implemented by Kiln, {row.feature}" for row in APP_ROWS
            if row.present(app)]


API_STAR = ("Application.Name (*): an app added to a vhost through POST apps is an app named '*', not a template "
            "(as in OME: a vhost's template for dynamic applications comes from Server.xml or its POST vhosts body)")


def api_app_warnings(app: dict[str, Any]) -> list[str]:
    """``app_warnings`` for an app made through the API (POST apps), whose ``*`` is no template."""
    return [*app_warnings(app), *([API_STAR] if str(app.get("name", "")).strip() == "*" else [])]


def profile_warnings(profile: dict[str, Any]) -> list[str]:
    """The same for one output profile given alone (``POST``/``PATCH`` of ``outputProfiles``)."""
    return app_warnings({"outputProfiles": {"outputProfile": [profile]}})


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
        out += [f"vhost {name}: {line}" for line in vhost_warnings(vhost)]
        for app in _apps(vhost):
            if config.bind.webrtc_signalling_port is None and _has("providers", "webrtc")(app):
                out.append(f"vhost {name} app {app.get('name')}: Application.Providers.WebRTC: not opened: WebRTC "
                           f"ingest is served on Server.Bind.Publishers.WebRTC.Signalling, which is not configured")
            out += [f"vhost {name} app {app.get('name')}: {line}" for line in app_warnings(app)]
    return out

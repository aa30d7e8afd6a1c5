"""Reading Server.xml (a file, a string, or the embedded default) into a ServerConfig."""

from __future__ import annotations

import glob
import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from kiln.config.errors import ConfigLoadError
from kiln.config.limits import API_DEFAULTS, ConnectionLimits
from kiln.config.model import BindConfig, ModulesConfig, ServerConfig
from kiln.config.ports import PortError, parse_port, parse_port_list
from kiln.config.schema import SERVER
from kiln.config.validate import ConfigError, validate_app_json, validate_vhost_json
from kiln.config.values import is_true
from kiln.config.xmlconv import Converter, substitute_tree
from kiln.domain.errors import DomainError
from kiln.domain.subscriptions import parse_spec

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "(embedded default)"
SERVER_TYPES = ("origin", "edge")
SERVER_XML_VERSION = "8"


def load_default_config() -> ServerConfig:
    """The embedded default, equal in spirit to OME's sample Server.xml."""
    text = resources.files("kiln.config").joinpath("default.xml").read_text(encoding="utf-8")
    return load_server_xml_text(text, Path.cwd(), source=DEFAULT_SOURCE)


def load_server_xml(path: str | Path, environ: Mapping[str, str] | None = None) -> ServerConfig:
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigLoadError(f"{file}: cannot read: {exc.strerror or exc}") from exc
    return _load(data, file.resolve().parent, str(file), environ)


def load_server_xml_text(text: str, base_dir: str | Path, *, source: str = "<Server.xml text>",
                         environ: Mapping[str, str] | None = None) -> ServerConfig:
    """Parse Server.xml given as a string; ``base_dir`` resolves relative paths (certs, includes)."""
    return _load(text.encode("utf-8"), Path(base_dir), source, environ)


# --- parsing ---------------------------------------------------------------------------------
def _parse_xml(data: bytes, source: str) -> ET.Element:
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise ConfigLoadError(f"{source}: malformed XML: {exc}") from exc
    except (LookupError, ValueError) as exc:  # the XML declaration names an encoding expat cannot read
        raise ConfigLoadError(f"{source}: unsupported XML encoding: {exc}") from exc


def _expand_includes(root: ET.Element, base_dir: Path, environ: Mapping[str, str], warnings: list[str]) -> None:
    """``<VirtualHost include="VHost*.xml"/>``: each matching file holds one ``<VirtualHost>``."""
    for holder in root.findall("VirtualHosts"):
        for index, child in enumerate(list(holder)):
            pattern = child.attrib.get("include") if child.tag == "VirtualHost" else None
            if not pattern:
                continue
            full = pattern if os.path.isabs(pattern) else str(base_dir / pattern)
            files = sorted(glob.glob(full))
            if not files:
                warnings.append(f"VirtualHost include=\"{pattern}\" matched no file in {base_dir}")
            loaded = []
            for name in files:
                try:
                    data = Path(name).read_bytes()
                except OSError as exc:
                    raise ConfigLoadError(f"{name}: cannot read: {exc.strerror or exc}") from exc
                vhost = _parse_xml(data, name)
                if vhost.tag != "VirtualHost":
                    raise ConfigLoadError(f"{name}: root element is <{vhost.tag}>, expected <VirtualHost>")
                substitute_tree(vhost, "Server.VirtualHosts.VirtualHost", environ, name)
                loaded.append(vhost)
            holder.remove(child)
            for offset, vhost in enumerate(loaded):
                holder.insert(index + offset, vhost)


def _load(data: bytes, base_dir: Path, source: str, environ: Mapping[str, str] | None) -> ServerConfig:
    env = os.environ if environ is None else environ
    root = _parse_xml(data, source)
    if root.tag != "Server":
        raise ConfigLoadError(f"{source}: root element is <{root.tag}>, expected <Server>")
    converter = Converter()
    version = root.attrib.get("version")
    if version != SERVER_XML_VERSION:
        converter.warn(f"Server version=\"{version or ''}\" (OME's current layout is version=\"8\"); "
                       "reading it as version 8")
    substitute_tree(root, "Server", env, source)
    _expand_includes(root, base_dir, env, converter.warnings)
    tree = converter.convert(root, SERVER, "Server")
    config = _build(tree, source, converter)
    config.tree = tree
    config.base_dir = base_dir
    config.source = source
    config.warnings = converter.warnings
    for warning in config.warnings:
        log.info("config warning source=%s %s", source, warning)
    return config


# --- typed server settings -------------------------------------------------------------------
def _dig(tree: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def _port(tree: dict[str, Any], source: str, path: str, *keys: str) -> int | None:
    value = _dig(tree, *keys)
    if value is None or isinstance(value, dict):
        return None
    try:
        return parse_port(str(value))
    except PortError as exc:
        raise ConfigLoadError(f"{source}: {path}: {exc}") from exc


def _build_bind(server: dict[str, Any], source: str) -> BindConfig:
    b = server.get("bind") or {}

    def port(path: str, *keys: str) -> int | None:
        return _port(b, source, "Server.Bind." + path, *keys)

    mpegts = _dig(b, "providers", "mpegts", "port")
    try:
        mpegts_ports = parse_port_list(mpegts) if isinstance(mpegts, str) else []
    except PortError as exc:
        raise ConfigLoadError(f"{source}: Server.Bind.Providers.MPEGTS.Port: {exc}") from exc
    srt_options = {str(o.get("key", "")): str(o.get("value", ""))
                   for o in _dig(b, "providers", "srt", "options", "option") or [] if o.get("key")}
    srt_playback_options = {str(o.get("key", "")): str(o.get("value", ""))
                            for o in _dig(b, "publishers", "srt", "options", "option") or [] if o.get("key")}
    srt_map: dict[int, str] = {}
    for entry in _dig(b, "providers", "srt", "streamMap", "stream") or []:
        number = _port(entry, source, "Server.Bind.Providers.SRT.StreamMap.Stream.Port", "port")
        if number is not None and entry.get("streamPath"):
            srt_map[number] = str(entry["streamPath"])
    candidates = (_dig(b, "publishers", "webrtc", "iceCandidates", "iceCandidate")
                  or _dig(b, "providers", "webrtc", "iceCandidates", "iceCandidate") or [])
    ice = _dig(b, "publishers", "webrtc", "iceCandidates") or _dig(b, "providers", "webrtc", "iceCandidates") or {}
    tcp_relay = ice.get("tcpRelay") if isinstance(ice, dict) else None
    relay_workers = ice.get("tcpRelayWorkerCount") if isinstance(ice, dict) else None
    return BindConfig(
        api_port=port("Managers.API.Port", "managers", "api", "port"),
        api_tls_port=port("Managers.API.TLSPort", "managers", "api", "tlsPort"),
        rtmp_port=port("Providers.RTMP.Port", "providers", "rtmp", "port"),
        srt_port=port("Providers.SRT.Port", "providers", "srt", "port"),
        srt_options=srt_options,
        srt_stream_map=srt_map,
        mpegts_ports=mpegts_ports,
        webrtc_signalling_port=port("Publishers.WebRTC.Signalling.Port", "publishers", "webrtc", "signalling", "port"),
        webrtc_signalling_tls_port=port("Publishers.WebRTC.Signalling.TLSPort", "publishers", "webrtc", "signalling",
                                        "tlsPort"),
        webrtc_ingest_signalling_port=port("Providers.WebRTC.Signalling.Port", "providers", "webrtc", "signalling",
                                           "port"),
        webrtc_candidate_ports=",".join(str(c) for c in candidates) or None,
        webrtc_tcp_relay=(str(tcp_relay).strip() or None) if tcp_relay is not None else None,
        webrtc_tcp_force=isinstance(ice, dict) and is_true(ice.get("tcpForce")),
        webrtc_tcp_relay_workers=(str(relay_workers).strip() or None) if relay_workers is not None else None,
        llhls_port=port("Publishers.LLHLS.Port", "publishers", "llhls", "port"),
        llhls_tls_port=port("Publishers.LLHLS.TLSPort", "publishers", "llhls", "tlsPort"),
        hls_port=port("Publishers.HLS.Port", "publishers", "hls", "port"),
        hls_tls_port=port("Publishers.HLS.TLSPort", "publishers", "hls", "tlsPort"),
        ovt_port=(port("Publishers.OVT.Port", "publishers", "ovt", "port")
                  if _dig(b, "publishers", "ovt", "port") is not None
                  else port("Providers.OVT.Port", "providers", "ovt", "port")),
        srt_playback_port=port("Publishers.SRT.Port", "publishers", "srt", "port"),
        srt_playback_options=srt_playback_options,
        thumbnail_port=port("Publishers.Thumbnail.Port", "publishers", "thumbnail", "port"),
        thumbnail_tls_port=port("Publishers.Thumbnail.TLSPort", "publishers", "thumbnail", "tlsPort"),
    )


def _build(server: dict[str, Any], source: str, converter: Converter) -> ServerConfig:
    server_type = server.get("type")
    if server_type is None:
        converter.warn("Server.Type is missing (origin or edge); assuming origin")
        server_type = "origin"
    elif server_type not in SERVER_TYPES:
        raise ConfigLoadError(f"{source}: Server.Type: Unknown type '{server_type}' (expected origin or edge)")
    ips = [ip for ip in server.get("ip") or [] if ip] or ["*"]
    modules = server.get("modules") or {}
    api = _dig(server, "managers", "api") or {}
    cross = api.get("crossDomains") or {}
    headers: dict[str, str] = {}
    for header in cross.get("headers") or []:
        if header.get("key"):
            headers[str(header["key"])] = str(header.get("value", ""))
        else:
            converter.warn("Server.Managers.API.CrossDomains.Header without Key ignored")
    api_limits, problems = ConnectionLimits.parse(api.get("limits") or {}, API_DEFAULTS)
    for problem in problems:
        converter.warn(problem)
    return ServerConfig(
        name=str(server.get("name") or "Kiln"),
        type=server_type,
        ip=ips[0],
        ips=ips,
        stun_server=server.get("stunServer") or None,
        privacy_protection=is_true(server.get("privacyProtection")),
        bind=_build_bind(server, source),
        modules=ModulesConfig(
            ertmp=is_true(_dig(modules, "ertmp", "enable")),
            http2=_dig(modules, "http2", "enable") is None or is_true(_dig(modules, "http2", "enable")),
            llhls=_dig(modules, "llhls", "enable") is None or is_true(_dig(modules, "llhls", "enable")),
            p2p=is_true(_dig(modules, "p2p", "enable")),
            dynamic_app_removal=is_true(_dig(modules, "dynamicAppRemoval", "enable")),
        ),
        access_token=api.get("accessToken") or None,
        api_cross_domains=[str(u) for u in cross.get("urls") or []],
        api_cross_domain_headers=headers,
        managers_host=_dig(server, "managers", "host") or {},
        writable_roots=[str(r) for r in api.get("writableRoots") or [] if str(r).strip()],
        api_limits=api_limits,
        vhosts=_build_vhosts(server, source),
        metrics_auth=_dig(server, "managers", "metrics", "auth") is None
        or is_true(_dig(server, "managers", "metrics", "auth")),
        subscriptions=_build_subscriptions(server, source),
    )


def _build_subscriptions(server: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """Managers/Subscriptions/Subscription as the body ``POST /v1/subscriptions`` takes (checked by the
    subscriptions actor at start, which refuses the start with the reason)."""
    out: list[dict[str, Any]] = []
    for item in _dig(server, "managers", "subscriptions", "subscription") or []:
        body: dict[str, Any] = {"id": item.get("id"), "url": item.get("url")}
        if item.get("secretKey"):
            body["secretKey"] = str(item["secretKey"])
        types = [t.strip() for t in str(item.get("types") or "").split(",") if t.strip()]
        body["filter"] = {"entity": str(item.get("entity") or ""), "types": types}
        if item.get("from") not in (None, ""):
            try:
                body["from"] = int(str(item["from"]))
            except ValueError as exc:
                raise ConfigLoadError(f"{source}: Server.Managers.Subscriptions.Subscription.From: "
                                      f"not an integer: {item['from']!r}") from exc
        try:
            spec = parse_spec(body)
        except DomainError as exc:
            raise ConfigLoadError(f"{source}: Server.Managers.Subscriptions.Subscription: {exc.text}") from exc
        if any(other["id"] == spec.id for other in out):
            raise ConfigLoadError(f"{source}: Server.Managers.Subscriptions: duplicate subscription id '{spec.id}'")
        out.append(body)
    return out


def _build_vhosts(server: dict[str, Any], source: str) -> list[dict[str, Any]]:
    vhosts: list[dict[str, Any]] = _dig(server, "virtualHosts", "virtualHost") or []
    seen: set[str] = set()
    for vhost in vhosts:
        name = vhost.get("name")
        where = f"{source}: Server.VirtualHosts.VirtualHost" + (f" (name={name})" if name else "")
        shell = {k: v for k, v in vhost.items() if k != "applications"}
        _validate(validate_vhost_json, shell, where)
        if not name:
            raise ConfigLoadError(f"{where}: VirtualHost.Name is empty")
        if name in seen:
            raise ConfigLoadError(f"{where}: duplicate virtual host name '{name}'")
        seen.add(name)
        apps: list[dict[str, Any]] = _dig(vhost, "applications", "application") or []
        app_names: set[str] = set()
        for app in apps:
            app_name = app.get("name")
            app_where = f"{where}.Applications.Application" + (f" (name={app_name})" if app_name else "")
            _validate(validate_app_json, app, app_where)
            if not app_name:
                raise ConfigLoadError(f"{app_where}: Application.Name is empty")
            if app_name in app_names:
                raise ConfigLoadError(f"{app_where}: duplicate application name '{app_name}' in vhost '{name}'")
            app_names.add(app_name)
            for stream in _dig(app, "providers", "mpegts", "streamMap", "stream") or []:
                try:
                    parse_port_list(str(stream.get("port", "")))
                except PortError as exc:
                    raise ConfigLoadError(f"{app_where}.Providers.MPEGTS.StreamMap.Stream.Port: {exc}") from exc
    return vhosts


def _validate(check: Callable[[dict[str, Any]], None], value: dict[str, Any], where: str) -> None:
    try:
        check(value)
    except ConfigError as exc:
        raise ConfigLoadError(f"{where}: {exc}") from exc

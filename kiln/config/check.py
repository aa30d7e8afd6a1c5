"""``kiln config check``: load a Server.xml and say what Kiln would run, before anyone starts it.

The point is to catch a bad port, a typo'd element or a missing env variable at deploy time, and
to show which listeners will (not) open, since OME's rule "no Bind entry, no service" is easy to miss.
"""

from __future__ import annotations

from typing import Any, TextIO

from kiln.config.errors import ConfigLoadError
from kiln.config.hosts import host_names, shadowing, shadowing_text
from kiln.config.loader import load_default_config, load_server_xml
from kiln.config.model import ServerConfig
from kiln.config.ports import parse_port_list
from kiln.config.templates import (
    TEMPLATE_NAME,
    TEMPLATE_TEXT,
    dynamic_app_warnings,
    has_template,
    removal_text,
    timings,
)
from kiln.config.tls import CertificateFiles
from kiln.config.unimplemented import unimplemented_warnings
from kiln.config.validate import ConfigError, validate_vhost_json
from kiln.config.values import is_true
from kiln.domain.schedule import FILE_EXTENSION, ScheduleError, schedule_from_xml
from kiln.events.redact import redact_url

EXIT_OK = 0
EXIT_INVALID = 2

# (label, BindConfig attribute, app section, app key) — the key says which app switch uses the port.
# Only listeners Kiln opens; the Bind entries it parses and does not open are in
# kiln.config.unimplemented (UNOPENED_BINDS) and come out as warnings.
_LISTENERS = (
    ("REST API", "api_port", None, None),
    ("REST API (TLS)", "api_tls_port", None, None),
    ("RTMP ingest", "rtmp_port", "providers", "rtmp"),
    ("SRT ingest", "srt_port", "providers", "srt"),
    ("LLHLS", "llhls_port", "publishers", "llhls"),
    ("LLHLS (TLS)", "llhls_tls_port", "publishers", "llhls"),
    ("HLS (TS)", "hls_port", "publishers", "hls"),
    ("SRT playback", "srt_playback_port", "publishers", "srt"),
    ("WebRTC signalling", "webrtc_signalling_port", "publishers", "webrtc"),
    ("OVT (origin → edge)", "ovt_port", "publishers", "ovt"),
    ("Thumbnail", "thumbnail_port", "publishers", "thumbnail"),
    ("Thumbnail (TLS)", "thumbnail_tls_port", "publishers", "thumbnail"),
)
# the media TLS ports serve the vhosts' Host/TLS certificates (chosen by SNI): without one they stay closed
_MEDIA_TLS = ("llhls_tls_port", "thumbnail_tls_port")


def run_check(path: str | None, out: TextIO) -> int:
    """Print the summary to ``out``; 0 when usable, 2 with a one-line ``error:`` otherwise."""
    try:
        config = load_default_config() if path is None else load_server_xml(path)
        for vhost in config.vhosts:
            validate_vhost_json(vhost)
    except ConfigLoadError as exc:
        out.write(f"error: {exc}\n")
        return EXIT_INVALID
    except ConfigError as exc:
        out.write(f"error: {path or 'default config'}: [Config] {exc}\n")
        return EXIT_INVALID
    out.write(summary(config))
    return EXIT_OK


def _names(section: object) -> list[str]:
    return [k for k, v in section.items() if isinstance(v, dict)] if isinstance(section, dict) else []


def _apps(config: ServerConfig) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for vhost in config.vhosts:
        for app in (vhost.get("applications") or {}).get("application") or []:
            out.append((str(vhost.get("name")), app))
    return out


def _encode_text(encode: dict[str, Any]) -> str:
    name = encode.get("name", "?")
    if is_true(encode.get("bypass")):
        return f"{name}(bypass)"
    parts = [str(encode[k]) for k in ("codec", "bitrate", "width", "height") if encode.get(k) not in (None, "")]
    return f"{name}({' '.join(parts)})"


def _profile_lines(app: dict[str, Any]) -> list[str]:
    lines = []
    for profile in (app.get("outputProfiles") or {}).get("outputProfile") or []:
        encodes = profile.get("encodes") or {}
        tracks = [_encode_text(e) for kind in ("videos", "audios", "images") for e in encodes.get(kind) or []]
        playlists = [f"{p.get('fileName')}.m3u8" for p in profile.get("playlists") or []]
        line = f"      profile {profile.get('name')} -> {profile.get('outputStreamName')}: {', '.join(tracks) or '-'}"
        if playlists:
            line += f"; playlists {', '.join(playlists)}"
        lines.append(line)
    return lines or ["      no output profiles: nothing will be published"]


def _shadowed_notes(config: ServerConfig) -> list[str]:
    """The first vhost whose host names match wins: a vhost whose names all match an earlier one
    never receives a stream by host name."""
    notes = []
    earlier: list[tuple[str, list[str]]] = []
    for vhost in config.vhosts:
        name, names = str(vhost.get("name")), host_names(vhost)
        shadowed = shadowing(earlier, names)
        if shadowed:
            notes.append(f"vhost {name} is shadowed: every host name is matched first by an earlier vhost "
                         f"({shadowing_text(shadowed)}); it receives no stream by host name")
        earlier.append((name, names))
    return notes


def _schedule_files(config: ServerConfig, where: str, schedule: dict[str, Any], lines: list[str],
                    notes: list[str]) -> None:
    """The ``.sch`` files an app's ScheduleFilesDir holds now, read as Kiln will at start: what each plays, and why
    one would be refused; a ``stream://`` item naming an app this configuration does not have is noted."""
    files_dir = schedule.get("scheduleFilesDir")
    folder = config.resolve_path(str(files_dir)) if files_dir else None
    if folder is None or not folder.is_dir():
        return
    apps = {(str(v.get("name")), str(a.get("name"))) for v in config.vhosts
            for a in (v.get("applications") or {}).get("application") or []}
    for path in sorted(folder.glob(f"*.{FILE_EXTENSION}")):
        try:
            read = schedule_from_xml(path.read_bytes(), path.stem)
        except (ScheduleError, OSError) as exc:
            notes.append(f"{where}: schedule file {path.name} will be refused: {getattr(exc, 'text', exc)}")
            continue
        items = [*(read.fallback or ()), *(i for p in read.programs for i in p.items)]
        live = [i for i in items if i.stream_target is not None]
        lines.append(f"    schedule {path.name}: {len(read.programs)} program(s), {len(items) - len(live)} file:// "
                     f"and {len(live)} stream:// item(s)")
        for item in live:
            target = item.stream_target
            if target is not None and target[:2] not in apps:
                notes.append(f"{where}: schedule file {path.name}: {item.url} names an app this configuration does "
                             "not have (the item cannot play: fallbackOnErr applies)")


def summary(config: ServerConfig) -> str:
    """Human-readable account of listeners, token source, vhosts/apps and warnings."""
    bind = config.bind
    lines = [f"config: {config.source}",
             f"server: name={config.name} type={config.type} ip={','.join(config.ips)}"
             f" ertmp={'on' if config.modules.ertmp else 'off'}",
             "listeners:"]
    apps = _apps(config)
    notes: list[str] = []
    for label, attr, section, key in _LISTENERS:
        port = getattr(bind, attr)
        if port is not None:
            lines.append(f"  {label:<26} {port if port else '0 (any free port)'}")
        elif section is not None:
            users = [f"{vh}/{a.get('name')}" for vh, a in apps if key in _names(a.get(section))]
            if users and not attr.endswith("tls_port"):
                notes.append(f"{label} is enabled in {', '.join(users)} but has no Bind port: it will not be served")
    if not any(CertificateFiles.of(vhost, config.resolve_path) for vhost in config.vhosts):
        for label, attr, _section, _key in _LISTENERS:
            if attr in _MEDIA_TLS and getattr(bind, attr) is not None:
                notes.append(f"{label} will not be opened: no vhost has Host/TLS CertPath and KeyPath")
    if bind.webrtc_signalling_port is not None:
        lines.append(f"  {'WebRTC ICE (UDP)':<26} {bind.webrtc_candidate_ports or 'ephemeral ports'}")
        if bind.webrtc_tcp_relay:
            lines.append(f"  {'WebRTC TURN (TCP relay)':<26} {bind.webrtc_tcp_relay}"
                         f"{' (TcpForce: every offer)' if bind.webrtc_tcp_force else ' (?transport=tcp)'}")
    if bind.mpegts_ports:
        lines.append(f"  {'MPEG-TS/UDP ingest':<26} {', '.join(str(p) for p in bind.mpegts_ports)}")
    if bind.api_port is None and bind.api_tls_port is None:
        notes.append("REST API is off: no Bind/Managers/API/Port")
    if config.access_token:
        lines.append("api token: set in Server.xml (Managers/API/AccessToken)")
    else:
        lines.append("api token: none in Server.xml; generated on first start and kept in the data dir")
    if config.api_cross_domains:
        lines.append(f"api cross domains: {', '.join(config.api_cross_domains)}")
    lines.append("metrics: GET /metrics on the API port, " + (
        "with the API token" if config.metrics_auth else "without a token (Managers/Metrics/Auth false)"))
    for sub in config.subscriptions:
        types = ",".join(sub["filter"]["types"]) or "all types"
        lines.append(f"subscription {sub['id']}: {redact_url(str(sub['url']))} (entity '{sub['filter']['entity']}*', "
                     f"{types}{', signed' if sub.get('secretKey') else ', unsigned'})")
    tls_sources = [("Managers.Host.TLS", config.managers_host.get("tls"))]
    tls_sources += [(f"vhost {v.get('name')} Host.TLS", (v.get("host") or {}).get("tls")) for v in config.vhosts]
    for where, tls in tls_sources:
        for key in ("certPath", "keyPath", "chainCertPath"):
            value = tls.get(key) if isinstance(tls, dict) else None
            if value and not config.resolve_path(str(value)).is_file():
                notes.append(f"{where}: {key} {config.resolve_path(str(value))} does not exist")
    for vhost in config.vhosts:
        names = ", ".join((vhost.get("host") or {}).get("names") or []) or "-"
        lines.append(f"vhost {vhost.get('name')} (host names: {names})")
        for app in (vhost.get("applications") or {}).get("application") or []:
            if str(app.get("name", "")).strip() == TEMPLATE_NAME:
                lines.append(f"  * ({app.get('type')}): {TEMPLATE_TEXT}")
            else:
                lines.append(f"  app {app.get('name')} ({app.get('type')})")
            lines.append(f"    providers: {', '.join(_names(app.get('providers'))) or '-'}")
            lines.append(f"    publishers: {', '.join(_names(app.get('publishers'))) or '-'}")
            lines.append("    output profiles:")
            lines.extend(_profile_lines(app))
            schedule = (app.get("providers") or {}).get("schedule")
            media_root = schedule.get("mediaRootDir") if isinstance(schedule, dict) else None
            if schedule is not None and not (media_root and config.resolve_path(str(media_root)).is_dir()):
                shown = str(config.resolve_path(str(media_root))) if media_root else "(not set)"
                notes.append(f"{vhost.get('name')}/{app.get('name')}: Schedule MediaRootDir {shown} is not a "
                             "directory: scheduled channels' file:// items have nothing to play (stream:// items, "
                             "the server's live streams, still do)")
            if isinstance(schedule, dict):
                _schedule_files(config, f"{vhost.get('name')}/{app.get('name')}", schedule, lines, notes)
            for stream in ((app.get("providers") or {}).get("mpegts") or {}).get("streamMap", {}).get("stream") or []:
                unbound = [p for p in parse_port_list(str(stream.get("port", ""))) if p not in bind.mpegts_ports]
                if unbound:
                    notes.append(f"{vhost.get('name')}/{app.get('name')}: MPEG-TS stream map port(s) "
                                 f"{', '.join(map(str, unbound))} not in Bind/Providers/MPEGTS/Port")
    notes.extend(_shadowed_notes(config))
    if any(has_template(v) for v in config.vhosts) or config.modules.dynamic_app_removal:
        lines.append(removal_text(config, *timings()))
    warnings = [*config.warnings, *unimplemented_warnings(config), *dynamic_app_warnings(config)]
    for label, items in (("notes", notes), ("warnings", warnings)):
        if items:
            lines.append(f"{label} ({len(items)}):")
            lines.extend(f"  {item}" for item in items)
    lines.append("OK")
    return "\n".join(lines) + "\n"

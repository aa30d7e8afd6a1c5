"""What Kiln runs, as read from Server.xml: typed server-level settings plus vhosts as REST JSON.

Server-level settings (ports, token) are typed because the service acts on them directly;
vhosts and apps stay in OME's JSON shape because the API echoes them and actors validate them
with the same schema as API-created ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln.config.limits import API_DEFAULTS, ConnectionLimits


@dataclass
class BindConfig:
    """Listening ports; ``None`` means the listener is not opened (OME: no Bind entry, no service)."""

    api_port: int | None = 8081
    api_tls_port: int | None = None
    rtmp_port: int | None = None
    srt_port: int | None = None
    srt_options: dict[str, str] = field(default_factory=dict)
    srt_stream_map: dict[int, str] = field(default_factory=dict)   # local port -> "vhost/app/stream"
    mpegts_ports: list[int] = field(default_factory=list)
    webrtc_signalling_port: int | None = None
    webrtc_signalling_tls_port: int | None = None
    webrtc_ingest_signalling_port: int | None = None
    webrtc_candidate_ports: str | None = None     # IceCandidate values joined by ",", e.g. "*:10000-10004/udp"
    webrtc_tcp_relay: str | None = None           # IceCandidates/TcpRelay, e.g. "*:3478": Kiln's TURN over TCP
    webrtc_tcp_force: bool = False                # IceCandidates/TcpForce: every offer carries the TURN server
    webrtc_tcp_relay_workers: str | None = None   # IceCandidates/TcpRelayWorkerCount: parsed, not used (warned)
    llhls_port: int | None = None
    llhls_tls_port: int | None = None
    hls_port: int | None = None
    hls_tls_port: int | None = None
    ovt_port: int | None = None
    srt_playback_port: int | None = None
    srt_playback_options: dict[str, str] = field(default_factory=dict)  # Publishers/SRT/Options, e.g. SRTO_PASSPHRASE
    thumbnail_port: int | None = None
    thumbnail_tls_port: int | None = None


@dataclass
class ModulesConfig:
    """``<Modules>`` switches; defaults are OME's (HTTP/2 and LLHLS on, Enhanced RTMP off)."""

    ertmp: bool = False
    http2: bool = True
    llhls: bool = True
    p2p: bool = False
    dynamic_app_removal: bool = False  # DynamicAppRemoval: unused dynamic apps are removed (kiln.config.templates)


@dataclass
class ServerConfig:
    name: str = "Kiln"
    type: str = "origin"
    ip: str = "*"
    ips: list[str] = field(default_factory=lambda: ["*"])
    stun_server: str | None = None
    privacy_protection: bool = False
    bind: BindConfig = field(default_factory=BindConfig)
    modules: ModulesConfig = field(default_factory=ModulesConfig)
    access_token: str | None = None
    api_cross_domains: list[str] = field(default_factory=list)
    api_cross_domain_headers: dict[str, str] = field(default_factory=dict)
    managers_host: dict[str, Any] = field(default_factory=dict)   # {"names": [...], "tls": {...}} for the API's TLS
    writable_roots: list[str] = field(default_factory=list)  # Managers/API/WritableRoots; empty: the defaults
    api_limits: ConnectionLimits = API_DEFAULTS  # Managers/API/Limits
    vhosts: list[dict[str, Any]] = field(default_factory=list)
    metrics_auth: bool = True     # Managers/Metrics/Auth: false serves GET /metrics without the token
    subscriptions: list[dict[str, Any]] = field(default_factory=list)  # Managers/Subscriptions, as API bodies
    warnings: list[str] = field(default_factory=list)
    # the whole <Server> element as JSON: kiln.config.unimplemented looks in it for what Kiln does not run
    tree: dict[str, Any] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)
    source: str = ""     # file path, or "(embedded default)"

    def resolve_path(self, value: str | Path) -> Path:
        """A path from the config (cert, key, record root) made absolute against the config's directory."""
        path = Path(value)
        return path if path.is_absolute() else self.base_dir / path

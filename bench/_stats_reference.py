"""The pre-``kiln.metrics`` statistics (``kiln/projections/stats.py`` as of 97fe0ac), kept verbatim.

It is the reference ``bench/metrics.py`` measures the new packet path against, and the oracle the
unit tests compare ``kiln.metrics.MetricsTree`` with (same calls, same JSON). Its original docstring:

Runtime statistics with OME's semantics (rest-spec §13, media-spec §10).

Metrics exist per server, vhost, app and input stream; every update is applied to the whole
chain at once. Throughput windows close only when input bytes arrive (more than 1 s after the
previous close), so outbound throughput freezes when ingest stops, exactly as in OME. Counters
are runtime state and are not journaled; they restart with the process like OME's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from kiln.timefmt import format_time, now

CONNECTION_TYPES = ("file", "hlsv3", "llhls", "ovt", "push", "srt", "thumbnail", "webrtc")


@dataclass
class Metrics:
    created_time: float
    last_updated_time: float = 0.0
    last_recv_time: float = 0.0
    last_sent_time: float = 0.0
    total_bytes_in: int = 0
    total_bytes_out: int = 0
    last_throughput_in: int = 0
    last_throughput_out: int = 0
    avg_throughput_in: int = 0
    avg_throughput_out: int = 0
    max_throughput_in: int = 0
    max_throughput_out: int = 0
    connections: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CONNECTION_TYPES, 0))
    max_total_connections: int = 0
    max_total_connection_time: float = 0.0
    window_start: float = 0.0
    window_in: int = 0
    window_out: int = 0

    def __post_init__(self) -> None:
        t = self.created_time
        self.last_updated_time = self.last_recv_time = self.last_sent_time = t
        self.max_total_connection_time = self.window_start = t

    @property
    def total_connections(self) -> int:
        return sum(self.connections.values())

    def add_in(self, n: int, t: float) -> None:
        self.total_bytes_in += n
        self.last_recv_time = self.last_updated_time = t
        if t - self.window_start > 1.0:
            self.last_throughput_in = self.total_bytes_in - self.window_in
            self.last_throughput_out = self.total_bytes_out - self.window_out
            self.avg_throughput_in = self.last_throughput_in * 8
            self.avg_throughput_out = self.last_throughput_out * 8
            self.max_throughput_in = max(self.max_throughput_in, self.avg_throughput_in)
            self.max_throughput_out = max(self.max_throughput_out, self.avg_throughput_out)
            self.window_start, self.window_in, self.window_out = t, self.total_bytes_in, self.total_bytes_out

    def add_out(self, n: int, t: float) -> None:
        self.total_bytes_out += n
        self.last_sent_time = self.last_updated_time = t

    def connect(self, kind: str, delta: int, t: float) -> None:
        self.connections[kind] = max(0, self.connections.get(kind, 0) + delta)
        self.last_updated_time = t
        total = self.total_connections
        if total > self.max_total_connections:
            self.max_total_connections = total
            self.max_total_connection_time = t

    def to_json(self) -> dict[str, Any]:
        return {
            "avgThroughputIn": self.avg_throughput_in,
            "avgThroughputOut": self.avg_throughput_out,
            "connections": dict(self.connections),
            "createdTime": format_time(self.created_time),
            "lastRecvTime": format_time(self.last_recv_time),
            "lastSentTime": format_time(self.last_sent_time),
            "lastThroughputIn": self.last_throughput_in,
            "lastThroughputOut": self.last_throughput_out,
            "lastUpdatedTime": format_time(self.last_updated_time),
            "maxThroughputIn": self.max_throughput_in,
            "maxThroughputOut": self.max_throughput_out,
            "maxTotalConnectionTime": format_time(self.max_total_connection_time),
            "maxTotalConnections": self.max_total_connections,
            "totalBytesIn": self.total_bytes_in,
            "totalBytesOut": self.total_bytes_out,
            "totalConnections": self.total_connections,
        }


class StatsProjection:
    """Metrics tree. Media code calls the add_/connect methods from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.server = Metrics(now())
        self.vhosts: dict[str, Metrics] = {}
        self.apps: dict[tuple[str, str], Metrics] = {}
        self.streams: dict[tuple[str, str, str], Metrics] = {}

    # -- lifecycle --
    def vhost_created(self, vhost: str, t: float | None = None) -> None:
        with self._lock:
            self.vhosts[vhost] = Metrics(now() if t is None else t)

    def vhost_deleted(self, vhost: str) -> None:
        with self._lock:
            self.vhosts.pop(vhost, None)
            for key in [k for k in self.apps if k[0] == vhost]:
                del self.apps[key]
            for key in [k for k in self.streams if k[0] == vhost]:
                del self.streams[key]

    def app_created(self, vhost: str, app: str, t: float | None = None) -> None:
        """Also used when an app is reconfigured: OME restarts the app's counters then."""
        with self._lock:
            self.apps[(vhost, app)] = Metrics(now() if t is None else t)

    def app_deleted(self, vhost: str, app: str) -> None:
        with self._lock:
            self.apps.pop((vhost, app), None)
            for key in [k for k in self.streams if k[:2] == (vhost, app)]:
                del self.streams[key]

    def stream_created(self, vhost: str, app: str, stream: str, t: float | None = None) -> None:
        with self._lock:
            self.streams[(vhost, app, stream)] = Metrics(now() if t is None else t)

    def stream_deleted(self, vhost: str, app: str, stream: str) -> None:
        with self._lock:
            self.streams.pop((vhost, app, stream), None)

    # -- counters --
    def _chain(self, vhost: str, app: str, stream: str | None) -> list[Metrics]:
        chain = [self.server]
        for found in (self.vhosts.get(vhost), self.apps.get((vhost, app)),
                      self.streams.get((vhost, app, stream)) if stream is not None else None):
            if found is not None:
                chain.append(found)
        return chain

    def bytes_in(self, vhost: str, app: str, stream: str, n: int) -> None:
        t = now()
        with self._lock:
            for m in self._chain(vhost, app, stream):
                m.add_in(n, t)

    def bytes_out(self, vhost: str, app: str, stream: str | None, n: int) -> None:
        t = now()
        with self._lock:
            for m in self._chain(vhost, app, stream):
                m.add_out(n, t)

    def connection(self, vhost: str, app: str, stream: str | None, kind: str, delta: int) -> None:
        if kind not in CONNECTION_TYPES:
            raise ValueError(f"unknown connection type {kind}")
        t = now()
        with self._lock:
            for m in self._chain(vhost, app, stream):
                m.connect(kind, delta, t)

    # -- reads --
    def server_json(self) -> dict[str, Any]:
        with self._lock:
            return self.server.to_json()

    def vhost_json(self, vhost: str) -> dict[str, Any] | None:
        with self._lock:
            m = self.vhosts.get(vhost)
            return m.to_json() if m else None

    def app_json(self, vhost: str, app: str) -> dict[str, Any] | None:
        with self._lock:
            m = self.apps.get((vhost, app))
            return m.to_json() if m else None

    def stream_json(self, vhost: str, app: str, stream: str) -> dict[str, Any] | None:
        with self._lock:
            m = self.streams.get((vhost, app, stream))
            return m.to_json() if m else None

"""One metrics object of the tree (server, vhost, app or input stream), with OME's semantics.

A node's byte totals are composed when read: what was written to the node itself, plus its
children's totals, plus what departed children left behind (``base``), minus what adopted children
had already counted before this node existed (``floor``; an app recreated by a reconfigure starts
from zero while its live streams keep their own totals). Who writes what:

- ``own_in``/``own_last_recv``: only a stream node's ingest thread (one writer at a time).
- ``own_out``: one cell per writing thread (a push or record session thread, the LL-HLS or thumbnail
  event loop), so every cell has a single writer.
- everything else (window figures, connections, children, ``base``/``floor``) changes only under
  ``lock``, the tree's one lock: actors changing the structure, sessions connecting, readers taking
  a snapshot, and an ingest thread closing a window. The ingest thread only ever tries it
  (non-blocking, at most once a second per node): if it is busy, the next packet closes the window.
  So a window close or a snapshot never sees a child half-way between two parents.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kiln.metrics.connections import CONNECTION_TYPES, PUSH_KINDS, connections_json, counted_kinds
from kiln.timefmt import format_time

WINDOW_S = 1.0
NodeKey = tuple[str, ...]  # () server, (vhost,), (vhost, app), (vhost, app, stream)


@dataclass(frozen=True)
class Totals:
    bytes_in: int
    bytes_out: int
    last_recv: float
    last_sent: float


@dataclass(frozen=True)
class NodeSnapshot:
    """Every figure of one node at one moment: what the stats API and an exporter show."""

    created_time: float
    last_updated_time: float
    last_recv_time: float
    last_sent_time: float
    total_bytes_in: int
    total_bytes_out: int
    last_throughput_in: int
    last_throughput_out: int
    avg_throughput_in: int
    avg_throughput_out: int
    max_throughput_in: int
    max_throughput_out: int
    connections: dict[str, int]
    max_total_connections: int
    max_total_connection_time: float
    pushes: dict[str, int] = field(default_factory=dict)  # pushes by protocol kind (``rtmppush``...)

    @property
    def total_connections(self) -> int:
        return sum(self.connections.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "avgThroughputIn": self.avg_throughput_in,
            "avgThroughputOut": self.avg_throughput_out,
            "connections": connections_json(self.connections, self.pushes),
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


class Node:
    """One server, vhost, app or stream: its own cells, its children and its window figures."""

    def __init__(self, key: NodeKey, created: float, parent: Node | None = None,
                 lock: threading.Lock | None = None) -> None:
        self.key = key
        self.lock = lock if lock is not None else threading.Lock()
        self.created_time = created
        self.parent = parent
        self.children: dict[int, Node] = {}  # by id(): a new node may share a departing one's key
        self.retired: list[tuple[float, Node]] = []  # (fold after, node): departed, still summed
        self.own_in = 0
        self.own_last_recv = 0.0  # 0: never; a node shows its creation time until bytes arrive
        self.own_out: dict[int, int] = {}
        self.own_last_sent = 0.0
        self.base = Totals(0, 0, 0.0, 0.0)
        self.floor_in = 0
        self.floor_out = 0
        self.window_start = created
        self.window_in = 0
        self.window_out = 0
        self.last_throughput_in = self.last_throughput_out = 0
        self.avg_throughput_in = self.avg_throughput_out = 0
        self.max_throughput_in = self.max_throughput_out = 0
        self.connections = dict.fromkeys(CONNECTION_TYPES, 0)
        self.pushes = dict.fromkeys(PUSH_KINDS.values(), 0)
        self.last_connection_time = created
        self.max_total_connections = 0
        self.max_total_connection_time = created
        self.due = float("-inf")  # earliest window start on this node's chain, as last seen by its ingest

    # -- the packet path --------------------------------------------------------------------------
    def add_in(self, n: int, t: float) -> None:
        """Bytes received by this stream's provider at ``t``; closes every due window above it."""
        self.own_in += n
        self.own_last_recv = t
        if t - self.due > WINDOW_S:
            self._close_due_windows(t)

    def add_out(self, n: int, t: float) -> None:
        """Bytes sent by a publisher at ``t``; counted in the calling thread's own cell."""
        cells = self.own_out
        ident = threading.get_ident()
        cells[ident] = cells.get(ident, 0) + n
        self.own_last_sent = t

    def _close_due_windows(self, t: float) -> None:
        due = t
        node: Node | None = self
        while node is not None:
            if t - node.window_start > WINDOW_S:
                node.close_window(t)
            due = min(due, node.window_start)
            node = node.parent
        self.due = due

    def close_window(self, t: float) -> None:
        """OME closes a window at the first input more than 1 s after the last close; its length is
        not divided out. Skipped if the lock is busy: the next packet closes it."""
        if not self.lock.acquire(blocking=False):
            return
        try:
            if t - self.window_start <= WINDOW_S:
                return
            totals = self.totals()
            self.last_throughput_in = totals.bytes_in - self.window_in
            self.last_throughput_out = totals.bytes_out - self.window_out
            self.avg_throughput_in = self.last_throughput_in * 8
            self.avg_throughput_out = self.last_throughput_out * 8
            self.max_throughput_in = max(self.max_throughput_in, self.avg_throughput_in)
            self.max_throughput_out = max(self.max_throughput_out, self.avg_throughput_out)
            self.window_start, self.window_in, self.window_out = t, totals.bytes_in, totals.bytes_out
        finally:
            self.lock.release()

    # -- composition ------------------------------------------------------------------------------
    def composed_children(self) -> tuple[Node, ...]:
        """Live and departed-but-not-folded children (each tuple() is one step under the GIL)."""
        return (*tuple(self.children.values()), *(node for _, node in tuple(self.retired)))

    def totals(self) -> Totals:
        base = self.base
        bytes_in = self.own_in + base.bytes_in - self.floor_in
        bytes_out = sum(tuple(self.own_out.values())) + base.bytes_out - self.floor_out
        last_recv = max(self.own_last_recv, base.last_recv)
        last_sent = max(self.own_last_sent, base.last_sent)
        for child in self.composed_children():
            sub = child.totals()
            bytes_in += sub.bytes_in
            bytes_out += sub.bytes_out
            last_recv = max(last_recv, sub.last_recv)
            last_sent = max(last_sent, sub.last_sent)
        return Totals(bytes_in, bytes_out, last_recv, last_sent)

    def absorb(self, totals: Totals) -> None:
        """Keep what a departing child counted (control plane, under the tree's lock)."""
        base = self.base
        self.base = Totals(base.bytes_in + totals.bytes_in, base.bytes_out + totals.bytes_out,
                           max(base.last_recv, totals.last_recv), max(base.last_sent, totals.last_sent))

    def fold_retired(self, t: float) -> None:
        """Fold departed children whose grace has passed into ``base`` (under the tree's lock)."""
        keep = []
        for fold_after, node in self.retired:
            if t >= fold_after:
                self.absorb(node.totals())
            else:
                keep.append((fold_after, node))
        if len(keep) != len(self.retired):
            self.retired = keep

    def descendants(self) -> Iterator[Node]:
        for child in tuple(self.children.values()):
            yield child
            yield from child.descendants()

    # -- connections (control plane, under the tree's lock) ---------------------------------------
    def connect(self, kind: str, delta: int, t: float) -> None:
        for counter in counted_kinds(kind):
            table = self.connections if counter in self.connections else self.pushes
            table[counter] = max(0, table[counter] + delta)
        self.last_connection_time = t
        total = sum(self.connections.values())
        if total > self.max_total_connections:
            self.max_total_connections = total
            self.max_total_connection_time = t

    # -- reads ------------------------------------------------------------------------------------
    def snapshot(self) -> NodeSnapshot:
        with self.lock:
            totals = self.totals()
            last_recv = max(self.created_time, totals.last_recv)
            last_sent = max(self.created_time, totals.last_sent)
            return NodeSnapshot(
                created_time=self.created_time,
                last_updated_time=max(self.last_connection_time, last_recv, last_sent),
                last_recv_time=last_recv,
                last_sent_time=last_sent,
                total_bytes_in=totals.bytes_in,
                total_bytes_out=totals.bytes_out,
                last_throughput_in=self.last_throughput_in,
                last_throughput_out=self.last_throughput_out,
                avg_throughput_in=self.avg_throughput_in,
                avg_throughput_out=self.avg_throughput_out,
                max_throughput_in=self.max_throughput_in,
                max_throughput_out=self.max_throughput_out,
                connections=dict(self.connections),
                max_total_connections=self.max_total_connections,
                max_total_connection_time=self.max_total_connection_time,
                pushes=dict(self.pushes),
            )

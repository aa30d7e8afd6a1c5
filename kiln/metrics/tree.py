"""The server/vhost/app/stream metrics tree (rest-spec §13), and the calls actors and publishers make.

Actors tell the tree when vhosts, apps and streams come and go; a live stream takes its own node
(``ingest_meter``) and counts its input there; publishers count output by name (``bytes_out``);
sessions connecting and leaving are counted along the chain (``connection``). Reads compose each
node from its children (see ``kiln.metrics.node``).

Structural changes, connections, snapshots and window closes take ``_lock`` (a window close only
tries it, see ``kiln.metrics.node``); counting bytes in and out never does. A departing node
stays in its parent's sums for ``RETIRE_GRACE_S`` (so a packet in flight while its stream is
deleted still lands in the parents) before its totals are folded into the parent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from kiln.metrics.connections import counted_kinds
from kiln.metrics.node import Node, NodeKey, NodeSnapshot
from kiln.timefmt import now

RETIRE_GRACE_S = 10.0


class MetricsTree:
    """The object actors and publishers count through (``ActorRuntime.stats``), and the stats API reads."""

    def __init__(self, created: float | None = None) -> None:
        self._lock = threading.Lock()
        self.server = Node((), now() if created is None else created, lock=self._lock)
        self._vhosts: dict[NodeKey, Node] = {}
        self._apps: dict[NodeKey, Node] = {}
        self._streams: dict[NodeKey, Node] = {}

    # -- lifecycle (actors) -----------------------------------------------------------------------
    def vhost_created(self, vhost: str, t: float | None = None) -> None:
        """Also a restart: a vhost created again starts from zero (its apps move to the new node)."""
        self._create(self._vhosts, (vhost,), t)

    def vhost_deleted(self, vhost: str) -> None:
        with self._lock:
            node = self._vhosts.pop((vhost,), None)
            self._forget(node, lambda key: key[0] == vhost)
            if node is not None:
                self._retire(node)
            self._fold()

    def app_created(self, vhost: str, app: str, t: float | None = None) -> None:
        """Also used when an app is reconfigured: OME restarts the app's counters then."""
        self._create(self._apps, (vhost, app), t)

    def app_deleted(self, vhost: str, app: str) -> None:
        with self._lock:
            node = self._apps.pop((vhost, app), None)
            self._forget(node, lambda key: key[:2] == (vhost, app))
            if node is not None:
                self._retire(node)
            self._fold()

    def stream_created(self, vhost: str, app: str, stream: str, t: float | None = None) -> None:
        self._create(self._streams, (vhost, app, stream), t)

    def stream_deleted(self, vhost: str, app: str, stream: str) -> None:
        with self._lock:
            node = self._streams.pop((vhost, app, stream), None)
            if node is not None:
                self._retire(node)
            self._fold()

    # -- counting (media) -------------------------------------------------------------------------
    def ingest_meter(self, vhost: str, app: str, stream: str) -> Node:
        """The node a live stream counts its input in (``add_in``); the stream's ingest thread is its
        only writer. Created here if the stream was not announced, so no input goes uncounted."""
        node = self._streams.get((vhost, app, stream))
        return node if node is not None else self._create(self._streams, (vhost, app, stream), None)

    def bytes_out(self, vhost: str, app: str, stream: str | None, n: int) -> None:
        """Bytes a publisher sent for a stream (counted at the deepest node that exists)."""
        self._deepest(vhost, app, stream).add_out(n, now())

    def connection(self, vhost: str, app: str, stream: str | None, kind: str, delta: int) -> None:
        counted_kinds(kind)  # a ValueError for a kind no counter knows, before any node moves
        t = now()
        with self._lock:
            for node in self._chain(vhost, app, stream):
                node.connect(kind, delta, t)

    # -- reads ------------------------------------------------------------------------------------
    def server_json(self) -> dict[str, Any]:
        return self.server.snapshot().to_json()

    def vhost_json(self, vhost: str) -> dict[str, Any] | None:
        node = self._vhosts.get((vhost,))
        return node.snapshot().to_json() if node is not None else None

    def app_json(self, vhost: str, app: str) -> dict[str, Any] | None:
        node = self._apps.get((vhost, app))
        return node.snapshot().to_json() if node is not None else None

    def stream_json(self, vhost: str, app: str, stream: str) -> dict[str, Any] | None:
        node = self._streams.get((vhost, app, stream))
        return node.snapshot().to_json() if node is not None else None

    def walk(self) -> Iterator[tuple[dict[str, str], NodeSnapshot]]:
        """Every node's labels and figures, server first (for an exporter such as Prometheus)."""
        yield {}, self.server.snapshot()
        levels = ((("vhost",), tuple(self._vhosts.items())), (("vhost", "app"), tuple(self._apps.items())),
                  (("vhost", "app", "stream"), tuple(self._streams.items())))
        for names, found in levels:
            for key, node in found:
                yield dict(zip(names, key, strict=True)), node.snapshot()

    # -- structure (under _lock) ------------------------------------------------------------------
    def _create(self, table: dict[NodeKey, Node], key: NodeKey, t: float | None) -> Node:
        created = now() if t is None else t
        with self._lock:
            old = table.get(key)
            node = Node(key, created, lock=self._lock)
            table[key] = node
            self._place(node)
            self._place_under(key)  # an old node's children (or orphans waiting for this parent) move here
            if old is not None:
                self._retire(old)
            self._fold()
        return node

    def _parent_of(self, key: NodeKey) -> Node:
        for depth in range(len(key) - 1, 0, -1):
            table = self._vhosts if depth == 1 else self._apps
            found = table.get(key[:depth])
            if found is not None:
                return found
        return self.server

    def _place(self, node: Node) -> None:
        """Attach ``node`` to the deepest existing ancestor, moving it there if it was elsewhere.

        The old parent keeps what the node had counted; the new one subtracts it, so a new parent
        counts only what arrives from now on."""
        parent = self._parent_of(node.key)
        if node.parent is parent:
            return
        if node.parent is not None:
            totals = node.totals()
            node.parent.children.pop(id(node), None)
            node.parent.absorb(totals)
            parent.floor_in += totals.bytes_in
            parent.floor_out += totals.bytes_out
        node.parent = parent
        parent.children[id(node)] = node
        for below in (node, *node.descendants()):
            below.due = float("-inf")  # the chain changed: the next packet looks at every window

    def _place_under(self, key: NodeKey) -> None:
        """Re-place the nodes whose keys start with ``key`` (only they can have it as their parent)."""
        if len(key) == 3:
            return
        for table in (self._apps, self._streams):
            for child_key, node in tuple(table.items()):
                if len(child_key) > len(key) and child_key[:len(key)] == key:
                    self._place(node)

    def _retire(self, node: Node) -> None:
        parent = node.parent
        if parent is None:
            return
        parent.children.pop(id(node), None)
        parent.retired = [*parent.retired, (now() + RETIRE_GRACE_S, node)]

    def _fold(self) -> None:
        t = now()
        for holder in (self.server, *self._vhosts.values(), *self._apps.values()):
            holder.fold_retired(t)

    def _forget(self, deleted: Node | None, gone: Callable[[NodeKey], bool]) -> None:
        """Drop the index entries under a deleted vhost or app. Nodes inside the deleted node retire
        with it; the others (placed higher up while it did not exist) retire on their own."""
        removed = [table.pop(key) for table in (self._apps, self._streams) for key in [k for k in table if gone(k)]]
        inside = {id(deleted), *(id(node) for node in removed)}
        for node in removed:
            if id(node.parent) not in inside:
                self._retire(node)

    def _deepest(self, vhost: str, app: str, stream: str | None) -> Node:
        if stream is not None:
            found = self._streams.get((vhost, app, stream))
            if found is not None:
                return found
        return self._apps.get((vhost, app)) or self._vhosts.get((vhost,)) or self.server

    def _chain(self, vhost: str, app: str, stream: str | None) -> list[Node]:
        chain = [self.server]
        for found in (self._vhosts.get((vhost,)), self._apps.get((vhost, app)),
                      self._streams.get((vhost, app, stream)) if stream is not None else None):
            if found is not None:
                chain.append(found)
        return chain

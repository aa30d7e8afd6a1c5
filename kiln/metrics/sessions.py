"""Live counters of running publisher sessions (push, record), found by task key.

A task actor registers its session's counters object while the task runs and removes it when it
stops; the session thread is the only writer of the counters, HTTP reads them for ``sentBytes`` and
``recordBytes``. The registry itself is a dict changed under a lock by the actors (never per packet).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

SessionKey = tuple[str, ...]  # e.g. ("push", vhost, app, id)


class SessionCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[SessionKey, object] = {}

    def put(self, key: SessionKey, counters: object) -> None:
        with self._lock:
            self._items[key] = counters

    def pop(self, key: SessionKey) -> None:
        with self._lock:
            self._items.pop(key, None)

    def get(self, key: SessionKey) -> object | None:
        with self._lock:
            return self._items.get(key)

    def walk(self) -> Iterator[tuple[SessionKey, object]]:
        """Every registered session's key and counters (for an exporter)."""
        with self._lock:
            items = list(self._items.items())
        yield from items

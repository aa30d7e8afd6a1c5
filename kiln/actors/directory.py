"""Where HTTP handlers and media code find the actor that owns an entity."""

from __future__ import annotations

import threading
from typing import Any

import pykka


class Directory:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refs: dict[tuple[str, ...], pykka.ActorRef[Any]] = {}

    def register(self, key: tuple[str, ...], ref: pykka.ActorRef[Any]) -> None:
        with self._lock:
            self._refs[key] = ref

    def unregister(self, key: tuple[str, ...], ref: pykka.ActorRef[Any] | None = None) -> None:
        with self._lock:
            if ref is None or self._refs.get(key) is ref:
                self._refs.pop(key, None)

    def get(self, key: tuple[str, ...]) -> pykka.ActorRef[Any] | None:
        with self._lock:
            return self._refs.get(key)

    def server(self) -> pykka.ActorRef[Any] | None:
        return self.get(("server",))

    def vhost(self, vhost: str) -> pykka.ActorRef[Any] | None:
        return self.get(("vhost", vhost))

    def app(self, vhost: str, app: str) -> pykka.ActorRef[Any] | None:
        """The app's configuration actor (PATCH, output profiles)."""
        return self.get(("app", vhost, app))

    def streams(self, vhost: str, app: str) -> pykka.ActorRef[Any] | None:
        """The app's stream supervisor (open, end, delete, pulls, events)."""
        return self.get(("streams", vhost, app))

    def tasks(self, vhost: str, app: str) -> pykka.ActorRef[Any] | None:
        """The app's task supervisor (push, record, HLS dumps)."""
        return self.get(("tasks", vhost, app))

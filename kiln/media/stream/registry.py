"""Live streams the read side looks at without asking an actor (session counters: kiln.metrics)."""

from __future__ import annotations

import threading
from typing import Any

from kiln.media.stream.live import LiveStream


class StreamRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[tuple[str, str, str], LiveStream] = {}

    def add(self, stream: LiveStream) -> None:
        with self._lock:
            self._streams[stream.key] = stream

    def remove(self, stream: LiveStream) -> None:
        with self._lock:
            if self._streams.get(stream.key) is stream:
                del self._streams[stream.key]

    def get(self, vhost: str, app: str, name: str) -> LiveStream | None:
        with self._lock:
            return self._streams.get((vhost, app, name))

    def in_app(self, vhost: str, app: str) -> list[LiveStream]:
        with self._lock:
            return [s for k, s in self._streams.items() if k[:2] == (vhost, app)]

    def all(self) -> list[LiveStream]:
        with self._lock:
            return list(self._streams.values())

    def pending(self, vhost: str, app: str, output_name: str) -> bool:
        """True while a stream that will have this output is here but not started (its first tracks not known)."""
        return any(awaits_output(stream, output_name) for stream in self.in_app(vhost, app))

    def find_output(self, vhost: str, app: str, output_name: str) -> tuple[LiveStream, Any] | None:
        """The live input stream that has an output stream of this name, and that output."""
        for stream in self.in_app(vhost, app):
            out = stream.outputs.get(output_name)
            if out is not None:
                return stream, out
        return None


def awaits_output(live: LiveStream, output_name: str) -> bool:
    """``live`` is not started yet and its name or an output profile's ``outputStreamName`` gives ``output_name``:
    a player asking for that name now is early, not wrong."""
    if live.started:
        return False
    if live.name == output_name:
        return True
    for profile in [] if live.bypassed else live.profiles:
        template = profile.get("outputStreamName") if isinstance(profile, dict) else None
        if isinstance(template, str) and template.replace("${OriginStreamName}", live.name) == output_name:
            return True
    return False

"""DynamicAppRemoval (``<Modules><DynamicAppRemoval><Enable>true``): when a dynamic app goes unused.

OME checks every 10 s and deletes a dynamic app that has had no stream for 60 s, counted from its
creation or from its last stream's end (``ocst::Application::IsUnusedFor``). Kiln keeps dynamic apps
across a restart (nothing created is lost); one that comes back with no stream is counted from the
restart, not from its creation, so a restart never removes an app at its first sweep. Pure: the
sweeper (``kiln.actors.dynamic_removal``) feeds it what it sees and the time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

IDLE_S = 60.0  # OME: IsUnusedFor(60)
SWEEP_S = 10.0  # OME: the orchestrator's timer, 10000 ms

AppKey = tuple[str, str]  # (vhost, app)


@dataclass(frozen=True)
class Seen:
    """A dynamic app as a sweep sees it: when it was made and whether it has a stream now."""

    vhost: str
    app: str
    created_time: float
    has_streams: bool


@dataclass
class IdleApps:
    """Since when each dynamic app has been without a stream; ``started``: when this process began to look."""

    started: float
    idle_s: float = IDLE_S
    _since: dict[AppKey, float] = field(default_factory=dict)
    _streaming: set[AppKey] = field(default_factory=set)  # had a stream at the last sweep

    def due(self, apps: Iterable[Seen], now: float) -> list[AppKey]:
        """The apps unused for ``idle_s`` or more at ``now``, given every dynamic app as a sweep sees it."""
        seen: set[AppKey] = set()
        out: list[AppKey] = []
        for app in apps:
            key = (app.vhost, app.app)
            seen.add(key)
            if app.has_streams:
                self._since.pop(key, None)
                self._streaming.add(key)
                continue
            if key not in self._since:
                # its last stream ended since the last sweep (counted from this sweep: at most one sweep late),
                # or it has had none since it was made, or since this process started
                self._since[key] = now if key in self._streaming else max(app.created_time, self.started)
                self._streaming.discard(key)
            if now - self._since[key] >= self.idle_s:
                out.append(key)
        for gone in [k for k in self._since if k not in seen]:
            del self._since[gone]  # removed, or deleted: forgotten
        self._streaming &= seen
        return out

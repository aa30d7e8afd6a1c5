"""Which handler of a projection takes which event type, found once per class."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Handler = Callable[[Any, Any], None]


def handlers_of(cls: type) -> dict[str, Handler]:
    """``_on_<TYPE>`` methods of ``cls`` (and its bases) by event type name. Replay applies millions of
    events; a dict lookup per event costs a fraction of building ``"_on_" + TYPE`` and a getattr."""
    found: dict[str, Handler] = {}
    for klass in reversed(cls.__mro__):
        for name, fn in vars(klass).items():
            if name.startswith("_on_") and callable(fn):
                found[name[len("_on_"):]] = fn
    return found


class LockedDispatch:
    """A read model whose ``_on_<TYPE>`` methods run under its lock: the committing thread applies events
    while HTTP handlers read. Subclasses set ``_handlers = handlers_of(cls)`` below the class body."""

    _handlers: dict[str, Handler] = {}
    _lock: threading.RLock

    def apply(self, ev: Any) -> None:
        handler = self._handlers.get(ev.TYPE)
        if handler is not None:
            with self._lock:
                handler(self, ev)

    @property
    def replay_lock(self) -> threading.RLock:
        """Replay (kiln.replay) holds this around each list of records it applies through ``replay_handler``."""
        return self._lock

    def replay_handler(self, type_name: str) -> Callable[[Any], None] | None:
        """What ``apply`` does for events of ``type_name``, found once, without taking the lock (the caller
        holds ``replay_lock``); None: ignored. Replay applies millions of events: a bound method per type, not a
        handler lookup and a lock round trip per event."""
        handler = self._handlers.get(type_name)
        if handler is None:
            return None
        bound: Callable[[Any], None] = handler.__get__(self)
        return bound

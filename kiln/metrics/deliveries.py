"""Live state of each webhook subscription's delivery: what ``GET /v1/subscriptions/ID`` and ``/metrics``
show beyond the journaled cursor (retrying now, last error, next attempt, counts since start).

One writer per entry (that subscription's delivery task); readers copy it. The registry is a dict
changed under a lock when deliveries start and stop, never per record.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class DeliveryState:
    state: str = "delivering"          # delivering | retrying | stopped
    acked_seq: int = 0                 # every record up to here acknowledged or filtered out (in memory)
    delivered: int = 0                 # records acknowledged since the subscription was created
    posts: int = 0                     # successful POSTs since this start
    failures: int = 0                  # failed POSTs since this start
    attempt: int = 0                   # consecutive failed attempts of the current POST
    last_error: str = ""
    last_error_time: float = 0.0
    last_delivered_time: float = 0.0
    next_retry_time: float = 0.0


class DeliveryStates:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, DeliveryState] = {}

    def put(self, ident: str, state: DeliveryState) -> None:
        with self._lock:
            self._items[ident] = state

    def update(self, ident: str, **changes: object) -> DeliveryState:
        with self._lock:
            state = replace(self._items.get(ident, DeliveryState()), **changes)  # type: ignore[arg-type]
            self._items[ident] = state
            return state

    def pop(self, ident: str) -> None:
        with self._lock:
            self._items.pop(ident, None)

    def get(self, ident: str) -> DeliveryState | None:
        with self._lock:
            return self._items.get(ident)

    def all(self) -> dict[str, DeliveryState]:
        with self._lock:
            return dict(self._items)

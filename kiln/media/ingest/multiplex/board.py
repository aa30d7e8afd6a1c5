"""What each multiplex channel is doing now, for GET multiplexChannels/{stream}'s ``state`` and ``pullingMessage``.

Written by the channel's worker thread when its state changes, read by HTTP handlers: a read never waits on the
worker or an actor.
"""

from __future__ import annotations

import threading
from enum import Enum


class MuxState(Enum):
    """OME's ``MultiplexStream::MuxState`` names (its ``Stopped`` is never shown: a stopped channel is gone)."""

    NONE = "None"
    PULLING = "Pulling"
    PLAYING = "Playing"


class MuxBoard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str, str], tuple[MuxState, str]] = {}

    def set(self, key: tuple[str, str, str], state: MuxState, message: str = "") -> None:
        with self._lock:
            self._states[key] = (state, message)

    def clear(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._states.pop(key, None)

    def get(self, key: tuple[str, str, str]) -> tuple[MuxState, str]:
        """(state, pulling message); ``None`` for a channel no worker runs (e.g. its app has no provider)."""
        with self._lock:
            return self._states.get(key, (MuxState.NONE, ""))

"""What a pull worker needs of one connection to a source, whatever its protocol (RTSP, OVT).

The worker (``rtsp/worker.py``: retries, failover across URLs, unused-stream rule, hooks to the
control plane) is the same for every protocol; a source only connects, says which kinds of track
to wait for, and yields tracks and packets until it is lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from kiln.media.model import MediaKind, Packet, Track
from kiln.media.stream.live import LiveStream


class SourceUnavailable(Exception):
    """A URL gave no stream; ``answer`` says what it answered, without the URL (it may hold secrets)."""

    def __init__(self, answer: str) -> None:
        super().__init__(answer)
        self.answer = answer


class SourceLost(Exception):
    """A connected source stopped; the text is the stream's end reason."""


class PullSource(Protocol):
    provider: str         # the app provider that must be enabled (rtspPull, ovt)
    source_type: str      # OME's sourceType (RtspPull, Ovt)
    kinds: set[MediaKind]  # the tracks the stream waits for before it starts
    described: str        # for the log: what the source announced

    def prepare(self, stream: LiveStream, relay: bool | None = None) -> None:
        """Set the stream up before the first track (an OVT relay copies the origin's outputs). ``relay``: an
        Origin's ``<Relay>`` when it gives one (None: the scheme's default, OME's: true for OVT only)."""

    def packets(self) -> Iterator[tuple[Track | None, list[Packet]]]:
        """(new or changed track, packets) until the source ends; raises SourceLost when it breaks."""

    def interrupt(self) -> None:
        """Unblock a waiting read (another thread: the pull is being closed)."""

    def close(self) -> None: ...

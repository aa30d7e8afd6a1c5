"""Events of playback sessions (issue 12 audit): who watched what, from when, for how long.

WebRTC viewers are kept one by one, since each is a session with a start and an end (unlike LL-HLS
requests). The URL is not kept (it may carry a signed policy); the client's address is.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln.events.base import Event, event


def playback_entity(vhost: str, app: str, stream: str) -> str:
    return f"playback:{vhost}/{app}/{stream}"


@event
@dataclass(frozen=True)
class PlaybackSessionOpened(Event):
    vhost: str
    app: str
    stream: str        # the output stream played
    protocol: str      # WEBRTC
    session: str       # the session id (OME's offer id)
    client: str        # address:port of the viewer
    playlist: str      # "" for the default playlist
    rendition: str
    tracks: str        # e.g. "0:H264,2:OPUS"

    @property
    def entity(self) -> str:
        return playback_entity(self.vhost, self.app, self.stream)


@event
@dataclass(frozen=True)
class PlaybackSessionClosed(Event):
    vhost: str
    app: str
    stream: str
    protocol: str
    session: str
    client: str
    reason: str
    bytes_out: int
    seconds: float

    @property
    def entity(self) -> str:
        return playback_entity(self.vhost, self.app, self.stream)

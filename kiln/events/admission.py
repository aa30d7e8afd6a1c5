"""Events of admission (issue 14 audit): who was refused or admitted, for which URL, by which rule.

URLs are journaled with the signature and policy values redacted.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln.events.base import Event, event


def admission_entity(vhost: str, app: str, stream: str) -> str:
    return f"admission:{vhost}/{app}/{stream}"


@event
@dataclass(frozen=True)
class AdmissionDenied(Event):
    vhost: str
    app: str
    stream: str
    protocol: str      # OME's type name: RTMP, SRT, LLHLS, Thumbnail
    direction: str     # incoming (publish) | outgoing (playback)
    client: str        # address:port of the peer
    url: str           # redacted
    rule: str          # SignedPolicy, AdmissionWebhooks, ...
    reason: str

    @property
    def entity(self) -> str:
        return admission_entity(self.vhost, self.app, self.stream)


@event
@dataclass(frozen=True)
class AdmissionAllowed(Event):
    """An allow a check chose to record (a webhook's decision, with its redirect and lease)."""

    vhost: str
    app: str
    stream: str
    protocol: str
    direction: str
    client: str
    url: str
    rule: str
    new_url: str = ""
    lifetime_ms: int = 0
    stream_expire_ms: int = 0
    reason: str = ""

    @property
    def entity(self) -> str:
        return admission_entity(self.vhost, self.app, self.stream)

"""A frozen picture of a live stream at one instant: what the API shows about it.

Media takes it (``LiveStream.snapshot()``) while packets keep flowing; ``kiln/http/views`` renders
OME's JSON from it, so the HTTP layer never holds a live media object and media never formats
API answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MeterReading:
    """A track's measured rates at the instant of the snapshot (all zero before any packet)."""

    bitrate_avg: int = 0
    bitrate_latest: int = 0
    framerate_avg: float = 0.0
    framerate_latest: float = 0.0
    has_bframes: bool = False
    key_frame_interval_avg: float = 0.0
    key_frame_interval_latest: float = 0.0
    frames_since_key: int = 0


@dataclass(frozen=True)
class TrackSnapshot:
    """One track of the input or of an output stream.

    ``configured`` marks an encode that never produced: its values are the configured ones and
    ``unavailable`` says why. A measured track that ran and then stopped keeps its measurements
    and says why in ``unavailable`` too.
    """

    id: int
    kind: str                     # "Video", "Audio" or "Data"
    name: str = ""
    codec: str = ""
    bypass: bool = False
    width: int = 0
    height: int = 0
    bitrate_conf: int = 0
    framerate_conf: float = 0.0
    key_frame_interval_conf: float = 0.0
    sample_rate: int = 0
    channels: int = 0
    meter: MeterReading = MeterReading()
    unavailable: str = ""
    configured: bool = False


@dataclass(frozen=True)
class OutputSnapshot:
    name: str
    tracks: tuple[TrackSnapshot, ...]
    playlists: tuple[dict[str, Any], ...]  # the output profile's playlist sections, as configured
    warning: str = ""  # what a publisher's viewers miss and why (WebRTC and B-frames), "" when nothing


@dataclass(frozen=True)
class StreamSnapshot:
    name: str
    created_time: float
    source_type: str
    source_url: str
    input_tracks: tuple[TrackSnapshot, ...]  # the data track is last once the stream started
    outputs: tuple[OutputSnapshot, ...]

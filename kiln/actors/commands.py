"""Commands the HTTP layer (and media code) send to actors. Bodies arrive as parsed JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kiln.domain.settings import AppSettings
from kiln.events.multiplex import Multiplex
from kiln.events.schedules import Schedule


@dataclass(frozen=True)
class CreateVhosts:
    items: Any


@dataclass(frozen=True)
class DeleteVhost:
    name: str


@dataclass(frozen=True)
class ReloadCertificates:
    vhost: str | None = None  # None = every vhost


@dataclass(frozen=True)
class CreateApps:
    items: Any


@dataclass(frozen=True)
class DeleteApp:
    name: str


@dataclass(frozen=True)
class CreateDynamicApp:
    """Pull on demand (media): a copy of the vhost's ``*`` template named ``name``, for ``stream``."""

    name: str
    stream: str


@dataclass(frozen=True)
class RemoveDynamicApp:
    """DynamicAppRemoval: the dynamic app ``name`` has had no stream for its idle time."""

    name: str


@dataclass(frozen=True)
class Teardown:
    """Stop children and release media; sent by the parent before it stops this actor."""

    reason: str


@dataclass(frozen=True)
class PatchApp:
    body: Any


@dataclass(frozen=True)
class AddOutputProfiles:
    items: Any


@dataclass(frozen=True)
class ReplaceOutputProfile:
    name: str
    body: Any


@dataclass(frozen=True)
class DeleteOutputProfile:
    name: str


@dataclass(frozen=True)
class StartPush:
    body: Any


@dataclass(frozen=True)
class StopPush:
    body: Any


@dataclass(frozen=True)
class StartRecord:
    body: Any


@dataclass(frozen=True)
class StopRecord:
    body: Any


@dataclass(frozen=True)
class OpenStream:
    """An ingest (RTMP/SRT/MPEG-TS publish, or a pull that connected) asks to create a stream."""

    name: str
    provider: str            # the app provider that must be enabled: rtmp, srt, mpegts, rtspPull
    source_type: str         # OME's sourceType: Rtmp, SRT, MPEGTS, RtspPull
    source_url: str
    close_ingest: Any = None  # callable(reason): stop the source (DELETE stream)


@dataclass(frozen=True)
class StreamDescribed:
    pass


@dataclass(frozen=True)
class EndStream:
    reason: str


@dataclass(frozen=True)
class ForgetStream:
    name: str
    instance: str


@dataclass(frozen=True)
class StreamReady:
    name: str
    instance: str


@dataclass(frozen=True)
class DeleteStream:
    name: str


@dataclass(frozen=True)
class CreatePull:
    body: Any
    request_url: str
    cause: str = "API POST streams"  # journaled with the pull: why it was pulled
    resolve: Any = None  # callable() -> fresh URLs before a retry (a pull found in the OriginMapStore)
    origins: bool = False  # asked by pull on demand: the properties may carry an Origin's Failback


@dataclass(frozen=True)
class PullConnected:
    """A pull worker's first successful connection: the definition becomes durable."""

    name: str
    worker: Any
    url: str = ""  # the URL this connection came from (a reconnection to another one is journaled)


@dataclass(frozen=True)
class PullFinished:
    """A pull worker stopped for good (gave up, or was deleted)."""

    name: str
    reason: str
    worker: Any


@dataclass(frozen=True)
class CreateScheduledChannel:
    body: Any


@dataclass(frozen=True)
class PatchScheduledChannel:
    name: str
    body: Any


@dataclass(frozen=True)
class DeleteScheduledChannel:
    name: str


@dataclass(frozen=True)
class ScheduleFileChanged:
    """A ``.sch`` file appeared or changed in the app's ScheduleFilesDir (read and parsed by the watcher)."""

    schedule: Schedule
    watcher: Any  # the FilesDirWatcher that saw it: one replaced since is not listened to
    looked: float  # time.monotonic() when that look began


@dataclass(frozen=True)
class ScheduleFileGone:
    """A channel's ``.sch`` file stayed deleted for three looks in a row."""

    name: str
    watcher: Any
    looked: float


@dataclass(frozen=True)
class MuxFileChanged:
    """A ``.mux`` file appeared or changed in the app's MuxFilesDir (read and checked by the watcher)."""

    mux: Multiplex
    watcher: Any
    looked: float


@dataclass(frozen=True)
class MuxFileGone:
    """The ``.mux`` file of a channel stayed deleted for three looks in a row."""

    name: str
    watcher: Any
    looked: float


@dataclass(frozen=True)
class ScheduleFinished:
    """A scheduled channel's worker stopped (deleted, replaced, refused, or server stopping)."""

    name: str
    reason: str
    worker: Any


@dataclass(frozen=True)
class CreateMultiplexChannel:
    body: Any


@dataclass(frozen=True)
class DeleteMultiplexChannel:
    name: str


@dataclass(frozen=True)
class MultiplexFinished:
    """A multiplex channel's worker stopped (deleted, refused, or server stopping)."""

    name: str
    reason: str
    worker: Any


@dataclass(frozen=True)
class OutputAvailable:
    """Sent to a task actor: the output stream it waits for exists and has started."""

    stream: Any   # kiln.media.stream.LiveStream (the input)
    output: Any   # kiln.media.stream.OutputStream


@dataclass(frozen=True)
class OutputGone:
    """Sent to a task actor: its output stream ended."""

    output_name: str
    reason: str


@dataclass(frozen=True)
class RecordStreamEvent:
    """Journal accepted sendEvent(s) payloads (they were injected on the event loop)."""

    name: str
    events: list[Any]


@dataclass(frozen=True)
class RegisterDump:
    """startHlsDump after the media checks passed: duplicate checks and the durable task."""

    stream: str
    output_stream: str
    id: str
    output_path: str
    playlists: list[str]
    info_file: str
    user_data: str


@dataclass(frozen=True)
class UnregisterDumps:
    """stopHlsDump: the ids to stop (all of that output stream when ``id`` is None)."""

    output_stream: str
    id: str | None


@dataclass(frozen=True)
class SessionState:
    """A media session (push/record) reports a state; ``session`` tells stale reports apart."""

    session: int
    state: str
    reason: str = ""


@dataclass(frozen=True)
class Retry:
    session: int


@dataclass(frozen=True)
class AppReconfigured:
    """From the app's configuration actor to its supervisors: adopt this configuration."""

    config: dict[str, Any]
    settings: AppSettings


@dataclass(frozen=True)
class StreamLive:
    """From the stream supervisor to the task supervisor: this stream started, its outputs exist."""

    stream: Any   # kiln.media.stream.live.LiveStream


@dataclass(frozen=True)
class StreamGone:
    """From the stream supervisor to the task supervisor: this stream ended and was forgotten."""

    stream: Any   # kiln.media.stream.live.LiveStream
    reason: str


# -- arch-streams: stream actions journaled before they take effect --


@dataclass(frozen=True)
class SendStreamEvents:
    """sendEvent (one body) or sendEvents (``batch``: one answer per body) to a live stream."""

    name: str
    bodies: list[Any]
    batch: bool = False


@dataclass(frozen=True)
class ConcludeHlsLive:
    """concludeHlsLive: to the stream supervisor, then to the stream instance that journals it."""

    name: str

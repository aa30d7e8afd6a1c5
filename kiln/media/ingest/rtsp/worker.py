"""One pulled stream: connect to the first URL that answers, demux, feed a LiveStream, retry.

The worker owns a thread because PyAV's demuxer blocks (it releases the GIL while it waits).
It never touches actors directly: the app actor hands it three callables (open a stream, the
first connection succeeded, the pull is over), so the packet path stays outside every mailbox.
``open_stream`` refuses a stream by raising :class:`PublishRejected` (the ingest contract's
refusal); the pull then ends with "stream refused by the application (<why>)". A pull that runs
out of tries ends with what each URL answered in its last round (refused, no answer, 401 …), so
the journal and the log say why, not only that it failed; URLs are named by their position, as
they may carry credentials.

Failback (an Origin's ``<Failback>``, OME's ``PullApplication::WhiteElephantStreamCollector``): while a
later URL streams, the first is probed at most once per ``StreamFailbackTimeout`` (connect and describe, as
OME's ``_ping_for_failback_`` stream); once it answers, the stream on the later URL ends and the pull starts
over from the first. The probe runs on a thread of its own, so a first URL that does not answer never holds
up the packets of the one that streams.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from urllib.parse import urlsplit

import av
import av.container

from kiln.events.redact import redact_url
from kiln.media.ingest.contract import PublishRejected
from kiln.media.ingest.demux.convert import AvConverter
from kiln.media.ingest.ovt.client import open_ovt
from kiln.media.ingest.pull_source import PullSource, SourceLost, SourceUnavailable
from kiln.media.ingest.rtsp.properties import PullProperties
from kiln.media.ingest.rtsp.rebase import PerTrackRebase
from kiln.media.model import MediaKind, Packet, Track
from kiln.media.net import lookup
from kiln.media.net.lookup import LookupGuard
from kiln.media.stream.live import LiveStream
from kiln.media.worker import WorkerThread

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 5.0
BACKOFF_S = (0.5, 1.0, 2.0, 4.0)
# the first connection (the API caller is waiting for 201/502) gets a short second chance: RTSP
# servers answer 5xx while a shared media is being torn down and rebuilt
FIRST_CONNECT_RETRIES = 1
FAILBACK_REASON = "failback to the first url"
PROBE_JOIN_S = 10.0  # a probe ends after its one bounded connect (OVT: 3 s connect + an answer wait)


@dataclass
class PullHooks:
    open_stream: Callable[[str, Callable[[str], None]], LiveStream]  # (source url, close) -> stream; raises
                                                                    # PublishRejected to refuse
    connected: Callable[[str], None]                                # first success: make it durable
    finished: Callable[[str], None]                                 # the pull is over (reason)
    viewers: Callable[[], int] = lambda: 0                          # players + pushes + recordings now
    reconnected: Callable[[str], None] = lambda _url: None          # a later connection (which URL)
    resolve: Callable[[], list[str]] | None = None                  # fresh URLs before a retry (OriginMapStore)


def input_options(url: str) -> dict[str, str]:
    if url.lower().startswith(("rtsp://", "rtspc://")):
        return {"rtsp_transport": "tcp", "rtsp_flags": "prefer_tcp"}
    return {}


def av_url(url: str) -> str:
    """``rtspc://`` is OME's spelling of RTSP over TCP; FFmpeg only knows ``rtsp://``."""
    return "rtsp://" + url[len("rtspc://"):] if url.lower().startswith("rtspc://") else url


def connect_failure(exc: av.FFmpegError | OSError, elapsed: float) -> str:
    """What a source answered, in words, without its URL (FFmpeg's text ends with the URL, which may
    hold credentials). FFmpeg reports its own open timeout as invalid data: say it timed out."""
    if elapsed >= OPEN_TIMEOUT_S - 0.05:
        return f"no answer within {OPEN_TIMEOUT_S:g}s"
    return exc.strerror or type(exc).__name__


class PullWorker:
    def __init__(self, where: str, name: str, urls: list[str], props: PullProperties, hooks: PullHooks,
                 waiter: Future[bool] | None = None,
                 connect: Callable[[str, float], PullSource] | None = None) -> None:
        self.where = where
        self.connect = connect or open_source
        self._source: PullSource | None = None
        self._answers: list[str] = []  # why each URL of the last round gave no stream
        self.name = name
        self.urls = urls
        self.props = props
        self.hooks = hooks
        self.waiter = waiter
        self._stop_reason = ""
        self._ever_connected = False
        self._worker = WorkerThread(f"kiln-pull-{name}", self._run)
        # the source's name is looked up under a guard: a pull closed meanwhile (its app deleted, shutdown) is not
        # joined while getaddrinfo runs (it cannot be interrupted) and connects nowhere once the answer comes
        self._lookups = LookupGuard(lambda: self._worker.stopping)
        self._last_probe = -math.inf  # OME probes at once the first time, then once per StreamFailbackTimeout
        self._failback_due = False    # set by the probe thread: the first URL answers again
        self._probes: list[WorkerThread] = []

    @property
    def read_timeout(self) -> float:
        """``noInputFailoverTimeoutMs``: how long a silent source is waited for before the next URL."""
        ms = self.props.no_input_failover_timeout_ms
        return ms / 1000 if ms > 0 else READ_TIMEOUT_S

    def start(self) -> PullWorker:
        self._worker.start()
        return self

    def close(self, reason: str) -> None:
        """Stop pulling (DELETE stream, app removed, shutdown); the thread ends at its next packet."""
        if not self._worker.stopping:
            self._stop_reason = reason
            self._worker.stop()
            source = self._source
            if source is not None:
                source.interrupt()

    def join(self, timeout: float) -> None:
        """Wait (bounded) for the thread, unless it is looking a name up: it then ends on its own when the lookup
        returns, having connected nowhere."""
        if self._lookups.stop_skips_join():
            log.info("pull closed during its name lookup where=%s stream=%s; its thread ends when the lookup "
                     "returns", self.where, self.name)
            return
        self._worker.join(timeout)

    # -- thread --------------------------------------------------------------------------------
    def _answer(self, connected: bool) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(connected)

    def _run(self) -> None:
        reason = "internal error"  # kept if the loop crashes (WorkerThread logs the traceback)
        self._lookups.install()
        try:
            reason = self._pull()
        finally:
            for probe in self._probes:  # no thread of this pull outlives it
                probe.stop()
                probe.join(PROBE_JOIN_S)
            self._answer(False)
            stopped = self._worker.stopping  # closed on purpose; otherwise the pull failed
            if stopped:
                reason = self._stop_reason or reason
            log.log(logging.INFO if stopped else logging.WARNING, "pull finished where=%s stream=%s reason=%s",
                    self.where, self.name, reason)
            self.hooks.finished(reason)

    def _pull(self) -> str:
        """Rounds over the URLs with backoff until stopped, refused or out of retries; the reason it ended."""
        failures = 0
        while not self._worker.stopping:
            outcome = self._one_round()
            if outcome == "refused":
                return f"stream refused by the application ({self._answers[-1]})"
            if self._worker.stopping:
                break
            if outcome == "failback":
                failures = 0
                continue  # straight back to the first URL: it answered a moment ago
            failures = 0 if outcome == "streamed" else failures + 1
            if not self._ever_connected and failures > min(self.props.retries, FIRST_CONNECT_RETRIES):
                return f"could not connect to any url ({self._last_round()})"
            if not self.props.persistent and failures > self.props.retries:
                return f"source lost, retries exhausted ({self._last_round()})"
            delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
            log.info("pull retry where=%s stream=%s in=%.1fs", self.where, self.name, delay)
            self._worker.wait(delay)
            self._re_resolve()
        return "pull ended"

    def _re_resolve(self) -> None:
        """A pull found through the OriginMapStore asks it again before retrying: the stream may have
        moved to another origin. No answer (Redis down, key gone) keeps the URLs it had."""
        if self.hooks.resolve is None or self._worker.stopping:
            return
        urls = self.hooks.resolve()
        if urls and urls != self.urls:
            log.info("pull re-resolved where=%s stream=%s urls=%s", self.where, self.name,
                     ",".join(redact_url(u) for u in urls))
            self.urls = urls

    def _last_round(self) -> str:
        if len(self._answers) == 1:
            return self._answers[0]
        return "; ".join(f"url {n}: {answer}" for n, answer in enumerate(self._answers, 1))

    def _one_round(self) -> str:
        """Try each URL once. 'streamed' / 'failed' / 'refused' / 'failback'."""
        self._answers = []
        for url in self.urls:
            if self._worker.stopping:
                return "failed"
            try:
                source = self.connect(url, self.read_timeout)
            except SourceUnavailable as exc:
                self._answers.append(exc.answer)
                if self._lookups.abandoned:  # closed during the lookup: nothing failed, nothing was connected
                    log.info("pull ended after its name lookup where=%s stream=%s connected=false", self.where,
                             self.name)
                    return "failed"
                log.warning("pull connect failed where=%s stream=%s url=%s error=%s", self.where, self.name,
                            redact_url(url), exc.answer)
                continue
            if self._worker.stopping:
                # closed while the source was being opened (its app deleted, shutdown): no stream is opened for
                # it; the owner that closed it may be gone already, or be joining this thread
                source.close()
                log.info("pull closed while connecting where=%s stream=%s; the source it reached is let go",
                         self.where, self.name)
                return "failed"
            self._source = source
            try:
                return self._stream(source, url)
            finally:
                self._source = None
                source.close()
        return "failed"

    def _stream(self, source: PullSource, url: str) -> str:
        try:
            stream = self.hooks.open_stream(url, self.close)
        except PublishRejected as exc:
            log.warning("pull refused where=%s stream=%s error=%s", self.where, self.name, exc)
            self._answers.append(str(exc))
            return "refused"
        stream.expected = set(source.kinds)
        source.prepare(stream, self.props.relay)
        if not self._ever_connected:
            self._ever_connected = True
            self.hooks.connected(url)
            self._answer(True)
        else:
            self.hooks.reconnected(url)
        log.info("pull connected where=%s stream=%s url=%s tracks=%s", self.where, self.name, redact_url(url),
                 source.described)
        reason = "source ended"
        unused_limit = self.props.unused_stream_deletion_timeout_ms / 1000
        check_unused = not self.props.persistent and unused_limit > 0
        last_used = last_check = time.monotonic()
        rebase = PerTrackRebase() if self.props.ignore_rtcp_sr_timestamp else None
        probe = self._start_probe(url, source)
        try:
            for track, packets in source.packets():
                if self._worker.stopping:
                    reason = self._stop_reason
                    break
                if self._failback_due:
                    break
                if check_unused and (now := time.monotonic()) - last_check >= 0.5:
                    last_check = now
                    if self.hooks.viewers() > 0:
                        last_used = now
                    elif now - last_used >= unused_limit:
                        self.close("unused stream")  # unusedStreamDeletionTimeoutMs: nobody watched
                        reason = "unused stream"
                        break
                if track is not None:
                    stream.on_track(track)
                for p in packets:
                    stream.ingest(rebase.apply(p) if rebase is not None else p)
        except SourceLost as exc:
            reason = self._stop_reason if self._worker.stopping and self._stop_reason else str(exc)
        finally:
            if probe is not None:
                probe.stop()
        if self._failback_due and not self._worker.stopping:
            self._failback_due = False
            stream.end(FAILBACK_REASON)
            return "failback"
        stream.end(reason)
        return "streamed"

    # -- failback --------------------------------------------------------------------------------
    def _start_probe(self, url: str, source: PullSource) -> WorkerThread | None:
        """While a later URL streams, a thread that probes the first (``Failback``); None otherwise."""
        self._failback_due = False
        if not self.props.failback or not self.urls or url == self.urls[0]:
            return None
        self._probes = [p for p in self._probes if p.alive]
        primary = self.urls[0]
        probe = WorkerThread(f"kiln-pull-failback-{self.name}", lambda: self._probe_loop(probe, primary, source))
        self._probes.append(probe)
        probe.start()
        return probe

    def _probe_loop(self, probe: WorkerThread, primary: str, source: PullSource) -> None:
        interval = self.props.failback_interval_s
        while not probe.stopping:
            wait = self._last_probe + interval - time.monotonic()
            if wait > 0 and probe.wait(wait):
                return
            self._last_probe = time.monotonic()
            log.debug("pull failback probe where=%s stream=%s url=%s", self.where, self.name, redact_url(primary))
            try:
                found = self.connect(primary, self.read_timeout)
            except SourceUnavailable as exc:
                log.debug("pull failback probe: first url not available where=%s stream=%s error=%s", self.where,
                          self.name, exc.answer)
                continue
            found.close()
            if probe.stopping:
                return
            log.info("pull failback where=%s stream=%s url=%s reason=the first url answers again", self.where,
                     self.name, redact_url(primary))
            self._failback_due = True
            source.interrupt()  # a source waiting for its next packet ends now, not at its read timeout
            return


class RtspSource:
    """An RTSP (or any FFmpeg-readable) source: PyAV demuxes, ``AvConverter`` turns packets into Kiln's."""

    provider = "rtspPull"
    source_type = "RtspPull"

    def __init__(self, container: av.container.InputContainer) -> None:
        self.container = container
        self.converter = AvConverter()
        self.usable = [s for s in container.streams if s.type in ("video", "audio") and self.converter.add_stream(s)]
        self.kinds = {MediaKind.VIDEO if s.type == "video" else MediaKind.AUDIO for s in self.usable}
        self.described = str(len(self.usable))

    def prepare(self, stream: LiveStream, relay: bool | None = None) -> None:
        """An RTSP pull is a source of the app (its output profiles apply) unless its Origin says
        ``<Relay>true</Relay>``: then, as OME's ``StreamRepresentationType::Relay``, the one output stream is the
        input itself under the pull's name, no profile transcodes it, and it has no playlist of its own (players
        get the publishers' default ones). Its tracks are known only from the first packets, so the stream
        starts as a source would, once they are described."""
        if relay is True:
            stream.relay([], [])

    def packets(self) -> Iterator[tuple[Track | None, list[Packet]]]:
        try:
            for packet in self.container.demux(*self.usable):
                yield self.converter.convert(packet)
        except (av.FFmpegError, OSError, EOFError) as exc:
            raise SourceLost(f"source error: {exc}") from None

    def interrupt(self) -> None:
        pass  # the demuxer's read timeout (noInputFailoverTimeoutMs) bounds the wait

    def close(self) -> None:
        self.container.close()


def look_up_first(url: str) -> None:
    """On a pull worker's thread, the URL's host name is looked up through its guard before FFmpeg opens the URL:
    FFmpeg's own getaddrinfo can be neither interrupted nor abandoned, so a pull closed while the name server is
    slow would be joined for the whole lookup and then connect. The answer is not kept (FFmpeg looks the name up
    again, from a resolver that has just answered); a name that does not resolve is left for FFmpeg to report."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host or not lookup.guarded():
        return
    try:
        ipaddress.ip_address(host)
        return  # a literal address: nothing to look up
    except ValueError:
        pass
    try:
        port = parts.port or 554
        lookup.getaddrinfo(host, port, socket.SOCK_STREAM)
    except lookup.LookupAbandoned as exc:
        raise SourceUnavailable(str(exc)) from None
    except (OSError, UnicodeError, ValueError):
        pass


def open_rtsp(url: str, read_timeout: float) -> RtspSource:
    look_up_first(url)
    started = time.monotonic()
    try:
        container = av.open(av_url(url), options=input_options(url), timeout=(OPEN_TIMEOUT_S, read_timeout))
    except (av.FFmpegError, OSError) as exc:
        raise SourceUnavailable(connect_failure(exc, time.monotonic() - started)) from None
    source = RtspSource(container)
    if not source.usable:
        container.close()
        raise SourceUnavailable("no audio or video track Kiln can carry")
    return source


def open_source(url: str, read_timeout: float) -> PullSource:
    """The source for a URL's scheme: ``ovt://`` pulls from an OVT origin, anything else through FFmpeg."""
    if url.lower().startswith("ovt://"):
        return open_ovt(url, read_timeout)
    return open_rtsp(url, read_timeout)

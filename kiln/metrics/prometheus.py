"""``GET /metrics``: Kiln's runtime figures in Prometheus' text format, read at scrape time.

A custom collector (prometheus-client) composes the figures from the counters Kiln already keeps
(``MetricsTree`` for bytes and connections, the journal's counters, the loop-lag sampler, queue
counters, task and subscription states) each time it is scraped, so the packet path pays nothing for
it. Per-stream series carry ``vhost``/``app``/``stream`` labels and exist only while the stream is
live: a stream that ends is gone from the next scrape, so label sets stay bounded by what runs.
Sources are small Protocols and callables, so this module imports nothing but metrics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from kiln.metrics.commands import CommandTimings
from kiln.metrics.deliveries import DeliveryState
from kiln.metrics.journal import JournalCounters
from kiln.metrics.loop_lag import LoopLag
from kiln.metrics.node import NodeSnapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STREAM_LABELS = ("vhost", "app", "stream")


class TreeWalk(Protocol):
    def walk(self) -> Iterator[tuple[dict[str, str], NodeSnapshot]]: ...


@dataclass(frozen=True)
class LiveStreamFigures:
    """One live stream's labels and its input tracks counted by kind (video, audio, data)."""

    vhost: str
    app: str
    stream: str
    tracks: dict[str, int]


@dataclass(frozen=True)
class RtcIngestFigures:
    """One WebRTC publisher's repair figures: RTP packets received, NACKs and PLIs Kiln sent it, and the
    retransmissions (RTX) of its simulcast layers matched by rid."""

    vhost: str
    app: str
    stream: str
    packets: int
    nacks: int
    plis: int
    rtx: int = 0


@dataclass
class Sources:
    """Where each family comes from; a missing source leaves its families out."""

    tree: TreeWalk
    streams: Callable[[], Iterable[LiveStreamFigures]] | None = None
    tasks: Callable[[], Iterable[tuple[str, str]]] | None = None     # (push | record | dump, state)
    queues: Callable[[], list[dict[str, Any]]] | None = None        # OME's internal queue JSON
    journal: JournalCounters | None = None
    commands: CommandTimings | None = None  # the API's commands' time by phase (kiln.metrics.commands)
    loop_lag: LoopLag | None = None
    feed: Callable[[], tuple[int, int, int]] | None = None          # (last seq, open tails, cut-offs)
    deliveries: Callable[[], dict[str, DeliveryState]] | None = None
    rtc_ingest: Callable[[], Iterable[RtcIngestFigures]] | None = None
    extra: list[Collector] = field(default_factory=list)


class KilnCollector(Collector):
    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Any]:
        yield from self._tree()
        yield from self._streams()
        yield from self._tasks()
        yield from self._queues()
        yield from self._journal()
        yield from self._commands()
        yield from self._loop()
        yield from self._feed()
        yield from self._rtc_ingest()

    def _tree(self) -> Iterator[Any]:
        bytes_in = CounterMetricFamily("kiln_bytes_in", "Bytes received by providers (all streams, since start)")
        bytes_out = CounterMetricFamily("kiln_bytes_out", "Bytes sent by publishers (all streams, since start)")
        connections = GaugeMetricFamily("kiln_connections", "Open sessions by publisher type", labels=["type"])
        s_in = CounterMetricFamily("kiln_stream_bytes_in", "Bytes received for a live stream",
                                   labels=list(STREAM_LABELS))
        s_out = CounterMetricFamily("kiln_stream_bytes_out", "Bytes sent for a live stream",
                                    labels=list(STREAM_LABELS))
        s_conn = GaugeMetricFamily("kiln_stream_connections", "Open sessions of a live stream by publisher type",
                                   labels=[*STREAM_LABELS, "type"])
        s_rate = GaugeMetricFamily("kiln_stream_bitrate_in", "Input bit rate over the last second (bits/s)",
                                   labels=list(STREAM_LABELS))
        for labels, snap in self.sources.tree.walk():
            if not labels:
                bytes_in.add_metric([], snap.total_bytes_in)
                bytes_out.add_metric([], snap.total_bytes_out)
                for kind, count in sorted(snap.connections.items()):
                    connections.add_metric([kind], count)
            elif "stream" in labels:
                key = [labels[name] for name in STREAM_LABELS]
                s_in.add_metric(key, snap.total_bytes_in)
                s_out.add_metric(key, snap.total_bytes_out)
                s_rate.add_metric(key, snap.avg_throughput_in)
                for kind, count in sorted(snap.connections.items()):
                    s_conn.add_metric([*key, kind], count)
        yield from (bytes_in, bytes_out, connections, s_in, s_out, s_conn, s_rate)

    def _streams(self) -> Iterator[Any]:
        if self.sources.streams is None:
            return
        streams = GaugeMetricFamily("kiln_streams", "Live input streams")
        tracks = GaugeMetricFamily("kiln_stream_tracks", "Input tracks of a live stream by kind",
                                   labels=[*STREAM_LABELS, "kind"])
        count = 0
        for figures in self.sources.streams():
            count += 1
            for kind, n in sorted(figures.tracks.items()):
                tracks.add_metric([figures.vhost, figures.app, figures.stream, kind], n)
        streams.add_metric([], count)
        yield streams
        yield tracks

    def _tasks(self) -> Iterator[Any]:
        if self.sources.tasks is None:
            return
        family = GaugeMetricFamily("kiln_tasks", "Push, record and dump tasks by state", labels=["kind", "state"])
        for (kind, state), n in sorted(Counter(self.sources.tasks()).items()):
            family.add_metric([kind, state], n)
        yield family

    def _queues(self) -> Iterator[Any]:
        if self.sources.queues is None:
            return
        queues = self.sources.queues()
        # a gauge, not a counter: the sum goes down when a stream (and its queues) ends
        drops = GaugeMetricFamily("kiln_queue_dropped_packets", "Packets dropped by the bounded queues of live "
                                  "streams (slow consumers), summed over the queues that exist now")
        drops.add_metric([], sum(int(q.get("drop", 0)) for q in queues))
        count = GaugeMetricFamily("kiln_queues", "Bounded packet queues of live streams")
        count.add_metric([], len(queues))
        yield drops
        yield count

    def _journal(self) -> Iterator[Any]:
        journal = self.sources.journal
        if journal is None:
            return
        records = CounterMetricFamily("kiln_journal_records", "Records appended to the journal since start")
        records.add_metric([], journal.records)
        commits = CounterMetricFamily("kiln_journal_commits", "Group commits (one write and one fsync each)")
        commits.add_metric([], journal.commits)
        buckets, _count, total = journal.histogram()
        fsync = HistogramMetricFamily("kiln_journal_fsync_seconds", "Time each journal fsync took")
        fsync.add_metric([], buckets, total)
        yield from (records, commits, fsync)

    def _commands(self) -> Iterator[Any]:
        timings = self.sources.commands
        if timings is None:
            return
        count = CounterMetricFamily("kiln_api_commands", "API commands answered (an actor decided, the journal "
                                    "made the events durable)")
        count.add_metric([], timings.commands)
        seconds = CounterMetricFamily("kiln_api_command_seconds", "Time API commands spent, by phase: actor (to "
                                      "the actor's answer), journal (to the events being durable), loop (to the "
                                      "request resuming)", labels=["phase"])
        for phase, total in timings.phases():
            seconds.add_metric([phase], total)
        yield from (count, seconds)

    def _loop(self) -> Iterator[Any]:
        lag = self.sources.loop_lag
        if lag is None:
            return
        last = GaugeMetricFamily("kiln_event_loop_lag_seconds", "How late the API event loop ran its last timer")
        last.add_metric([], lag.last_s)
        most = GaugeMetricFamily("kiln_event_loop_lag_max_seconds", "The largest event loop lag since start")
        most.add_metric([], lag.max_s)
        yield last
        yield most

    def _feed(self) -> Iterator[Any]:
        if self.sources.feed is not None:
            last_seq, tails, cut_offs = self.sources.feed()
            seq = GaugeMetricFamily("kiln_journal_last_seq", "Sequence number of the newest durable record")
            seq.add_metric([], last_seq)
            open_tails = GaugeMetricFamily("kiln_feed_tails", "Open journal tails (SSE clients, webhook deliveries)")
            open_tails.add_metric([], tails)
            cut = CounterMetricFamily("kiln_feed_cut_offs", "Readers cut off for falling behind (they resume by seq)")
            cut.add_metric([], cut_offs)
            yield from (seq, open_tails, cut)
        if self.sources.deliveries is not None:
            states = self.sources.deliveries()
            acked = GaugeMetricFamily("kiln_subscription_acked_seq", "Journal records a webhook subscription has "
                                      "had acknowledged (or filtered out), up to this sequence", labels=["id"])
            delivered = CounterMetricFamily("kiln_subscription_delivered", "Records a webhook subscription was sent "
                                            "and acknowledged", labels=["id"])
            failures = CounterMetricFamily("kiln_subscription_failures", "Failed webhook POSTs since start",
                                           labels=["id"])
            retrying = GaugeMetricFamily("kiln_subscription_retrying", "1 while a subscription's POST is being "
                                         "retried", labels=["id"])
            for ident, state in sorted(states.items()):
                acked.add_metric([ident], state.acked_seq)
                delivered.add_metric([ident], state.delivered)
                failures.add_metric([ident], state.failures)
                retrying.add_metric([ident], 1 if state.state == "retrying" else 0)
            yield from (acked, delivered, failures, retrying)

    def _rtc_ingest(self) -> Iterator[Any]:
        if self.sources.rtc_ingest is None:
            return
        packets = CounterMetricFamily("kiln_webrtc_ingest_packets", "RTP packets received from a WebRTC publisher",
                                      labels=list(STREAM_LABELS))
        nacks = CounterMetricFamily("kiln_webrtc_ingest_nacks", "NACKs sent to a WebRTC publisher (losses asked "
                                    "again)", labels=list(STREAM_LABELS))
        plis = CounterMetricFamily("kiln_webrtc_ingest_plis", "PLIs sent to a WebRTC publisher (keyframes asked "
                                   "for)", labels=list(STREAM_LABELS))
        rtx = CounterMetricFamily("kiln_webrtc_ingest_layer_retransmissions", "Retransmissions (RTX) of a WebRTC "
                                  "publisher's simulcast layers, matched to them by rid", labels=list(STREAM_LABELS))
        for figures in self.sources.rtc_ingest():
            key = [figures.vhost, figures.app, figures.stream]
            packets.add_metric(key, figures.packets)
            nacks.add_metric(key, figures.nacks)
            plis.add_metric(key, figures.plis)
            rtx.add_metric(key, figures.rtx)
        yield from (packets, nacks, plis, rtx)


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def registry_for(sources: Sources) -> CollectorRegistry:
    """A registry of its own (not the process-global default), holding only Kiln's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(KilnCollector(sources))
    for collector in sources.extra:
        registry.register(collector)
    return registry

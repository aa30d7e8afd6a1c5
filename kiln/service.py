"""One Kiln process: configuration, journal recovery, the actor tree, and the network servers.

Startup = seed the catalog from the configuration file, load the newest snapshot, replay the
journal tail into the projections, journal what recovery found (streams that were live are
ended with reason ``server restart``), then build the actor tree from the projections and open
the listeners. Nothing created through the API is lost by a restart or a crash.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pykka
import uvicorn

from kiln import __version__
from kiln.actors.directory import Directory
from kiln.actors.dynamic_removal import DynamicAppRemoval
from kiln.actors.ingest_gate import IngestGate
from kiln.actors.origin_gate import OriginGate
from kiln.actors.runtime import ActorRuntime
from kiln.actors.server import ServerActor
from kiln.actors.subscriptions import SubscriptionsActor
from kiln.admission.audit import JournalAudit
from kiln.admission.signed_policy import SignedPolicyCheck
from kiln.admission.step import AdmissionStep
from kiln.admission.webhooks import WebhookCheck
from kiln.banner import Banner, Token, TokenSource
from kiln.config.cors import CorsPolicy
from kiln.config.errors import ConfigLoadError
from kiln.config.hosts import HostRouter
from kiln.config.limits import MEDIA_DEFAULTS, ConnectionLimits
from kiln.config.templates import timings
from kiln.config.tls import SniCertificates
from kiln.config.unimplemented import api_app_warnings, vhost_warnings
from kiln.config.write_roots import WriteRoots, config_file_roots
from kiln.control_cpu import free_thread
from kiln.delivery.webhooks import Deliveries, Target
from kiln.domain.app_tasks import AppTasks
from kiln.domain.errors import DomainError
from kiln.domain.push import closed_after_restart
from kiln.domain.record import lost_after_restart
from kiln.domain.server import VhostState
from kiln.domain.subscriptions import SubscriptionState, parse_spec
from kiln.eventlog import EventLog
from kiln.events import server as sv
from kiln.events import streams as se
from kiln.events import tasks as te
from kiln.http.api import ApiApp, MetricsExport
from kiln.http.api_protocol import api_protocol
from kiln.http.connection_limits import guarded_protocol
from kiln.http.context import ApiReads
from kiln.http.media_protocol import media_protocol
from kiln.http.tls import ApiTls
from kiln.journal import Journal, SnapshotStore
from kiln.journal.feed import JournalFeed
from kiln.journal.query import JournalQuery
from kiln.journal.reader import StoredFields, as_record
from kiln.journal.records import new_record
from kiln.journal.reserve import DEFAULT_RESERVE_BYTES
from kiln.journal.segments import journal_dir
from kiln.media.publish.llhls.tls_server import H2Listener, alpn_protocols
from kiln.media.publish.record.recovery import recover_inflight
from kiln.media.publish.webrtc.audit import JournalSessions
from kiln.media.rtc.connect_race import quiet_closed_connects
from kiln.media.runtime import ControlPlane, MediaRuntime
from kiln.metrics.commands import COMMANDS
from kiln.metrics.deliveries import DeliveryStates
from kiln.metrics.journal import JournalCounters
from kiln.metrics.loop_lag import LoopLag
from kiln.metrics.prometheus import CONTENT_TYPE, LiveStreamFigures, Sources, exposition, registry_for
from kiln.metrics.tree import MetricsTree
from kiln.projections.catalog import CatalogProjection
from kiln.projections.subscriptions import SubscriptionsProjection
from kiln.projections.tasks import TasksProjection
from kiln.replay_progress import lists_with_progress
from kiln.running import RunningServer

log = logging.getLogger(__name__)

TOKEN_FILE = "access_token"


@dataclass
class Recovery:
    snapshot_seq: int
    replayed: int
    seconds: float


def bind_tcp(host: str, port: int) -> socket.socket:
    """A listening socket bound before the server starts, so a busy port is a clear startup error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says
    # TCP, and without it every keep-alive response waited 40 ms for a delayed ACK (Nagle)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def load_or_create_token(data_dir: Path) -> tuple[str, Token]:
    """The generated AccessToken (``kiln:<random>``, so ``curl -u`` works with it as-is), and whether
    this start wrote the file or reused an earlier start's."""
    path = data_dir / TOKEN_FILE
    if path.exists():
        return path.read_text().strip(), Token(TokenSource.REUSED, path)
    token = "kiln:" + secrets.token_hex(16)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, Token(TokenSource.GENERATED, path)


def delivery_target(state: SubscriptionState) -> Target:
    spec = state.spec
    return Target(spec.id, spec.url, spec.secret_key, spec.entity_prefix, spec.types, state.cursor, state.delivered)


@dataclass(frozen=True)
class VhostSignedPolicies:
    """Each vhost's ``signedPolicy`` as the catalog holds it now (vhosts created by the API included)."""

    catalog: CatalogProjection

    def signed_policy(self, vhost: str) -> dict[str, Any] | None:
        view = self.catalog.vhost(vhost)
        section = view.config.get("signedPolicy") if view is not None else None
        return section if isinstance(section, dict) else None


@dataclass(frozen=True)
class VhostAdmissionWebhooks:
    """Each vhost's ``admissionWebhooks`` as the catalog holds it now (read per request)."""

    catalog: CatalogProjection

    def admission_webhooks(self, vhost: str) -> dict[str, Any] | None:
        view = self.catalog.vhost(vhost)
        section = view.config.get("admissionWebhooks") if view is not None else None
        return section if isinstance(section, dict) else None


def guarded(limits: ConnectionLimits, listener: str) -> dict[str, Any]:
    """uvicorn settings that bound what one client can hold (connection_limits.py)."""
    return {"http": guarded_protocol(limits, listener), "h11_max_incomplete_event_size": limits.max_header_bytes}


def api_listener(limits: ConnectionLimits, listener: str) -> dict[str, Any]:
    """uvicorn settings of an API port: httptools, the same bounds, OME's envelope for a 431 (api_protocol.py);
    no X-Forwarded-* rewriting (OME's API has none, and uvicorn's middleware for it was a layer and a header
    scan on every request)."""
    return {"http": api_protocol(limits, listener), "proxy_headers": False}


def _keeping(lists: Iterable[list[StoredFields]], kept: deque[StoredFields]) -> Iterator[list[StoredFields]]:
    """``lists`` of rows unchanged, each row also put in ``kept`` (a bounded deque keeps the newest)."""
    for rows in lists:
        kept.extend(rows)
        yield rows


def _warn_unimplemented_api_config(vhosts: list[VhostState]) -> None:
    """Vhosts and apps made through the API and recovered from the journal are told, at every start, what Kiln
    does not run of them, as Server.xml's are (``kiln.cli`` logs those, read-only here, before opening)."""
    for vhost in vhosts:
        if not vhost.read_only:
            for line in vhost_warnings(vhost.config):
                log.warning("configuration vhost %s: %s", vhost.name, line)
        for app in vhost.apps:
            if not app.read_only:
                for line in api_app_warnings(app.config):
                    log.warning("configuration vhost %s app %s: %s", vhost.name, app.name, line)


class KilnService:
    def __init__(self, config: Any, data_dir: Path, *, config_name: str = "(embedded default)",
                 snapshot_every: int = 10_000, fsync: bool = True,
                 journal_reserve: int = DEFAULT_RESERVE_BYTES) -> None:
        self.config = config
        self.config_name = config_name
        self.data_dir = Path(data_dir)
        self.snapshot_every = snapshot_every
        # where API-chosen paths may make Kiln write: record and dump paths (checked by HTTP), and the .sch files
        # of scheduled channels in an app's ScheduleFilesDir (checked by the app's stream supervisor)
        self.write_roots = WriteRoots.build(config.writable_roots, self.data_dir, config_file_roots(config.vhosts),
                                            config.resolve_path)
        self.fsync = fsync
        self.journal_reserve = journal_reserve
        self.catalog = CatalogProjection()
        self.tasks = TasksProjection()
        self.subscriptions = SubscriptionsProjection()
        self.delivery_states = DeliveryStates()
        self.deliveries: Deliveries | None = None
        self.subscriptions_ref: Any = None
        self.stats = MetricsTree()
        self.journal_counters = JournalCounters()
        self.loop_lag = LoopLag()
        self.directory = Directory()
        self.journal: Any = None
        self.journal_query: JournalQuery | None = None
        self.running: RunningServer | None = None
        self.feed: JournalFeed | None = None
        self.snapshots: SnapshotStore | None = None
        self.events: EventLog | None = None
        self.actors: ActorRuntime | None = None
        self.server_ref: Any = None
        self.api: ApiApp | None = None
        self.api_tls: ApiTls | None = None
        # the media TLS ports' certificates, chosen by SNI; swapped by the server actor on :reloadCertificate
        self.media_certificates = SniCertificates(self.catalog, self.config.resolve_path)
        self.token = ""
        self.token_path: Path | None = None
        self.token_source = Token(TokenSource.CONFIGURED)
        self._snapshot_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kiln-snapshot",
                                                 initializer=free_thread)  # its first task may come from an actor
        self._since_snapshot = 0
        # the newest capture not yet being saved, and whether the snapshot thread is saving (see _maybe_snapshot)
        self._snapshot_lock = threading.Lock()
        self._snapshot_wanted: tuple[Any, ...] | None = None
        self._snapshot_saving = False
        # the newest snapshot on disk: its seq, and journal.bytes_appended when it was captured (negative at startup:
        # the bytes of the tail that was there already) -- what GET /v1/status tells a restart would replay
        self._snapshot_mark: tuple[int, int] = (0, 0)
        self._stopping = threading.Event()
        self.media = MediaRuntime(config)
        self.api_limits: ConnectionLimits = config.api_limits

    # -- startup ---------------------------------------------------------------------------------
    def open(self) -> Recovery:
        """Recover state and start the actor tree (no sockets yet)."""
        started = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.config.access_token:
            self.token = self.config.access_token
        else:
            self.token, self.token_source = load_or_create_token(self.data_dir)
            self.token_path = self.token_source.path
        for vhost in self.config.vhosts:
            self.catalog.seed_config_vhost(vhost, time.time())
        self.journal = Journal.open(self.data_dir, fsync=self.fsync, counters=self.journal_counters,
                                    reserve_bytes=self.journal_reserve)
        self.snapshots = SnapshotStore(self.data_dir)
        self.events = EventLog(self.journal, new_record)
        self.feed = JournalFeed(self.journal)
        self.events.add_projection(self.catalog)
        self.events.add_projection(self.tasks)
        self.events.add_projection(self.subscriptions)
        loaded = self.snapshots.load_latest()
        snapshot_seq = 0
        if loaded is not None:
            snapshot_seq, state = loaded
            self.catalog.restore(state.get("catalog", {}))
            self.tasks.restore(state.get("tasks", {}))
            self.subscriptions.restore(state.get("subscriptions", []))
        self.journal_query = JournalQuery(journal_dir(self.data_dir), known_secrets=self.secret_payloads)
        self.journal_query.start_at(self.journal.last_seq)
        self.journal.add_listener(self.journal_query.on_durable)
        # replay reads stored field lists (no Record per event); the console's query keeps the newest
        # records, so Records are built for those only, once replay is done
        newest: deque[StoredFields] = deque(maxlen=self.journal_query.keep)
        replayed = self.events.apply_stored_lists(_keeping(lists_with_progress(
            self.journal.read_stored_lists(snapshot_seq + 1), snapshot_seq + 1, self.journal.last_seq,
            seq_of=lambda fields: int(fields[0])), newest))
        for _record in self.journal_query.remembering(as_record(fields) for fields in newest):
            pass
        # replayed events count toward the next snapshot: a start that replayed more than snapshot_every
        # saves one as soon as its ServerStarted is durable, so no later start replays them again
        self._since_snapshot = replayed
        self._snapshot_mark = (snapshot_seq, self.journal.bytes_appended - self.journal.bytes_after(snapshot_seq))
        self.running = RunningServer(__version__, self.data_dir, self.config_name, self.journal_query,
                                     journal_failure=lambda: self.journal.failure, journal_tail=self.journal_tail)
        self.events.add_observer(self._maybe_snapshot)
        self.actors = ActorRuntime(self.events, self.directory, self.stats, self.data_dir, self.media,
                                   self.config.base_dir, self.write_roots)
        gate = IngestGate(self.directory, self.catalog, self.media.streams, refusals=(DomainError,))
        admission = AdmissionStep([SignedPolicyCheck(VhostSignedPolicies(self.catalog)),
                                   WebhookCheck(VhostAdmissionWebhooks(self.catalog))], JournalAudit(self.events))
        self.media.attach(ControlPlane(gate, HostRouter(self.catalog), self.stats, admission,
                                       sessions=JournalSessions(self.events),
                                       pulls=OriginGate(self.directory, self.media.streams)))
        notes = self._journal_recovery(snapshot_seq, replayed)
        recovered = self._recovered_vhosts()
        _warn_unimplemented_api_config(recovered)
        self.server_ref = ServerActor.start(self.actors, recovered, self.media_certificates,
                                            resolve_path=self.config.resolve_path)
        self._wait_for_actor_tree()
        self._start_subscriptions()
        recovery = Recovery(snapshot_seq, replayed, time.monotonic() - started)
        log.info("kiln recovered snapshot_seq=%d replayed=%d seconds=%.3f notes=%d", snapshot_seq, replayed,
                 recovery.seconds, len(notes))
        return recovery

    def _recovered_vhosts(self) -> list[VhostState]:
        """What the actor tree starts from: every vhost and app with the tasks and pull definitions
        recovery found for it. Read once here, so no actor ever reads a projection."""
        pulls: dict[tuple[str, str], list[se.PullDefined]] = {}
        for ev in self.catalog.pull_definitions():
            pulls.setdefault((ev.vhost, ev.app), []).append(ev)
        schedules: dict[tuple[str, str], list[se.ScheduleDefined]] = {}
        for sev in self.catalog.schedule_definitions():
            schedules.setdefault((sev.vhost, sev.app), []).append(sev)
        multiplexes: dict[tuple[str, str], list[se.MultiplexDefined]] = {}
        for mev in self.catalog.multiplex_definitions():
            multiplexes.setdefault((mev.vhost, mev.app), []).append(mev)
        tasks = self.tasks.recovered()
        return [replace(vhost, apps=tuple(
                    replace(app, tasks=tasks.get((vhost.name, app.name), AppTasks()),
                            pulls=tuple(pulls.get((vhost.name, app.name), ())),
                            schedules=tuple(schedules.get((vhost.name, app.name), ())),
                            multiplexes=tuple(multiplexes.get((vhost.name, app.name), ())))
                    for app in vhost.apps))
                for vhost in self.catalog.vhost_states()]

    def _wait_for_actor_tree(self, timeout: float = 30.0) -> None:
        """Actors start their children asynchronously; answer no request before every app has one."""
        deadline = time.monotonic() + timeout
        wanted = [(v, a) for v in self.catalog.vhost_names() for a in (self.catalog.app_names(v) or [])]
        while time.monotonic() < deadline:
            missing = [key for key in wanted if self.directory.app(*key) is None]
            if not missing and all(self.directory.vhost(v) is not None for v in self.catalog.vhost_names()):
                return
            time.sleep(0.002)
        raise RuntimeError(f"actor tree not built within {timeout:.0f}s (missing apps: {missing[:5]})")

    def _start_subscriptions(self) -> None:
        """Webhook deliveries on their own thread and loop; Server.xml's subscriptions checked and journaled
        (a bad one fails the start with its reason)."""
        assert self.events is not None and self.feed is not None
        try:
            configured = tuple(parse_spec(body) for body in self.config.subscriptions)
            self.deliveries = Deliveries(self.feed, self.delivery_states, secrets=self.secret_payloads)
            feed = self.feed
            self.subscriptions_ref = SubscriptionsActor.start(
                self.events, self.deliveries, delivery_target, lambda: feed.last_seq + 1,
                self.subscriptions.recovered(), configured)
        except DomainError as exc:
            raise ConfigLoadError(f"Server.Managers.Subscriptions: {exc.text}") from exc
        self.directory.register(("subscriptions",), self.subscriptions_ref)

    def secret_payloads(self) -> list[dict[str, Any]]:
        """Every secret Kiln holds now (push stream keys, configured keys and passphrases), as payloads a
        ``Redactor`` learns from: a feed that starts mid-journal never saw the records that declared them,
        yet must mask them where a later record repeats one (a push error naming its destination)."""
        out: list[dict[str, Any]] = [{"stream_key": p.spec.stream_key} for p in self.tasks.all_pushes()]
        for vhost in self.catalog.vhost_names():
            view = self.catalog.vhost(vhost)
            if view is not None:
                out.append(view.config)
            for app in self.catalog.app_names(vhost) or []:
                found = self.catalog.app(vhost, app)
                if found is not None:
                    out.append(found.config)
        out += [{"secret_key": v.state.spec.secret_key} for v in self.subscriptions.all()]
        return out

    def _journal_recovery(self, snapshot_seq: int, replayed: int) -> list[str]:
        assert self.events is not None
        events: list[Any] = []
        notes: list[str] = []
        for life in self.catalog.live_streams():
            events.append(se.StreamEnded(life.vhost, life.app, life.name, life.instance, "server restart"))
            notes.append(f"stream {life.vhost}/{life.app}/{life.name} ended: server restart")
        known = {(v, a) for v in self.catalog.vhost_names() for a in (self.catalog.app_names(v) or [])}
        for push in self.tasks.all_pushes():
            if (push.vhost, push.app) not in known:
                events.append(te.PushRemoved(push.vhost, push.app, push.id, "application no longer exists"))
                notes.append(f"push {push.vhost}/{push.app}/{push.id} dropped: application no longer exists")
        for record in self.tasks.all_records():
            if (record.vhost, record.app) not in known:
                events.append(te.RecordRemoved(record.vhost, record.app, record.id,
                                               "application no longer exists"))
                notes.append(f"record {record.vhost}/{record.app}/{record.id} dropped: "
                             "application no longer exists")
        for push in self.tasks.all_pushes():  # sessions died with the process: back to ready, next sequence
            if (push.vhost, push.app) in known:
                events.extend(closed_after_restart(push))
        for record in self.tasks.all_records():
            if (record.vhost, record.app) in known and record.state != "ready":
                events.append(te.RecordStateChanged(record.vhost, record.app, record.id, "ready", "server restart"))
        for inflight, finished, problem in recover_inflight(self.data_dir):
            if finished is None:
                notes.append(f"recording {inflight.vhost}/{inflight.app}/{inflight.id} #{inflight.sequence}: {problem}")
                lost = self.tasks.record(inflight.vhost, inflight.app, inflight.id)
                if lost is not None:
                    events.extend(lost_after_restart(lost, inflight.sequence, problem))
                continue
            events.append(te.RecordFileFinished(
                inflight.vhost, inflight.app, inflight.id, finished.sequence, finished.file_path, finished.info_path,
                finished.record_bytes, finished.record_time_ms, finished.start_time, finished.finish_time, False,
                recovered=True))
            notes.append(f"recording {inflight.vhost}/{inflight.app}/{inflight.id} #{finished.sequence} recovered "
                         f"after a crash: {finished.real_path} ({finished.record_bytes} bytes)")
        events.append(sv.ServerStarted(__version__, os.getpid(), self.config_name, replayed, snapshot_seq, notes))
        self.events.emit(events).result()
        for note in notes:
            log.warning("recovery %s", note)
        return notes

    def _maybe_snapshot(self, record: Any, _ev: Any) -> None:
        self._since_snapshot += 1
        if self._since_snapshot < self.snapshot_every or self.snapshots is None:
            return
        self._since_snapshot = 0
        # on the committing thread, right after record.seq was applied: copy the state cheaply here, render
        # and write it on the snapshot thread (appends wait for neither). A capture that has not started
        # saving is replaced by the newer one: when events come faster than snapshots are written, the
        # newest snapshot stays at most one save behind instead of falling further behind with a queue
        catalog, tasks = self.catalog.capture(), self.tasks.capture()
        subscriptions = self.subscriptions.snapshot()  # a few small records, copied by asdict
        appended = self.journal.bytes_appended if self.journal is not None else 0
        with self._snapshot_lock:
            self._snapshot_wanted = (self.snapshots, record.seq, catalog, tasks, subscriptions, appended)
            if self._snapshot_saving:
                return
            self._snapshot_saving = True
        self._snapshot_pool.submit(self._save_snapshots)

    def _save_snapshots(self) -> None:
        """The snapshot thread: save the newest capture until none is waiting."""
        while True:
            with self._snapshot_lock:
                wanted, self._snapshot_wanted = self._snapshot_wanted, None
                if wanted is None:
                    self._snapshot_saving = False
                    return
            *capture, appended = wanted
            if self._save_snapshot(*capture) and capture[1] > self._snapshot_mark[0]:
                self._snapshot_mark = (capture[1], appended)

    @staticmethod
    def _save_snapshot(store: SnapshotStore, seq: int, catalog: Callable[[], dict[str, Any]],
                       tasks: Callable[[], dict[str, Any]], subscriptions: list[dict[str, Any]]) -> bool:
        try:
            store.save(seq, {"catalog": catalog(), "tasks": tasks(), "subscriptions": subscriptions})
            log.info("snapshot saved seq=%d", seq)
            return True
        except OSError as exc:
            log.error("snapshot failed seq=%d error=%s", seq, exc)
        except Exception:  # a bug must not stop every later snapshot
            log.exception("snapshot failed seq=%d", seq)
        return False

    def journal_tail(self) -> dict[str, int]:
        """What a restart would replay: the journal's records after the newest snapshot on disk, and about how many
        bytes they take (counted as they were written; the tail found at startup is estimated from its segments'
        sizes). No file is read."""
        seq, appended = self._snapshot_mark
        last = self.journal.last_seq if self.journal is not None else seq
        written = self.journal.bytes_appended if self.journal is not None else appended
        return {"snapshotSeq": seq, "events": max(0, last - seq), "bytes": max(0, written - appended)}

    # -- network ---------------------------------------------------------------------------------
    def build_api(self) -> ApiApp:
        assert self.actors is not None, "open() first"
        cors = CorsPolicy(tuple(self.config.api_cross_domains), dict(self.config.api_cross_domain_headers))
        self.api_tls = ApiTls.from_config(self.config.managers_host, Path(self.config.base_dir)) \
            if self.config.bind.api_tls_port is not None else None
        reads = ApiReads(self.catalog, self.tasks, self.stats, self.directory, self.media, self.feed,
                         self.subscriptions, self.delivery_states, self.secret_payloads,
                         self.journal_query, self.running)
        registry = registry_for(self._metric_sources())
        metrics = MetricsExport(lambda: exposition(registry), CONTENT_TYPE,
                                auth=bool(getattr(self.config, "metrics_auth", True)))
        reserve = self.journal.reserve if self.journal is not None else None
        self.api = ApiApp(reads, self.token, cors, tls_reloader=self.api_tls.reload if self.api_tls else None,
                          metrics=metrics,
                          max_body=self.api_limits.max_body_bytes, body_timeout=self.api_limits.request_timeout,
                          max_header_bytes=self.api_limits.max_header_bytes,
                          disk_gate=reserve.ensure if reserve is not None else None,
                          write_roots=self.write_roots)
        return self.api

    def _metric_sources(self) -> Sources:
        """What ``/metrics`` reads at scrape time (nothing is counted for it on the packet path)."""
        feed, media, tasks = self.feed, self.media, self.tasks

        def streams() -> list[LiveStreamFigures]:
            out = []
            for stream in media.streams.all():
                kinds: dict[str, int] = {}
                for track in stream.snapshot().input_tracks:
                    kinds[track.kind.lower()] = kinds.get(track.kind.lower(), 0) + 1
                out.append(LiveStreamFigures(stream.vhost, stream.app, stream.name, kinds))
            return out

        def task_states() -> list[tuple[str, str]]:
            return [*(("push", t.state) for t in tasks.all_pushes()),
                    *(("record", t.state) for t in tasks.all_records()),
                    *(("dump", "enabled" if t.enabled else "disabled") for t in tasks.all_dumps())]

        return Sources(tree=self.stats, streams=streams, tasks=task_states, queues=media.queue_metrics,
                       journal=self.journal_counters, commands=COMMANDS, loop_lag=self.loop_lag,
                       feed=(lambda: (feed.last_seq, feed.open_tails, feed.cut_offs)) if feed is not None else None,
                       deliveries=self.delivery_states.all,
                       rtc_ingest=lambda: media.webrtc_ingest.figures() if media.webrtc_ingest is not None else [])

    async def serve(self, host: str, api_port: int | None, ready: Any = None) -> None:
        """Run the listeners until SIGINT/SIGTERM (or ``self.request_stop()``)."""
        api = self.build_api()
        servers: list[tuple[uvicorn.Server, socket.socket]] = []
        listeners: dict[str, tuple[str, int]] = {}  # for the banner, in the order they open
        if api_port is not None:
            sock = bind_tcp(host, api_port)
            cfg = uvicorn.Config(api.starlette, log_config=None, access_log=False, lifespan="off", server_header=False,
                                 timeout_keep_alive=30, ws="none", **api_listener(self.api_limits, "api"))
            servers.append((uvicorn.Server(cfg), sock))
            self.api_address = sock.getsockname()[:2]
            listeners["api"] = (host, sock.getsockname()[1])
        tls_port = self.config.bind.api_tls_port
        if self.api_tls is not None and tls_port is not None and self.api_tls.try_load():
            sock = bind_tcp(host, tls_port)
            cfg = uvicorn.Config(api.starlette, log_config=None, access_log=False, lifespan="off", server_header=False,
                                 timeout_keep_alive=30, ws="none", **api_listener(self.api_limits, "api_tls"))
            cfg.load()
            cfg.ssl = self.api_tls.context  # ours, so reloadCertificate can swap the chain in place
            servers.append((uvicorn.Server(cfg), sock))
            listeners["api_tls"] = (host, sock.getsockname()[1])
        thumbnail_tls = self._thumbnail_tls_server(host)
        if thumbnail_tls is not None:
            servers.append(thumbnail_tls)
            listeners["thumbnail_tls"] = (host, thumbnail_tls[1].getsockname()[1])
        for name, (app, port) in self.media.http_apps().items():
            sock = bind_tcp(host, port)
            # WebSockets (the websockets package) only where WebRTC signalling is served; elsewhere "none"
            ws = "websockets" if self.media.serves_websocket(name) else "none"
            # player ports: httptools with the LL-HLS fast lane (media_protocol.py says why); thumbnails: h11
            protocol = guarded(MEDIA_DEFAULTS, name) if name == "thumbnail" else \
                {"http": media_protocol(MEDIA_DEFAULTS, name, self.media.fast_lane(name))}
            cfg = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", timeout_keep_alive=30,
                                 ws=ws, **protocol)
            servers.append((uvicorn.Server(cfg), sock))
            listeners[name] = (host, sock.getsockname()[1])
            if ws != "none":  # WebRTC signalling shares this port (the banner names it too)
                listeners["webrtc"] = listeners[name]
        h2 = self._llhls_tls_listener(host)
        if h2 is not None:
            listeners["llhls_tls"] = (host, h2.sock.getsockname()[1])
        self._stop_event = stop = asyncio.Event()
        self._loop = loop = asyncio.get_running_loop()
        quiet_closed_connects(loop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # uvicorn's serve() would install its own signal handlers; _serve() leaves them to us
        tasks = [asyncio.create_task(s._serve(sockets=[sock])) for s, sock in servers]
        if h2 is not None:
            tasks.append(asyncio.create_task(h2.serve()))
        await self.media.start(host)
        lag_sampler = asyncio.create_task(self.loop_lag.run())
        removal = None
        if self.config.modules.dynamic_app_removal:  # OME's orchestrator timer: unused dynamic apps go
            idle_s, sweep_s = timings()
            removal = asyncio.create_task(DynamicAppRemoval(self.catalog, self.media.streams, self.directory,
                                                            idle_s=idle_s, sweep_s=sweep_s).run())
        banner = Banner(__version__, self.token_source, {**listeners, **self.media.addresses},
                        [f"{v}/{a}" for v in self.catalog.vhost_names() for a in (self.catalog.app_names(v) or [])],
                        self.data_dir)
        for line in banner.lines():
            log.info("%s", line)
        if self.running is not None:
            self.running.listeners.update({**listeners, **self.media.addresses})
            try:
                self.running.write_server_file()
            except OSError as exc:
                log.error("could not write server file error=%s (kiln status will not find this server)", exc)
        log.info("kiln ready api=%s:%s version=%s", host, api_port, __version__)
        if ready is not None:
            ready()
        await stop.wait()
        log.info("kiln stopping")
        if self.running is not None:
            self.running.remove_server_file()
        lag_sampler.cancel()
        if removal is not None:
            removal.cancel()
        api.close_streams()
        for s, _sock in servers:
            s.should_exit = True
        if h2 is not None:
            h2.stop()
        await self.media.close()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _llhls_tls_listener(self, host: str) -> H2Listener | None:
        """LL-HLS over HTTP/2 on Bind/Publishers/LLHLS/TLSPort (HTTP/1.1 only with Modules/HTTP2/Enable false), the
        certificate chosen by SNI among the vhosts' Host/TLS; None (logged) when the port is not configured or no
        vhost has a certificate that loads."""
        port, app = self.config.bind.llhls_tls_port, self.media.llhls_tls_app()
        if port is None or app is None:
            return None
        context = self.media_certificates.listener_context(alpn_protocols(self.config.modules.http2))
        if context is None:
            log.error("llhls tls port not opened port=%d: no vhost has a Host/TLS certificate that loads", port)
            return None
        return H2Listener(app, bind_tcp(host, port), context)

    def _thumbnail_tls_server(self, host: str) -> tuple[uvicorn.Server, socket.socket] | None:
        """Thumbnails on Bind/Publishers/Thumbnail/TLSPort: the plain port's app behind TLS, the certificate
        chosen by SNI. uvicorn, like the plain port: one HTTP/1.1 GET per image needs no HTTP/2."""
        port, app = self.config.bind.thumbnail_tls_port, self.media.thumbnail_app()
        if port is None or app is None:
            return None
        context = self.media_certificates.listener_context(["http/1.1"])
        if context is None:
            log.error("thumbnail tls port not opened port=%d: no vhost has a Host/TLS certificate that loads", port)
            return None
        cfg = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", timeout_keep_alive=30, ws="none",
                             **guarded(MEDIA_DEFAULTS, "thumbnail_tls"))
        cfg.load()
        cfg.ssl = context
        return uvicorn.Server(cfg), bind_tcp(host, port)

    def request_stop(self) -> None:
        loop, stop = getattr(self, "_loop", None), getattr(self, "_stop_event", None)
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)

    # -- shutdown --------------------------------------------------------------------------------
    def close(self, reason: str = "shutdown") -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self.server_ref is not None:
            self.server_ref.stop(block=True, timeout=30)
        if self.subscriptions_ref is not None:
            self.subscriptions_ref.stop(block=True, timeout=30)  # its last checkpoints, while the journal is open
        elif self.deliveries is not None:
            self.deliveries.close()
        pykka.ActorRegistry.stop_all(block=True, timeout=30)
        if self.events is not None:
            try:
                self.events.emit([sv.ServerStopped(reason)]).result(timeout=10)
            except Exception as exc:
                log.error("could not journal shutdown error=%s", exc)
        self._snapshot_pool.shutdown(wait=True)
        if self.journal is not None:
            self.journal.close()

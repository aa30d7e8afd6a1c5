"""The media side of one Kiln process: protocol listeners, the stream registry, task counters.

It knows the control plane only through the small interfaces its parts declare (the stream opener
and its companions for ingest, host routing and a bytes counter for the publishers' HTTP ports),
handed over once by :meth:`MediaRuntime.attach`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from kiln.admission.closing import drain_closing
from kiln.admission.contract import Admitter, OpenDoor
from kiln.media.heap import HeapTrimmer, keep_large_blocks_mapped
from kiln.media.ingest.contract import StreamOpener, VhostRouter
from kiln.media.ingest.mpegts.ingest import MpegtsIngest, PortMap
from kiln.media.ingest.multiplex.board import MuxBoard
from kiln.media.ingest.rtmp.ingest import RtmpIngest
from kiln.media.ingest.rtmp.server import RtmpServer
from kiln.media.ingest.schedule.board import ScheduleBoard
from kiln.media.ingest.srt.ingest import PublishScreen, SrtIngest
from kiln.media.ingest.webrtc.ingest import WebRtcIngest
from kiln.media.net.srt.errors import SrtUnavailable
from kiln.media.origins.map_store import OriginMaps
from kiln.media.origins.puller import OriginPuller, PullStarter, VhostConfigs
from kiln.media.origins.templates import PlayerApps, Routes
from kiln.media.publish.hls.publisher import HlsPublisher
from kiln.media.publish.hls.server import HlsServer
from kiln.media.publish.llhls.publisher import LlhlsPublisher
from kiln.media.publish.llhls.server import AppsByHost, BytesOut, LlhlsServer
from kiln.media.publish.ovt.server import OvtPublisher
from kiln.media.publish.srt.publisher import AppConfigs, SrtPlayback
from kiln.media.publish.thumbnail.server import ThumbnailServer
from kiln.media.publish.webrtc.endpoints import WebRtcEndpoints
from kiln.media.publish.webrtc.publisher import SessionLog, WebRtcPublisher
from kiln.media.rtc.ice_plan_log import open_ice_pool
from kiln.media.rtc.ingest import RtcIngest
from kiln.media.rtc.turn.server import TurnServer
from kiln.media.rtc.turn.start import open_turn
from kiln.media.rtc.udp_mux import PortPool
from kiln.media.stream.live import LiveStream
from kiln.media.stream.loops import ChannelFeeds
from kiln.media.stream.registry import StreamRegistry
from kiln.metrics.queue import queue_json
from kiln.metrics.sessions import SessionCounters

log = logging.getLogger(__name__)


class IngestControl(StreamOpener, PublishScreen, PortMap, Protocol):
    """The control plane as every ingest protocol together needs it."""


class HostRoutes(VhostRouter, AppsByHost, VhostConfigs, AppConfigs, Routes, Protocol):
    """Host routing for ingest (which vhost) and for the publishers' HTTP ports (which app)."""


class PublisherStats(BytesOut, Protocol):
    """The counters the publishers' HTTP ports and the LL-HLS player sessions move."""

    def connection(self, vhost: str, app: str, stream: str, kind: str, delta: int) -> None: ...


@dataclass(frozen=True)
class ControlPlane:
    """What the media side is given of the rest of the process."""

    ingest: IngestControl
    hosts: HostRoutes
    stats: PublisherStats
    admission: Admitter = field(default_factory=OpenDoor)  # every ingest and publisher asks it first
    sessions: SessionLog | None = None  # where WebRTC viewers' sessions are kept (the journal)
    pulls: PullStarter | None = None  # pull on demand (Origins, OriginMapStore); None: never


class MediaRuntime:
    def __init__(self, config: Any) -> None:
        self.config = config
        self.streams = StreamRegistry()
        self.schedules = ScheduleBoard()  # what each scheduled channel plays now (GET scheduledChannels/{stream})
        self.multiplexes = MuxBoard()  # what each multiplex channel does now (GET multiplexChannels/{stream})
        self.feeds = ChannelFeeds()  # what every channel takes, scheduled or multiplex: none may take itself back
        self.task_counters = SessionCounters()
        self.control: ControlPlane | None = None
        self.players: PlayerApps  # set by attach()
        self.rtmp: RtmpServer | None = None
        self.srt: SrtIngest | None = None
        self.mpegts: MpegtsIngest | None = None
        self.llhls: LlhlsPublisher | None = None
        self.hls: HlsPublisher | None = None
        self.srt_playback: SrtPlayback | None = None
        self.ovt: OvtPublisher | None = None
        self.origins: OriginPuller | None = None
        self.maps: OriginMaps | None = None
        self.webrtc: WebRtcPublisher | None = None
        self.webrtc_endpoints: WebRtcEndpoints | None = None
        self.player_router: LlhlsServer | None = None  # set by http_apps(); its fast lane serves the player ports
        self.rtc_ingest: RtcIngest | None = None  # WebRTC ingest (issue 13) sets it before http_apps()
        self.webrtc_ingest: WebRtcIngest | None = None
        self.ice_pool: PortPool | None = None
        self.turn: TurnServer | None = None
        self.addresses: dict[str, tuple[str, int]] = {}
        self.heap = HeapTrimmer(idle=lambda: not self.streams.all())
        keep_large_blocks_mapped()

    def attach(self, control: ControlPlane) -> None:
        self.control = control
        # the player doors see a vhost's ``*`` template as any app it does not have yet (pull on demand makes it)
        self.players = PlayerApps(control.hosts)
        self.maps = OriginMaps(control.hosts, self.config.bind.ovt_port)
        if control.pulls is not None:
            self.origins = OriginPuller(control.hosts, control.pulls, self.maps)
        self.llhls = LlhlsPublisher(control.stats)
        self.hls = HlsPublisher(control.stats)
        if self.config.bind.webrtc_signalling_port is not None or self.config.bind.webrtc_signalling_tls_port:
            self.webrtc = WebRtcPublisher(self.streams, control.stats, None, admission=control.admission,
                                          journal=control.sessions, origins=self.origins)
            # WebRTC ingest (direction=send, WHIP) shares the signalling port and the ICE ports
            self.rtc_ingest = self.webrtc_ingest = WebRtcIngest(
                control.ingest, control.hosts, port=self.config.bind.webrtc_signalling_port or 0,
                pool=lambda: self.ice_pool, admission=control.admission)

    # -- stream lifecycle hooks (called by app actors, any thread) --
    def stream_created(self, stream: LiveStream, app_config: dict[str, Any]) -> None:
        if self.llhls is not None:
            self.llhls.stream_created(stream)
        if self.hls is not None:
            self.hls.stream_created(stream)
        if self.srt_playback is not None:
            self.srt_playback.stream_created(stream, app_config)

    def stream_started(self, stream: LiveStream, app_config: dict[str, Any]) -> None:
        if self.llhls is not None:
            self.llhls.stream_started(stream, app_config)
        if self.hls is not None:
            self.hls.stream_started(stream, app_config)
        if self.srt_playback is not None:
            self.srt_playback.stream_started(stream, app_config)
        if self.ovt is not None:
            self.ovt.stream_started(stream, app_config)
        if self.maps is not None:
            self.maps.stream_started(stream, app_config)

    def stream_ended(self, stream: LiveStream) -> None:
        if self.llhls is not None:
            self.llhls.stream_ended(stream)
        if self.hls is not None:
            self.hls.stream_ended(stream)
        if self.srt_playback is not None:
            self.srt_playback.stream_ended(stream)
        if self.ovt is not None:
            self.ovt.stream_ended(stream)
        if self.maps is not None:
            self.maps.stream_ended(stream)
        self.heap.released()

    def _player_router(self, control: ControlPlane, llhls: LlhlsPublisher) -> LlhlsServer:
        """The router of a player port: it tells LL-HLS and HLS v3 requests apart by their names
        (media spec 2.2) and asks admission where OME does."""
        if self.webrtc is not None and self.webrtc_endpoints is None:
            self.webrtc_endpoints = WebRtcEndpoints(self.webrtc, self.players, self.rtc_ingest)
        return LlhlsServer(llhls, self.players, self.streams, control.stats,
                           thumbnail_port=self.config.bind.thumbnail_port,
                           hls=HlsServer(self.hls, control.stats, admission=control.admission,
                                         origins=self.origins, streams=self.streams)
                           if self.hls is not None else None,
                           admission=control.admission, webrtc=self.webrtc_endpoints, origins=self.origins)

    def http_apps(self) -> dict[str, Any]:
        """Starlette apps for the publisher ports: name -> (app, port)."""
        out: dict[str, Any] = {}
        control = self.control
        if control is None:
            return out
        bind = self.config.bind
        signalling = bind.webrtc_signalling_port
        if self.llhls is not None and (bind.llhls_port is not None or bind.hls_port is not None
                                       or signalling is not None):
            # one router for every player port: HLS v3 plays on Bind/Publishers/HLS/Port as in OME, and on
            # the LL-HLS port; WebRTC signalling and WHEP share the LL-HLS port when they name the same one
            server = self._player_router(control, self.llhls)
            self.player_router = server
            if bind.llhls_port is not None:
                out["llhls"] = (server.starlette, bind.llhls_port)
            if bind.hls_port is not None and bind.hls_port != bind.llhls_port:
                out["hls"] = (server.starlette, bind.hls_port)
            if signalling is not None and signalling not in (bind.llhls_port, bind.hls_port):
                out["webrtc"] = (server.starlette, signalling)
        if bind.thumbnail_port is not None:
            out["thumbnail"] = (self._thumbnail_server(control).starlette, bind.thumbnail_port)
        return out

    def fast_lane(self, name: str) -> LlhlsServer | None:
        """The player router behind HTTP port ``name`` (its ``fast`` answers live LL-HLS files without ASGI:
        kiln/http/media_protocol.py), None for other ports; after :meth:`http_apps`."""
        return self.player_router if name in ("llhls", "hls", "webrtc") else None

    def serves_websocket(self, name: str) -> bool:
        """Whether the HTTP port ``name`` (a key of :meth:`http_apps`) carries WebRTC signalling."""
        bind = self.config.bind
        ports = {"llhls": bind.llhls_port, "hls": bind.hls_port, "webrtc": bind.webrtc_signalling_port}
        return self.webrtc is not None and name in ports and ports[name] == bind.webrtc_signalling_port

    def _thumbnail_server(self, control: ControlPlane) -> ThumbnailServer:
        return ThumbnailServer(self.players, self.streams, control.stats, admission=control.admission,
                               origins=self.origins)

    def thumbnail_app(self) -> Any | None:
        """The thumbnail Starlette app for Bind/Publishers/Thumbnail/TLSPort (the plain port's app, served
        behind TLS by the service), or None when that port is not configured."""
        control = self.control
        if control is None or self.config.bind.thumbnail_tls_port is None:
            return None
        return self._thumbnail_server(control).starlette

    def llhls_tls_app(self) -> Any | None:
        """The LL-HLS Starlette app for Bind/Publishers/LLHLS/TLSPort (served over HTTP/2 by the
        service), or None when that port is not configured."""
        control = self.control
        if control is None or self.llhls is None or self.config.bind.llhls_tls_port is None:
            return None
        return self._player_router(control, self.llhls).starlette

    async def start(self, host: str) -> None:
        """Open the ingest listeners configured under Bind/Providers."""
        if self.control is None:
            raise RuntimeError("media runtime started before attach()")
        if self.llhls is not None:
            self.llhls.attach(asyncio.get_running_loop())
        if self.hls is not None:
            self.hls.attach(asyncio.get_running_loop())
        bind = self.config.bind
        if bind.rtmp_port is not None:
            enhanced = bool(getattr(getattr(self.config, "modules", None), "ertmp", False))
            handler = RtmpIngest(self.control.ingest, self.control.hosts, bind.rtmp_port,
                                 admission=self.control.admission)
            self.rtmp = RtmpServer(handler, host=host, port=bind.rtmp_port, enhanced_rtmp=enhanced)
            await self.rtmp.start()
            self.addresses["rtmp"] = (host, self.rtmp.port)
            log.info("rtmp listening address=%s:%d", host, self.rtmp.port)
        await self._start_ts_ingest(host)
        await self._start_srt_playback(host)
        if self.webrtc is not None:
            self.ice_pool = await open_ice_pool(host, self.config.bind.webrtc_candidate_ports)
            self.webrtc.pool = self.ice_pool
            for ice_host, ice_port in self.ice_pool.addresses() if self.ice_pool is not None else []:
                self.addresses[f"webrtc_ice:{ice_port}"] = (ice_host, ice_port)
            turn = await open_turn(host, bind.webrtc_tcp_relay, bind.webrtc_tcp_force, self.ice_pool)
            if turn is not None:
                self.turn, offer = turn
                self.webrtc.turn = offer
                if self.webrtc_ingest is not None:
                    self.webrtc_ingest.turn = offer
                self.addresses["webrtc_turn"] = (host, self.turn.port)
            self.webrtc.start(asyncio.get_running_loop())
        if bind.ovt_port is not None:
            self.ovt = OvtPublisher(self.control.hosts, self.streams, self.control.stats, host=host, port=bind.ovt_port,
                                    origins=self.origins)
            await self.ovt.start()
            self.addresses["ovt"] = (host, self.ovt.port)
        if self.maps is not None:
            self.maps.ovt_port = self.ovt.port if self.ovt is not None else None
            self.maps.attach(asyncio.get_running_loop())

    async def _start_ts_ingest(self, host: str) -> None:
        """SRT and MPEG-TS/UDP ingest (both demux TS in worker threads)."""
        assert self.control is not None
        gate, hosts = self.control.ingest, self.control.hosts
        loop = asyncio.get_running_loop()
        bind = self.config.bind
        if bind.srt_port is not None:
            try:
                srt = SrtIngest(gate, hosts, gate, loop, host=host, port=bind.srt_port, options=bind.srt_options,
                                stream_map=bind.srt_stream_map, admission=self.control.admission)
            except ValueError as exc:  # an OSError stops `kiln serve` with one log line, not a traceback
                raise OSError(errno.EINVAL, f"Server.Bind.Providers.SRT.Options: {exc}") from None
            try:
                await asyncio.to_thread(srt.start)
            except SrtUnavailable as exc:  # the rest of the server is still useful without SRT
                log.error("srt ingest disabled port=%d reason=%s", bind.srt_port, exc)
            else:
                self.srt = srt
                self.addresses["srt"] = (host, srt.port)
        if bind.mpegts_ports:
            self.mpegts = MpegtsIngest(gate, gate, loop, host=host, ports=bind.mpegts_ports)
            await self.mpegts.start()
            for port in self.mpegts.channels:
                self.addresses[f"mpegts:{port}"] = (host, port)

    async def _start_srt_playback(self, host: str) -> None:
        """SRT playback on Bind/Publishers/SRT: MPEG-TS of an output stream to each SRT caller."""
        assert self.control is not None
        port = self.config.bind.srt_playback_port
        if port is None:
            return
        try:
            playback = SrtPlayback(self.players, self.streams, self.control.stats, host=host, port=port,
                                   options=self.config.bind.srt_playback_options, admission=self.control.admission,
                                   loop=asyncio.get_running_loop(), origins=self.origins, apps=self.players)
        except ValueError as exc:
            raise OSError(errno.EINVAL, f"Server.Bind.Publishers.SRT.Options: {exc}") from None
        try:
            await asyncio.to_thread(playback.start)
        except SrtUnavailable as exc:
            log.error("srt playback disabled port=%d reason=%s", port, exc)
            return
        self.srt_playback = playback
        self.addresses["srt_playback"] = (host, playback.port)

    async def close(self) -> None:
        self.heap.close()
        if self.webrtc_ingest is not None:
            await self.webrtc_ingest.close()
        if self.webrtc_endpoints is not None:
            await self.webrtc_endpoints.close()
        if self.webrtc is not None:
            await self.webrtc.close()
        if self.turn is not None:
            await self.turn.close()
            self.turn = None
        if self.ice_pool is not None:
            self.ice_pool.close()
            self.ice_pool = None
        if self.llhls is not None:
            self.llhls.close()
        if self.hls is not None:
            self.hls.close()
            await asyncio.to_thread(self.hls.detach_all, "server shutdown")  # joins the segmenting threads
        if self.rtmp is not None:
            await self.rtmp.close()
            self.rtmp = None
        if self.srt is not None:
            await asyncio.to_thread(self.srt.close)
            self.srt = None
        if self.mpegts is not None:
            await self.mpegts.close()
            self.mpegts = None
        if self.srt_playback is not None:
            await asyncio.to_thread(self.srt_playback.close)
            self.srt_playback = None
        if self.ovt is not None:
            await self.ovt.close()
            self.ovt = None
        if self.maps is not None:
            await self.maps.close()
        await drain_closing()  # admission hears of the sessions the shutdown ended

    def queue_metrics(self) -> list[dict[str, Any]]:
        """OME's internal queue metrics, one entry per hub subscriber queue."""
        out = []
        for stream in self.streams.all():
            hubs = [stream.input, *(o.hub for o in stream.outputs.values())]
            for hub in hubs:
                for sub in hub.subscribers:
                    size = len(sub) if hasattr(sub, "__len__") else 0
                    out.append(queue_json(id(sub), f"{hub.name}/{sub.name}", type(sub).__name__, size,
                                          getattr(sub, "max_packets", 0), sub.stats))
        return out

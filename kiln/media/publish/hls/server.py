"""HTTP for HLS v3 on the LL-HLS port (media-spec §1.2): the LL-HLS router hands it the requests
HLS v3 claims (``ts:<name>.m3u8``, ``<name>.m3u8?format=ts``, ``medialist_*_hls.m3u8``, ``seg_*_hls.ts``).

CORS comes from the app's ``HLS/CrossDomains``; playlists are ``no-cache, no-store`` and segments
carry no Cache-Control, as LL-HLS serves them. A master waits (bounded) for every variant's first
segment; the players' sessions ride on the child URLs (``?session=<id>_<key>``) and count ``hlsv3``
connections. Admission asks about the master as OME's ``HLSv3`` (SignedPolicy, webhooks: 401 on a
refusal); its session carries the lease, and a child request of a session this server did not admit
(or of none) is asked itself, so dropping the session is no way around a policy.

A request of a stream that exists but has not started (its input has not described its tracks yet, or has and sent
no frame) is answered 201 with no body at once, as OME's HLS publisher does (``WaitUntilStart(0)``: "created but not
started yet"), whatever file it names; a player asks again and plays once the stream starts. As on the LL-HLS door.

A master or media playlist of a stream that is not here pulls it on demand (the vhost's Origins, then its
OriginMapStore: ``kiln/media/origins/on_demand.py``), once the request is admitted, as OME's HLS publisher
does for any request of a missing stream: a CDN or player that starts at a ``medialist_*`` URL plays too.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from kiln.admission.contract import Admission, AdmissionRequest, Admitter, OpenDoor
from kiln.config.cors import CorsPolicy
from kiln.media.origins.on_demand import READY_WAIT_S, OnDemand, pull_and_wait
from kiln.media.publish.hls.playlist import render_master, render_media
from kiln.media.publish.hls.publisher import HlsPublisher, Published, hls_config
from kiln.media.publish.llhls.leases import SessionLeases
from kiln.media.publish.llhls.publisher import cors_urls
from kiln.media.stream.live import LiveStream
from kiln.media.stream.registry import awaits_output

log = logging.getLogger(__name__)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
TS_TYPE = "video/mp2t"
PROTOCOL = "HLSv3"  # OME's publisher type name in admission (Enables: ``hlsv3``)
NO_CACHE = "no-cache, no-store"
MASTER_HOLD_SECONDS = 30.0
_MEDIALIST = re.compile(r"^medialist_([va0-9]+)_hls\.m3u8$")
_SEGMENT = re.compile(r"^seg_([va0-9]+)_(\d{1,18})_hls\.ts$")  # the client's number: no more than int() reads
_MASTER = re.compile(r"^(?:ts:)?([A-Za-z0-9_\-.]+)\.m3u8$")


class BytesOut(Protocol):
    def bytes_out(self, vhost: str, app: str, stream: str, n: int) -> None: ...


class StreamsInApp(Protocol):
    def in_app(self, vhost: str, app: str) -> Iterable[LiveStream]: ...


def hls_cors(request: Request, app_config: dict[str, Any] | None) -> dict[str, str]:
    section = hls_config(app_config) if app_config else None
    urls, headers = cors_urls(section) if section else ((), {})
    policy = CorsPolicy(urls, headers, allow_methods="OPTIONS, GET, HEAD")
    return policy.headers(request.headers.get("origin"), request.headers.get("access-control-request-headers"))


@dataclass(frozen=True)
class _AsHlsV3:
    """The admitter as HLS v3 players meet it: the shared session leases ask in OME's ``HLSv3`` name."""

    inner: Admitter

    async def admit(self, request: AdmissionRequest) -> Admission:
        return await self.inner.admit(replace(request, protocol=PROTOCOL))

    async def closed(self, request: AdmissionRequest) -> None:
        await self.inner.closed(replace(request, protocol=PROTOCOL))


class HlsServer:
    def __init__(self, publisher: HlsPublisher, stats: BytesOut, *, admission: Admitter | None = None,
                 origins: OnDemand | None = None, streams: StreamsInApp | None = None) -> None:
        self.publisher = publisher
        self.stats = stats
        self.leases = SessionLeases(_AsHlsV3(admission or OpenDoor()), publisher)
        self.origins = origins
        self.streams = streams

    async def serve(self, request: Request, vhost: str, app: str, stream_name: str, file_name: str,
                    query: dict[str, list[str]], cors: dict[str, str]) -> Response:
        """Answer a request HLS v3 claims, for an app that enables it."""
        published = self.publisher.find(vhost, app, stream_name) or await self.publisher.find_soon(vhost, app,
                                                                                                   stream_name)
        m = _MASTER.match(file_name)
        medialist = _MEDIALIST.match(file_name)
        if m and not medialist:
            admission = await self.leases.admit_master(request, vhost, app, stream_name)
            if not admission.allowed:  # OME: SignedPolicy and webhook refusals are 401
                return Response(status_code=401, headers=cors)
            if self._not_started(vhost, app, stream_name, published):
                return Response(status_code=201, headers=cors)
            if published is None:
                published = await self._pull_on_demand(request, vhost, app, stream_name, listed=True)
            if published is None:
                return Response(status_code=404, headers=cors)
            return await self._master(request, published, vhost, app, stream_name, m.group(1), admission, cors)
        not_started = self._not_started(vhost, app, stream_name, published)
        if published is None and not medialist and not not_started:
            return Response(status_code=404, headers=cors)
        session_q = query.get("session", [None])[-1]
        if not await self._child_allowed(request, session_q, vhost, app, stream_name):
            return Response(status_code=401, headers=cors)
        if not_started:
            return Response(status_code=201, headers=cors)
        if published is None:
            published = await self._pull_on_demand(request, vhost, app, stream_name, listed=True)
            if published is None:
                return Response(status_code=404, headers=cors)
        if m := _MEDIALIST.match(file_name):
            return self._medialist(request, published, m.group(1), session_q, cors)
        if m := _SEGMENT.match(file_name):
            data = await published.stream.segment_bytes(m.group(1), int(m.group(2)))
            if data is None:
                return Response(status_code=404, headers=cors)
            self.publisher.touch(session_q, published)
            return self._respond(request, published, data, TS_TYPE, None, cors)
        return Response(status_code=404, headers=cors)

    def _not_started(self, vhost: str, app: str, stream_name: str, published: Published | None = None) -> bool:
        """OME's "created but not started": a stream of the app exists and will give this name once it starts, or
        it is published here but no media has come in yet (its input described its tracks and sent no frame: OME
        starts a stream once media flows). Either may last: a master held for segments would wait in vain."""
        if published is not None:
            return not published.stream.ready and published.live.last_packet_wall == 0.0
        return self.streams is not None and any(awaits_output(live, stream_name)
                                                for live in self.streams.in_app(vhost, app))

    async def _pull_on_demand(self, request: Request, vhost: str, app: str, stream_name: str,
                              listed: bool = False) -> Published | None:
        """Origins / OriginMapStore (media spec §4.1): pull the missing stream and wait for it, bounded; with
        ``listed`` (a media playlist) until its variants have segments to list, as the master waits for them. A
        stream of the app that will give this name once it starts is not pulled."""
        if self._not_started(vhost, app, stream_name):
            return None

        def ready() -> Published | None:
            found = self.publisher.find(vhost, app, stream_name)
            if found is None or (listed and not found.stream.ready and not found.stream.ended):
                return None
            return found

        return await pull_and_wait(self.origins, vhost, app, stream_name, request.url.query, ready,
                                   MASTER_HOLD_SECONDS if listed else READY_WAIT_S)

    async def _child_allowed(self, request: Request, session_q: str | None, vhost: str, app: str,
                             stream_name: str) -> bool:
        if session_q is None:
            return (await self.leases.admit_master(request, vhost, app, stream_name)).allowed
        return await self.leases.child_allowed(request, session_q, vhost, app, stream_name)

    async def _master(self, request: Request, published: Published, vhost: str, app: str, stream_name: str,
                      file_base: str, admission: Admission, cors: dict[str, str]) -> Response:
        stream = published.stream
        if stream.variant_infos(file_base) is None:
            return Response(status_code=404, headers=cors)
        waited = 0.0
        while not stream.ready and not stream.ended and waited < MASTER_HOLD_SECONDS:
            await asyncio.sleep(0.2)  # the worker thread cuts segments; no loop future to wait on
            waited += 0.2
        infos = stream.variant_infos(file_base)
        if not stream.ready or not infos:
            return Response(status_code=404, headers=cors)
        query = ""
        if not stream.settings.origin_mode:
            session = self.publisher.new_session(published)
            self.leases.granted(f"{session.id}_{session.key}", admission, request, vhost, app, stream_name)
            query = session.query
        prefix = f"/{quote(app, safe='')}/{quote(stream_name, safe='')}/"
        body = render_master(infos, query, prefix)
        return self._respond(request, published, body.encode(), PLAYLIST_TYPE, NO_CACHE, cors)

    def _medialist(self, request: Request, published: Published, variant_name: str, session_q: str | None,
                   cors: dict[str, str]) -> Response:
        found = published.stream.variant(variant_name)
        if found is None:
            return Response(status_code=404, headers=cors)
        variant, segmenter = found
        listed = segmenter.listed()
        if not listed:
            return Response(status_code=404, headers=cors)
        session = self.publisher.touch(session_q, published)
        body = render_media(variant, listed, published.stream.settings.segment_duration,
                            session.query if session is not None else "", segmenter.finished)
        return self._respond(request, published, body.encode(), PLAYLIST_TYPE, NO_CACHE, cors)

    def _respond(self, request: Request, published: Published, body: bytes, content_type: str, cache: str | None,
                 cors: dict[str, str]) -> Response:
        headers = dict(cors)
        if cache:
            headers["Cache-Control"] = cache
        if request.method == "GET" and body:
            live = published.live
            self.stats.bytes_out(live.vhost, live.app, live.name, len(body))
            published.stream.counters.add(len(body))
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            body = b""
        return Response(body, status_code=200, media_type=content_type, headers=headers)

"""HTTP on the LLHLS port: ``/<app>/<stream>/<file>`` (media-spec §2.2–2.6).

Only OME's file-name patterns are served, so there is no path to traverse. Playlists are gzipped
for clients that accept it; Cache-Control follows OME's defaults; CORS comes from the app's
LLHLS CrossDomains. Blocking requests are bounded: a directive more than two segments ahead is a
400 (as the HLS spec asks); otherwise Kiln waits up to three target durations and then answers
the current playlist (a part: 404), so a stuck client never holds anything for long.

A file name another publisher claims (``thumb.jpg``, ``ts:playlist.m3u8``) or none claims is a 404 whose
body says why, before OME's session rule (401) that applies to real LL-HLS files (claims.py); HLS v3 files
of an app with ``<HLS>`` go to the HLS v3 server (hls/server.py, which asks admission as ``HLSv3``), as OME
shares this port with it. Path names are split on the raw path and percent-decoded once, as on the REST API.
"""

from __future__ import annotations

import logging
import re
import time
import weakref
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from kiln.admission.contract import Admitter, OpenDoor
from kiln.config.cors import CorsPolicy
from kiln.media.model import MediaKind
from kiln.media.origins.on_demand import OnDemand, pull_and_wait
from kiln.media.publish.hls.publisher import hls_config
from kiln.media.publish.hls.server import HlsServer, hls_cors
from kiln.media.publish.llhls.claims import Claim, claim_of, not_here_reason
from kiln.media.publish.llhls.gzsplice import SplicedGzip, splice_template
from kiln.media.publish.llhls.leases import SessionLeases
from kiln.media.publish.llhls.packager import TrackPackager
from kiln.media.publish.llhls.publisher import LlhlsPublisher, cors_urls, llhls_config
from kiln.media.publish.llhls.stream import LlhlsStream
from kiln.media.publish.webrtc.endpoints import WebRtcEndpoints
from kiln.media.stream.live import LiveStream
from kiln.media.stream.registry import awaits_output

log = logging.getLogger(__name__)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
# numbers in file names are the client's: at most 18 digits, so int() never meets more than it reads (4,300)
_CHUNKLIST = re.compile(r"^chunklist_(\d{1,18})_(video|audio|subtitle)_([A-Za-z0-9]+)_llhls\.m3u8$")
_INIT = re.compile(r"^init_(\d{1,18})_(video|audio|subtitle)_([A-Za-z0-9]+)_llhls\.m4s$")
_SEG = re.compile(r"^seg_(\d{1,18})_(\d{1,18})_(video|audio|subtitle)_([A-Za-z0-9]+)_llhls\.m4s$")
_PART = re.compile(r"^part_(\d{1,18})_(\d{1,18})_(\d{1,18})_(video|audio|subtitle)_([A-Za-z0-9]+)_llhls\.m4s$")
_MASTER = re.compile(r"^([A-Za-z0-9_\-.]+)\.m3u8$")
MASTER_HOLD_SECONDS = 30.0


class BadRequest(Exception):
    pass


@dataclass(slots=True)
class FastAnswer:
    """A whole answer of the fast lane: the protocol writes it as is (``body`` is left out for HEAD). Made per
    answer and never changed (slots, not frozen: a frozen dataclass's __init__ cost 1 µs of an answer's ~10)."""

    status: int
    headers: list[tuple[bytes, bytes]]  # without Content-Length, which the protocol adds
    body: bytes | memoryview  # a part is a view into its segment's bytes
    head: bytes  # ``headers`` as lines ("name: value\r\n"), rendered once per form of answer and shared
    # time.monotonic() the part this answer is tied to became available, 0.0 if none (the newest part of its track
    # for a part GET; the part that woke a blocked reload): the player port times these (http/answer_lateness.py)
    ready: float = 0.0
    reload: bool = False


def header_lines(headers: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(name + b": " + value + b"\r\n" for name, value in headers)


class FastWait(ABC):
    """A blocked request (``_HLS_msn``/``_HLS_part``, a hinted part): ``retry`` at each new part of its track
    or the stream's end (``on_next_change``: LlhlsStream.on_part_of) until it answers, ``give_up`` after
    ``timeout`` seconds. One slotted object per blocked request, not closures: a thousand of them live until the
    next part, and each closure's cells were more objects for the cyclic garbage collector to walk."""

    __slots__ = ("stream", "pkg", "timeout")

    def __init__(self, stream: LlhlsStream, pkg: TrackPackager, timeout: float) -> None:
        self.stream = stream
        self.pkg = pkg
        self.timeout = timeout

    def on_next_change(self, callback: Callable[[], None]) -> None:
        self.stream.on_part_of(self.pkg, callback)

    @abstractmethod
    def settled(self) -> bool:
        """Whether the request can be answered now."""

    @abstractmethod
    def answer(self, woken: bool = False) -> FastAnswer:
        """The answer as things stand (``woken``: a part's arrival released it, for the lateness log)."""

    def retry(self) -> FastAnswer | None:
        return self.answer(True) if self.settled() else None

    def give_up(self) -> FastAnswer:
        return self.answer()


class _ChunklistAnswer(FastWait):
    """A chunklist answered now (``answer()``) or when its ``_HLS_msn``/``_HLS_part`` (or OME's start-of-stream
    hold) is settled."""

    __slots__ = ("server", "wait_for", "child_query", "legacy", "rewind", "cors", "head", "extra", "gzip_ok")

    def __init__(self, server: LlhlsServer, stream: LlhlsStream, pkg: TrackPackager, wait_for: tuple[int, int] | None,
                 child_query: str, legacy: bool, rewind: bool, cors: list[tuple[bytes, bytes]], head: bool,
                 extra: tuple[tuple[bytes, bytes], ...], gzip_ok: bool) -> None:
        super().__init__(stream, pkg, server._hold_seconds(stream))
        self.server = server
        self.wait_for = wait_for
        self.child_query = child_query
        self.legacy = legacy
        self.rewind = rewind
        self.cors = cors
        self.head = head
        self.extra = extra
        self.gzip_ok = gzip_ok

    def settled(self) -> bool:
        stream, pkg, wait_for = self.stream, self.pkg, self.wait_for
        return wait_for is None or pkg.has_part(*wait_for) or stream.ended or stream.concluded or pkg.concluded

    def answer(self, woken: bool = False) -> FastAnswer:
        stream, pkg = self.stream, self.pkg
        rendered = self.server._playlists.chunklist(stream, pkg, self.child_query, self.legacy, self.rewind)
        return self.server._fast_body(stream, rendered.gzip() if self.gzip_ok else rendered.body, PLAYLIST_TYPE,
                                      self.cors, self.head, self.extra, stream.part_ready(pkg) if woken else 0.0, True)


class _PartAnswer(FastWait):
    """A part answered now or once it is cut (its segment's end or the stream's settles it too: then a 404)."""

    __slots__ = ("server", "msn", "index", "cors", "head")

    def __init__(self, server: LlhlsServer, stream: LlhlsStream, pkg: TrackPackager, msn: int, index: int,
                 cors: list[tuple[bytes, bytes]], head: bool) -> None:
        super().__init__(stream, pkg, server._hold_seconds(stream))
        self.server = server
        self.msn = msn
        self.index = index
        self.cors = cors
        self.head = head

    def settled(self) -> bool:
        stream, pkg = self.stream, self.pkg
        return pkg.has_part(self.msn, self.index) or stream.ended or stream.concluded or pkg.concluded

    def answer(self, woken: bool = False) -> FastAnswer:
        stream, pkg, index = self.stream, self.pkg, self.index
        seg = pkg.segment(self.msn)
        if seg is None or index >= len(seg.parts):
            return FastAnswer(404, list(self.cors), b"", header_lines(self.cors))
        return self.server._fast_body(stream, seg.parts[index].data, _media_type(pkg), self.cors, self.head,
                                      ready=stream.part_ready(pkg, self.msn, index))


_FAST_PREFIXES = ("chunklist_", "part_", "seg_", "init_")
# a chunklist's extra header lines by (a blocking reload, gzip): Cache-Control as OME's, Content-Encoding
_CHUNKLIST_EXTRA = {(blocking, gz): ((b"cache-control", b"max-age=60" if blocking else b"no-cache, no-store"),
                                     (b"content-encoding", b"gzip" if gz else b"identity"))
                    for blocking in (False, True) for gz in (False, True)}


_CHUNKLIST_FILE, _PART_FILE, _SEG_FILE, _INIT_FILE = range(4)
# (app, stream, which file, track id, "video"/"audio"/"subtitle", stream key, msn, part index)
FastRoute = tuple[str, str, int, int, str, str, int, int]


def _fast_route(raw_path: bytes) -> FastRoute | None:
    """What a path names for the fast lane, or None (the Starlette path then answers). Pure, so the server
    keeps it per path: a thousand viewers ask for the same part path (their sessions are in the query)."""
    path = raw_path.decode("utf-8", "replace")
    if "%" in path:
        return None
    parts = path.strip("/").split("/")
    if len(parts) != 3 or not parts[2].startswith(_FAST_PREFIXES):
        return None
    app_name, stream_name, file_name = parts
    if m := _CHUNKLIST.match(file_name):
        return app_name, stream_name, _CHUNKLIST_FILE, int(m.group(1)), m.group(2), m.group(3), 0, 0
    if m := _PART.match(file_name):
        return app_name, stream_name, _PART_FILE, int(m.group(1)), m.group(4), m.group(5), int(m.group(2)), \
            int(m.group(3))
    if m := _SEG.match(file_name):
        return app_name, stream_name, _SEG_FILE, int(m.group(1)), m.group(3), m.group(4), int(m.group(2)), 0
    if m := _INIT.match(file_name):
        return app_name, stream_name, _INIT_FILE, int(m.group(1)), m.group(2), m.group(3), 0, 0
    return None


def _flag(q: dict[str, list[str]], name: str, default: bool) -> bool:
    value = q.get(name, [None])[-1]
    if value is None:
        return default
    if value.upper() not in ("YES", "NO"):
        raise BadRequest(f"{name} must be YES or NO")
    return value.upper() == "YES"


def _int_param(q: dict[str, list[str]], name: str) -> int | None:
    value = q.get(name, [None])[-1]
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:  # isdigit alone: '²' (int refuses it)
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(value)


class AppsByHost(Protocol):
    def app_for_host(self, host: str, app: str) -> tuple[str, dict[str, Any] | None] | None:
        """The vhost a Host header selects (None: none) and that app's OME JSON (None: no such app)."""


class StreamsInApp(Protocol):
    def in_app(self, vhost: str, app: str) -> Iterable[LiveStream]: ...


class BytesOut(Protocol):
    def bytes_out(self, vhost: str, app: str, stream: str, n: int) -> None: ...


class LlhlsServer:
    """Serves the publisher's packaged streams; the apps, the not-yet-started streams and the bytes
    counter come in as the three small interfaces above. ``thumbnail_port`` (Bind/Publishers/Thumbnail/Port)
    is only named in the 404 for a thumbnail asked of this port; ``hls`` answers what HLS v3 claims."""

    def __init__(self, publisher: LlhlsPublisher, apps: AppsByHost, streams: StreamsInApp, stats: BytesOut,
                 thumbnail_port: int | None = None, hls: HlsServer | None = None, *,
                 admission: Admitter | None = None, webrtc: WebRtcEndpoints | None = None,
                 origins: OnDemand | None = None) -> None:
        self.publisher = publisher
        self.webrtc = webrtc
        self.origins = origins
        self.hls = hls
        self.leases = SessionLeases(admission or OpenDoor(), publisher)
        self.apps = apps
        self.streams = streams
        self.stats = stats
        self.thumbnail_port = thumbnail_port
        self._policies: dict[int, tuple[dict[str, Any] | None, CorsPolicy]] = {}
        self._fast_cors_lines: dict[tuple[int, str | None, str | None],
                                    tuple[dict[str, Any] | None, list[tuple[bytes, bytes]]]] = {}
        self._playlists = PlaylistCache()
        self._routes: dict[bytes, FastRoute | None] = {}  # raw path -> _fast_route's answer
        # raw query -> _query's answer for parts, segments and inits (read, never changed): a viewer asks for each
        # with the same query, its session. Not chunklists': a blocked reload's query is new each time, and keeping
        # thousands of them made the cyclic garbage collector walk them (a blocked reload cost 16.6 -> 25 us)
        self._queries: dict[bytes, dict[str, list[str]]] = {}
        self._section: tuple[Any, dict[str, Any] | None] = (None, None)  # the last app config and its LLHLS section
        # the header lines of the fast lane's answers, per CORS lines, extra headers and content type
        self._forms: dict[tuple[Any, ...], tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]], bytes]] = {}
        self.starlette = Starlette(routes=[Route("/{path:path}", self.endpoint,
                                                 methods=["GET", "HEAD", "OPTIONS", "POST", "PATCH", "DELETE"]),
                                           WebSocketRoute("/{path:path}", self.websocket)])

    # -- helpers --
    def _cors(self, request: Request, app_config: dict[str, Any] | None) -> dict[str, str]:
        return self._cors_for(request.headers.get("origin"), request.headers.get("access-control-request-headers"),
                              app_config)

    def _cors_for(self, origin: str | None, request_headers: str | None,
                  app_config: dict[str, Any] | None) -> dict[str, str]:
        section = llhls_config(app_config) if app_config else None
        cached = self._policies.get(id(section))
        if cached is None or cached[0] is not section:  # the catalog hands out a new dict when an app changes
            urls, headers = cors_urls(section) if section else ((), {})
            cached = (section, CorsPolicy(urls, headers, allow_methods="OPTIONS, GET, HEAD"))
            if len(self._policies) > 1024:
                self._policies.clear()
            self._policies[id(section)] = cached
        return cached[1].headers(origin, request_headers)

    def _respond(self, request: Request, body: bytes | memoryview, status: int, content_type: str | None,
                 cache: str | None, cors: dict[str, str], stream: LlhlsStream | None,
                 playlist: bool = False, rendered: Rendered | None = None) -> Response:
        headers = dict(cors)
        if cache:
            headers["Cache-Control"] = cache
        if playlist:
            accept = request.headers.get("accept-encoding", "")
            if "gzip" in accept or "*" in accept:
                body = rendered.gzip() if rendered is not None else gzipped(body)
                headers["Content-Encoding"] = "gzip"
            else:
                headers["Content-Encoding"] = "identity"
        if stream is not None and request.method == "GET" and body:
            live = stream.live
            self.stats.bytes_out(live.vhost, live.app, live.name, len(body))
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            body = b""
        return Response(body, status_code=status, media_type=content_type, headers=headers)

    # -- fast lane --
    def fast(self, method: str, raw_path: bytes, query: bytes, host: str, origin: str | None,
             acrh: str | None, accept_encoding: str) -> FastAnswer | FastWait | None:
        """The answer to a GET/HEAD of a live LL-HLS file that needs no waiting on anything but the stream
        (chunklist, part, in-memory segment, init), or None: then the request takes the Starlette path
        (:meth:`endpoint`), which answers everything else, every refusal and every error. The fast lane
        answers only what that path would answer 200, with the same headers and bytes, and skips the
        per-request ASGI, Starlette and Request work that capped a part at ~2,500 req/s (bench/llhls.py)."""
        if method not in ("GET", "HEAD"):
            return None
        try:
            route = self._routes[raw_path]
        except KeyError:
            route = _fast_route(raw_path)
            if len(self._routes) >= 4096:  # paths are the clients' to choose: bounded
                self._routes.clear()
            self._routes[raw_path] = route
        if route is None:
            return None
        app_name, stream_name, what, track_id, kind, file_key, msn, index = route
        if what == _CHUNKLIST_FILE:  # its _HLS_ directives change with every reload: parsed each time
            q = _query(query.decode("latin-1"))
        else:
            try:
                q = self._queries[query]
            except KeyError:
                q = _query(query.decode("latin-1"))
                if len(self._queries) >= 4096:  # queries are the clients' to choose: bounded
                    self._queries.clear()
                self._queries[query] = q
        if "direction" in q or "format" in q:  # WHEP/WHIP; format=ts may make a playlist HLS v3's (claims.py)
            return None  # (every file name matched below is LL-HLS's otherwise: claims.py's patterns or stricter)
        found = self.apps.app_for_host(host, app_name)
        if found is None:
            return None
        vhost, app_config = found
        if app_config is None:
            return None
        last = self._section  # the catalog hands out a new dict when an app changes: same dict, same section
        if last[0] is app_config:
            section = last[1]
        else:
            section = llhls_config(app_config)
            self._section = (app_config, section)
        if section is None:
            return None
        stream = self.publisher.streams.get((vhost, app_name, stream_name))  # publisher.find, one call less
        if stream is None:
            return None
        session_q = q.get("session", [None])[-1]
        if not stream.settings.origin_mode and (
                session_q is None or self.leases.child_allowed_now(session_q) is not True
                or self.publisher.touch(session_q, stream) is None):
            return None
        cors = self._fast_cors(origin, acrh, app_config, section)
        head = method == "HEAD"
        if what == _CHUNKLIST_FILE:
            try:
                return self._fast_chunklist(stream, track_id, file_key, q, session_q, cors,
                                            "gzip" in accept_encoding or "*" in accept_encoding, head)
            except BadRequest:
                return None
        pkg = self._track(stream, track_id, kind)
        if pkg is None or file_key != stream.key:
            return None
        if what == _PART_FILE:
            return self._fast_part(stream, pkg, msn, index, cors, head)
        if what == _SEG_FILE:
            seg = pkg.segment(msn)
            if seg is None or not seg.complete or seg.spilled:
                return None  # not retained (404) or on disk (DVR: read off the loop): the Starlette path
            return self._fast_body(stream, seg.data, _media_type(pkg), cors, head)
        return self._fast_body(stream, pkg.init_segment, _media_type(pkg), cors, head)

    def _fast_cors(self, origin: str | None, acrh: str | None, app_config: dict[str, Any],
                   section: dict[str, Any]) -> list[tuple[bytes, bytes]]:
        """:meth:`_cors_for` as raw header lines, kept per app section (``app_config``'s LLHLS one), Origin and
        requested headers."""
        key = (id(section), origin, acrh)
        cached = self._fast_cors_lines.get(key)
        if cached is None or cached[0] is not section:
            lines = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                     for k, v in self._cors_for(origin, acrh, app_config).items()]
            if len(self._fast_cors_lines) > 4096:
                self._fast_cors_lines.clear()
            cached = self._fast_cors_lines[key] = (section, lines)
        return cached[1]

    def _fast_body(self, stream: LlhlsStream, body: bytes | memoryview, content_type: str,
                   cors: list[tuple[bytes, bytes]], head: bool,
                   extra: tuple[tuple[bytes, bytes], ...] = (), ready: float = 0.0, reload: bool = False) -> FastAnswer:
        key = (id(cors), extra, content_type)
        form = self._forms.get(key)
        if form is None or form[0] is not cors:  # the CORS lines are cached objects: same identity, same lines
            headers = [*cors, *extra, (b"content-type", content_type.encode("latin-1"))]
            if len(self._forms) > 4096:
                self._forms.clear()
            form = self._forms[key] = (cors, headers, header_lines(headers))
        if not head and body:
            live = stream.live
            self.stats.bytes_out(live.vhost, live.app, live.name, len(body))
        return FastAnswer(200, form[1], body, form[2], ready, reload)

    def _fast_chunklist(self, stream: LlhlsStream, track_id: int, key: str, query: dict[str, list[str]],
                        session_q: str | None, cors: list[tuple[bytes, bytes]], gzip_ok: bool,
                        head: bool) -> FastAnswer | FastWait | None:
        pkg = stream.track_by_id(track_id)
        if pkg is None or key != stream.key:
            return None
        msn = _int_param(query, "_HLS_msn")
        part = _int_param(query, "_HLS_part")
        legacy = _flag(query, "_HLS_legacy", False)
        rewind = _flag(query, "_HLS_rewind", True)
        if part is not None and msn is None:
            return None
        wait_for: tuple[int, int] | None = None
        if msn is not None and part is not None:
            last = pkg.last_part()
            if msn > (last[0] if last is not None else pkg.first_segment_number) + 2:
                return None
            wait_for = (msn, part)
        elif msn is None and not legacy:
            wait_for = (pkg.first_segment_number + 2, 0)
        found = _ChunklistAnswer(self, stream, pkg, wait_for, _child_query(stream, session_q, legacy), legacy, rewind,
                                 cors, head, _CHUNKLIST_EXTRA[msn is not None, gzip_ok], gzip_ok)
        return found.answer() if found.settled() else found

    def _fast_part(self, stream: LlhlsStream, pkg: TrackPackager, msn: int, index: int,
                   cors: list[tuple[bytes, bytes]], head: bool) -> FastAnswer | FastWait | None:
        if pkg.has_part(msn, index):
            seg = pkg.segment(msn)
            if seg is not None and index < len(seg.parts):  # (else: its segment ended before it, a 404 below)
                return self._fast_body(stream, seg.parts[index].data, _media_type(pkg), cors, head,
                                       ready=stream.part_ready(pkg, msn, index))
            return _PartAnswer(self, stream, pkg, msn, index, cors, head).answer()
        nxt = stream.next_part_of(pkg)
        if (msn, index) > (nxt[0] + 1, 0):
            return None
        return _PartAnswer(self, stream, pkg, msn, index, cors, head)

    # -- entry --
    async def websocket(self, websocket: WebSocket) -> None:
        """WebRTC signalling shares this port, as in OME (a WebSocket upgrade on the same listener)."""
        if self.webrtc is None:
            await websocket.close(1008, "WebRTC is not enabled on this port")  # before accept: HTTP 403
            return
        await self.webrtc.websocket(websocket, _path_names(websocket))

    async def endpoint(self, request: Request) -> Response:
        parts = _path_names(request)
        if request.query_params.get("direction") in ("whep", "whip"):
            if self.webrtc is not None:
                return await self.webrtc.http(request, parts)
            return _reason(404, "WebRTC is not enabled on this port", {})
        if request.method in ("POST", "PATCH", "DELETE"):
            return Response(status_code=405, headers={"Allow": "GET, HEAD, OPTIONS"})
        if len(parts) != 3:
            return _reason(404, "LL-HLS URLs are /<app>/<stream>/<file>", {})
        app_name, stream_name, file_name = parts
        host = request.headers.get("host", "")
        found = self.apps.app_for_host(host, app_name)
        vhost, app_config = found if found is not None else (None, None)
        query = parse_qs(request.url.query, keep_blank_values=True)
        claim = claim_of(file_name, query)
        hls = claim is Claim.HLS_V3 and self.hls is not None and app_config is not None and vhost is not None \
            and hls_config(app_config) is not None
        cors = hls_cors(request, app_config) if hls else self._cors(request, app_config)
        if request.method == "OPTIONS":
            return Response(status_code=200, headers={**cors, "Access-Control-Allow-Private-Network": "true"})
        if hls and self.hls is not None and vhost is not None:
            return await self.hls.serve(request, vhost, app_name, stream_name, file_name, query, cors)
        if claim is not Claim.LLHLS:
            return _reason(404, not_here_reason(claim, file_name, app_name, stream_name, vhost, app_config,
                                                self.thumbnail_port), cors)
        if vhost is None:
            return _reason(404, f"no virtual host matches the host [{host}]", cors)
        if app_config is None:
            return _reason(404, f"Could not find the application: [{vhost}/{app_name}]", cors)
        if llhls_config(app_config) is None:
            return _reason(404, f"LL-HLS is not enabled for this application [{vhost}/{app_name}]", cors)
        try:
            return await self._serve(request, vhost, app_name, stream_name, file_name, query, cors)
        except BadRequest as exc:
            return Response(str(exc).encode(), status_code=400, media_type="text/plain", headers=cors)

    async def _serve(self, request: Request, vhost: str, app: str, stream_name: str, file_name: str,
                     query: dict[str, list[str]], cors: dict[str, str]) -> Response:
        stream = self.publisher.find(vhost, app, stream_name)
        if stream is None:
            stream = await self._starting(vhost, app, stream_name)
        m = _MASTER.match(file_name)
        if m and not file_name.startswith("chunklist_"):
            return await self._master(request, vhost, app, stream_name, m.group(1), stream, query, cors)
        if stream is None and self._stream_pending(vhost, app, stream_name):
            return Response(status_code=201, headers=cors)  # OME: "created but not started yet", for any file
        if stream is None and _CHUNKLIST.match(file_name):
            stream = await self._pull_on_demand(vhost, app, stream_name, request.url.query)  # a player that starts here
        if stream is None:
            return Response(status_code=404, headers=cors)
        settings = stream.settings
        session_q = query.get("session", [None])[-1]
        if not settings.origin_mode and session_q is not None \
                and not await self.leases.child_allowed(request, session_q, vhost, app, stream_name):
            return Response(status_code=401, headers=cors)
        if not settings.origin_mode and (session_q is None or self.publisher.touch(session_q, stream) is None):
            return Response(b"session is required", status_code=401, headers=cors)
        if m := _CHUNKLIST.match(file_name):
            return await self._chunklist(request, stream, int(m.group(1)), m.group(3), query, cors, session_q)
        if m := _INIT.match(file_name):
            pkg = self._track(stream, int(m.group(1)), m.group(2))
            if pkg is None or m.group(3) != stream.key:
                return Response(status_code=404, headers=cors)
            return self._respond(request, pkg.init_segment, 200, _media_type(pkg), None, cors, stream)
        if m := _SEG.match(file_name):
            pkg = self._track(stream, int(m.group(1)), m.group(3))
            data = await stream.segment_data(pkg, int(m.group(2))) if pkg is not None and m.group(4) == stream.key \
                else None
            if pkg is None or data is None:
                return Response(status_code=404, headers=cors)
            return self._respond(request, data, 200, _media_type(pkg), None, cors, stream)
        if m := _PART.match(file_name):
            pkg = self._track(stream, int(m.group(1)), m.group(4))
            if pkg is None or m.group(5) != stream.key:
                return Response(status_code=404, headers=cors)
            return await self._part(request, stream, pkg, int(m.group(2)), int(m.group(3)), cors)
        return Response(status_code=404, headers=cors)

    @staticmethod
    def _track(stream: LlhlsStream, track_id: int, kind: str) -> TrackPackager | None:
        pkg = stream.track_by_id(track_id)
        if pkg is None:
            return None
        found = pkg.track.kind  # compared by identity: hashing an Enum member is a Python call per request
        if (found is MediaKind.VIDEO and kind == "video") or (found is MediaKind.AUDIO and kind == "audio"):
            return pkg
        return None

    def _hold_seconds(self, stream: LlhlsStream) -> float:
        return 3 * stream.settings.segment_duration

    async def _master(self, request: Request, vhost: str, app: str, stream_name: str, file_base: str,
                      stream: LlhlsStream | None, query: dict[str, list[str]], cors: dict[str, str]) -> Response:
        admission = await self.leases.admit_master(request, vhost, app, stream_name)
        if not admission.allowed:  # OME: SignedPolicy and webhook refusals are 401 on the LLHLS port
            return Response(status_code=401, headers=cors)
        pulled = stream is None
        if stream is None:
            if self._stream_pending(vhost, app, stream_name):
                return Response(status_code=201, headers=cors)
            stream = await self._pull_on_demand(vhost, app, stream_name, request.url.query)
            if stream is None:
                return Response(status_code=404, headers=cors)
        if file_base not in stream.playlist_files():
            return Response(status_code=404, headers=cors)
        if not pulled and not stream.ready and stream.live.last_packet_wall == 0.0:
            # published, but its input described its tracks and sent no frame: OME has not started such a stream
            # (a stream this request just pulled is waited for below, as the HLS v3 door does)
            return Response(status_code=201, headers=cors)
        legacy = _flag(query, "_HLS_legacy", False)
        rewind = _flag(query, "_HLS_rewind", True)
        waited = 0.0
        while not stream.ready and not stream.ended and waited < MASTER_HOLD_SECONDS:
            await stream.wait_change(1.0)
            waited += 1.0
        if not stream.ready:
            return Response(status_code=404, headers=cors)
        child_query = []
        if not stream.settings.origin_mode:
            session = self.publisher.new_session(stream)
            self.publisher.count(session)
            self.leases.granted(f"{session.id}_{session.key}", admission, request, vhost, app, stream_name)
            child_query.append(f"session={session.id}_{session.key}")
        if legacy:
            child_query.append("_HLS_legacy=YES")
        if not rewind:
            child_query.append("_HLS_rewind=NO")
        if "stream_key" in query:
            child_query.append(f"stream_key={query['stream_key'][-1]}")
        playlist = stream.playlist_files()[file_base]
        depth = _path_depth(playlist)
        app_part, stream_part = quote(app, safe=""), quote(stream_name, safe="")
        prefix = {-1: f"/{app_part}/{stream_part}/", 0: "", 1: f"../{stream_part}/",
                  2: f"../../{app_part}/{stream_part}/"}.get(depth, f"/{app_part}/{stream_part}/")
        body = stream.master(file_base, "&".join(child_query), prefix)
        if body is None:
            return Response(status_code=404, headers=cors)
        return self._respond(request, body.encode(), 200, PLAYLIST_TYPE, "no-cache, no-store", cors, stream,
                             playlist=True)

    async def _pull_on_demand(self, vhost: str, app: str, stream_name: str, query: str) -> LlhlsStream | None:
        """Origins / OriginMapStore (media spec §4.1): pull the missing stream and wait for it, bounded."""
        return await pull_and_wait(self.origins, vhost, app, stream_name, query,
                                   lambda: self.publisher.find(vhost, app, stream_name))

    async def _starting(self, vhost: str, app: str, stream_name: str) -> LlhlsStream | None:
        """Output ``stream_name`` of an input that has started (the API lists the output) but has not reached the
        publisher yet, once it has (bounded): its actor tells the publishers a moment later, and a player that
        asks as soon as the API shows the stream must not get a 404 for it."""
        for live in self.streams.in_app(vhost, app):
            if live.started and stream_name in live.outputs and live.key in self.publisher.pending:
                return await self.publisher.find_soon(vhost, app, stream_name, live.name)
        return None

    def _stream_pending(self, vhost: str, app: str, stream_name: str) -> bool:
        return any(awaits_output(live, stream_name) for live in self.streams.in_app(vhost, app))

    async def _chunklist(self, request: Request, stream: LlhlsStream, track_id: int, key: str,
                         query: dict[str, list[str]], cors: dict[str, str], session_q: str | None) -> Response:
        pkg = stream.track_by_id(track_id)
        if pkg is None or key != stream.key:
            return Response(status_code=404, headers=cors)
        msn = _int_param(query, "_HLS_msn")
        part = _int_param(query, "_HLS_part")
        legacy = _flag(query, "_HLS_legacy", False)
        rewind = _flag(query, "_HLS_rewind", True)
        if part is not None and msn is None:
            raise BadRequest("_HLS_part requires _HLS_msn")
        if msn is not None and part is not None:
            last = pkg.last_part()
            if msn > (last[0] if last is not None else pkg.first_segment_number) + 2:
                raise BadRequest("_HLS_msn is more than two segments ahead of the playlist")
            await self._wait_for_part(stream, pkg, msn, part)
        elif msn is None and not legacy:
            # OME treats a plain chunklist request as msn=2, part=0: held only at stream start
            await self._wait_for_part(stream, pkg, pkg.first_segment_number + 2, 0)
        rendered = self._playlists.chunklist(stream, pkg, _child_query(stream, session_q, legacy), legacy, rewind)
        cache = "max-age=60" if msn is not None else "no-cache, no-store"
        return self._respond(request, rendered.body, 200, PLAYLIST_TYPE, cache, cors, stream, playlist=True,
                             rendered=rendered)

    async def _wait_for_part(self, stream: LlhlsStream, pkg: TrackPackager, msn: int, part: int) -> bool:
        # a deadline, not a budget spent per wake: every part of every track wakes this loop, and a budget
        # charged a whole step per wake ran out after ~1.5 s when the hold is 6 s (answered early, part missing)
        deadline = time.monotonic() + self._hold_seconds(stream)
        while not pkg.has_part(msn, part) and not (stream.ended or stream.concluded or pkg.concluded):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await stream.wait_change(min(left, 1.0))
        return pkg.has_part(msn, part)

    async def _part(self, request: Request, stream: LlhlsStream, pkg: TrackPackager, msn: int, index: int,
                    cors: dict[str, str]) -> Response:
        if not pkg.has_part(msn, index):
            nxt = stream.next_part_of(pkg)
            if (msn, index) > (nxt[0] + 1, 0) or not await self._wait_for_part(stream, pkg, msn, index):
                return Response(status_code=404, headers=cors)
        seg = pkg.segment(msn)
        if seg is None or index >= len(seg.parts):
            return Response(status_code=404, headers=cors)
        return self._respond(request, seg.parts[index].data, 200, _media_type(pkg), None, cors, stream)


def _query(query: str) -> dict[str, list[str]]:
    """``parse_qs(query, keep_blank_values=True)``, split by hand when nothing in it is encoded (players'
    queries: a session, _HLS_ directives)."""
    if not query:
        return {}
    if "%" in query or "+" in query:
        return parse_qs(query, keep_blank_values=True)
    out: dict[str, list[str]] = {}
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            out.setdefault(name, []).append(value)
    return out


def _child_query(stream: LlhlsStream, session_q: str | None, legacy: bool) -> str:
    """The query a chunklist appends to its URIs (the session, so the player's next requests carry it)."""
    child = [f"session={session_q}"] if session_q and not stream.settings.origin_mode else []
    if legacy:
        child.append("_HLS_legacy=YES")
    return "&".join(child)


def gzipped(body: bytes | memoryview) -> bytes:
    """A gzip member (zlib at level 1: a playlist shrinks almost as much as at 5, for a fraction of the CPU)."""
    return zlib.compress(body, 1, wbits=31)


class Rendered:
    """One chunklist answer: its bytes, and their gzip made at most once (spliced from the template's
    compressed pieces when there is a query: gzsplice.py)."""

    __slots__ = ("body", "_gzip", "_spliced", "_query")

    def __init__(self, body: bytes, spliced: SplicedGzip | None = None, query: bytes = b"") -> None:
        self.body = body
        self._gzip: bytes | None = None
        self._spliced = spliced
        self._query = query

    def gzip(self) -> bytes:
        if self._gzip is None:
            spliced = self._spliced
            self._gzip = spliced.gzip(self._query, self.body) if spliced is not None else gzipped(self.body)
        return self._gzip


_QUERY_MARK = "\x00kiln-query\x00"  # never in a rendered chunklist: stands for the query until it is put in
_MARK_BYTES = _QUERY_MARK.encode()
_NOT_YET = object()


class PlaylistCache:
    """Chunklists rendered once per change of their stream (``LlhlsStream.changes``: every part, the end)
    and of what changes between parts (a segment's completion, the predicted PRELOAD-HINT).

    A playlist differs per player only by the query its URIs carry (the session), so one rendering per
    (track, legacy, rewind) and change is shared, the query put in by a bytes replace; the answer for one
    query (and its gzip) is kept until the stream changes, so viewers asking twice are not served twice.
    Everything a stream holds here goes with its next change, or with the stream (weak keys).
    """

    def __init__(self) -> None:
        self._streams: weakref.WeakKeyDictionary[LlhlsStream, _StreamPlaylists] = weakref.WeakKeyDictionary()

    def chunklist(self, stream: LlhlsStream, pkg: TrackPackager, query: str, legacy: bool, rewind: bool) -> Rendered:
        held = self._streams.get(stream)
        if held is None or held.version != stream.changes:
            held = self._streams[stream] = _StreamPlaylists(stream.changes)
        # what moves between parts without a wake: a segment completed by its keyframe, and the hint the
        # packager predicts from the frames it holds
        segs = pkg.segments
        moved = (stream.next_part_of(pkg), len(segs), segs[-1].complete if segs else False)
        key = (pkg.track.id, query, legacy, rewind, moved)
        rendered = held.answers.get(key)
        if rendered is not None:
            return rendered
        tkey = (pkg.track.id, legacy, rewind, moved)
        template = held.templates.get(tkey)
        if template is None:
            template = held.templates[tkey] = stream.chunklist(pkg, _QUERY_MARK, legacy=legacy,
                                                               rewind=rewind).encode()
        if query:
            insert = query.encode()
            body = template.replace(_MARK_BYTES, insert)
            skey = (tkey, len(insert))
            spliced = held.spliced.get(skey, _NOT_YET)
            if spliced is _NOT_YET:
                spliced = held.spliced[skey] = splice_template(template, _MARK_BYTES, len(insert))
            rendered = Rendered(body, spliced, insert)  # type: ignore[arg-type]
        else:  # no query at all: URIs without "?" (rendered as such, not a replace)
            rendered = Rendered(stream.chunklist(pkg, "", legacy=legacy, rewind=rewind).encode())
        held.answers[key] = rendered
        return rendered


class _StreamPlaylists:
    __slots__ = ("version", "templates", "answers", "spliced")

    def __init__(self, version: int) -> None:
        self.version = version
        self.templates: dict[tuple[Any, ...], bytes] = {}
        self.answers: dict[tuple[Any, ...], Rendered] = {}
        self.spliced: dict[tuple[Any, ...], SplicedGzip | None] = {}  # per template and query length


def _path_names(request: Request | WebSocket) -> list[str]:
    """The path's segments, split on the raw path (an encoded ``%2F`` stays inside its name), each decoded once."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("utf-8", "replace").partition("?")[0]
    return [unquote(part, encoding="utf-8", errors="replace") for part in path.strip("/").split("/")]


def _reason(status: int, text: str, cors: dict[str, str]) -> Response:
    """An answer a person reads: why this port does not serve the request."""
    return Response(text.encode(), status_code=status, media_type="text/plain; charset=utf-8", headers=cors)


def _media_type(pkg: TrackPackager) -> str:
    return "video/mp4" if pkg.track.kind is MediaKind.VIDEO else "audio/mp4"


def _path_depth(playlist: dict[str, Any]) -> int:
    options = playlist.get("options")
    if not isinstance(options, dict):
        return -1
    try:
        return int(options.get("hlsChunklistPathDepth", -1))
    except (TypeError, ValueError):
        return -1

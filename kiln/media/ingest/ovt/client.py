"""One OVT connection to an origin (media spec §3.2): connect, describe, play, then media until close.

Runs on the pull worker's thread with a blocking socket: every wait is bounded (connect, each
answer, and the media read by ``noInputFailoverTimeoutMs``), and ``interrupt`` shuts the socket so
a pull being closed never waits for the origin. What the origin answered (refused, 404, a describe
that never comes, a garbled describe) is the pull's answer for that URL.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

from kiln.events.redact import redact_url
from kiln.media.formats import ovt
from kiln.media.ingest.pull_source import SourceLost, SourceUnavailable
from kiln.media.model import Packet, Track
from kiln.media.net import lookup
from kiln.media.stream.live import LiveStream

log = logging.getLogger(__name__)

DEFAULT_PORT = 9000
CONNECT_TIMEOUT_S = 3.0
# how long an answer may take: the pull's noInputFailoverTimeoutMs within these bounds (an origin
# waits up to 3 s for a stream that is starting before it answers a describe)
MIN_ANSWER_TIMEOUT_S = 1.5
ANSWER_TIMEOUT_S = 6.0


class _Wire:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reassembler = ovt.Reassembler()

    def _exactly(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("origin closed the connection")
            buf += chunk
        return bytes(buf)

    def unit(self) -> tuple[int, bytes]:
        """The next complete unit: (payload type, bytes)."""
        while True:
            header = ovt.parse_header(self._exactly(ovt.HEADER_SIZE))
            payload = self._exactly(header.length) if header.length else b""
            unit = self.reassembler.feed(header, payload)
            if unit is not None:
                return header.payload_type, unit

    def send(self, payload_type: int, unit: bytes) -> None:
        wire, _ = ovt.packetize(payload_type, unit)
        self.sock.sendall(wire)


class OvtSource:
    provider = "ovt"
    source_type = "Ovt"

    def __init__(self, url: str, wire: _Wire, described: ovt.Described, read_timeout: float, next_id: int) -> None:
        self.url = url
        self.wire = wire
        self.tracks = {t.id: t for t in described.tracks}
        self.playlists = described.playlists
        self.kinds = {t.kind for t in described.tracks}
        self.described = ",".join(f"{t.id}:{t.codec.value}" for t in described.tracks)
        self.read_timeout = read_timeout
        self.next_id = next_id

    def prepare(self, stream: LiveStream, relay: bool | None = None) -> None:
        """A relay (OVT's default) copies the origin's outputs; ``Relay=false`` makes the origin's stream a source
        of this app, as OME's ``StreamRepresentationType::Source``: its output profiles transcode it."""
        if relay is False:
            for track in self.tracks.values():
                stream.on_track(track)
            return
        stream.relay(list(self.tracks.values()), self.playlists)

    def packets(self) -> Iterator[tuple[Track | None, list[Packet]]]:
        self.wire.sock.settimeout(self.read_timeout)
        try:
            while True:
                ptype, unit = self.wire.unit()
                if ptype != ovt.TYPE_MEDIA:
                    self._message(ptype, unit)  # raises: a stop or an error
                    continue
                media = ovt.parse_media(unit)
                track = self.tracks.get(media.track_id)
                if track is None:
                    continue  # a data track the describe listed but Kiln does not relay
                packet = ovt.packet_from_unit(media, track)
                if packet.data:
                    yield None, [packet]
        except TimeoutError:
            raise SourceLost(f"no input for {self.read_timeout:g}s") from None
        except ovt.OvtError as exc:
            raise SourceLost(f"protocol error: {exc}") from None
        except (EOFError, OSError) as exc:
            raise SourceLost(str(exc) or type(exc).__name__) from None

    @staticmethod
    def _message(ptype: int, unit: bytes) -> None:
        """A message during playback: a ``stop`` ends the stream, anything else is an error (spec §3.2)."""
        if ptype == ovt.TYPE_REQUEST and ovt.parse_request(unit).application == "stop":
            raise EOFError("origin sent stop")
        raise ovt.OvtError("unexpected message during playback")

    def interrupt(self) -> None:
        try:
            self.wire.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.wire.sock.settimeout(0.5)
            self.wire.send(ovt.TYPE_REQUEST, ovt.encode_request(ovt.Request(self.next_id, "stop", self.url)))
        except OSError:
            pass
        self.wire.sock.close()


def _split(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    path = [p for p in parts.path.split("/") if p]
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise SourceUnavailable("the url's port is not a number") from None
    if not parts.hostname or len(path) != 2:
        raise SourceUnavailable("the url is not ovt://host[:port]/app/stream")
    return parts.hostname, port


def _connect(host: str, port: int) -> socket.socket:
    """The first address of ``host`` that accepts, within ``CONNECT_TIMEOUT_S`` each. The name is looked up through
    the pull's guard (kiln.media.net.lookup): a pull closed during the lookup does not wait for it, nor connects."""
    last: OSError | None = None
    for family, kind, proto, _, address in lookup.getaddrinfo(host, port, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(f"no address for {host}")


def _ask(wire: _Wire, request: ovt.Request) -> ovt.Response:
    wire.send(ovt.TYPE_REQUEST, ovt.encode_request(request))
    ptype, unit = wire.unit()
    if ptype != ovt.TYPE_RESPONSE:
        raise ovt.OvtError(f"expected the {request.application} answer, got payload type {ptype}")
    resp = ovt.parse_response(unit)
    if resp.id != request.id:
        raise ovt.OvtError(f"answer id {resp.id} does not match request id {request.id}")
    if resp.code != 200:
        raise SourceUnavailable(f"origin answered {request.application} with {resp.code} ({resp.message})")
    return resp


def open_ovt(url: str, read_timeout: float) -> OvtSource:
    """Connect, describe and play; SourceUnavailable says what the origin answered otherwise."""
    host, port = _split(url)
    try:
        sock = _connect(host, port)
    except lookup.LookupAbandoned as exc:
        raise SourceUnavailable(str(exc)) from None
    except TimeoutError:
        raise SourceUnavailable(f"no answer within {CONNECT_TIMEOUT_S:g}s") from None
    except OSError as exc:
        raise SourceUnavailable(exc.strerror or type(exc).__name__) from None
    wire = _Wire(sock)
    answer_timeout = min(ANSWER_TIMEOUT_S, max(MIN_ANSWER_TIMEOUT_S, read_timeout))
    try:
        sock.settimeout(answer_timeout)
        described = ovt.parse_describe(_ask(wire, ovt.Request(1, "describe", url)).contents)
        if not described.tracks:
            raise SourceUnavailable("the origin's stream has no track Kiln can relay (" +
                                    "; ".join(described.skipped) + ")")
        _ask(wire, ovt.Request(2, "play", url))
    except TimeoutError:
        sock.close()
        raise SourceUnavailable(f"no answer from the origin within {answer_timeout:g}s") from None
    except ovt.OvtError as exc:
        sock.close()
        raise SourceUnavailable(f"protocol error: {exc}") from None
    except (EOFError, OSError) as exc:
        sock.close()
        raise SourceUnavailable(str(exc) or type(exc).__name__) from None
    except SourceUnavailable:
        sock.close()
        raise
    for skipped in described.skipped:
        log.info("ovt track not relayed url=%s reason=%s", redact_url(url), skipped)
    return OvtSource(url, wire, described, read_timeout, 3)

"""MPEG-TS over UDP ingest: one socket per Bind/Providers/MPEGTS port, the name from an app's StreamMap.

UDP has no connection and no stream id. The app whose ``Providers/MPEGTS/StreamMap`` lists the port
owns what arrives there, under the mapped name (``stream_${Port}`` → ``stream_4000``). A stream
starts with the first datagrams and ends after ``SILENCE_TIMEOUT_S`` without any; data arriving
later starts a new stream instance. Datagrams are queued from the event loop without waiting; the
demuxing runs in a ``TsDemuxWorker`` thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Protocol

from kiln.media.ingest.contract import PublishRejected, PublishRequest, Refusal, StreamOpener, open_from_thread
from kiln.media.ingest.demux.tsreader import TsDemuxWorker, TsHooks
from kiln.media.model import MediaKind
from kiln.media.stream.live import LiveStream

log = logging.getLogger(__name__)

SILENCE_TIMEOUT_S = 1.5
"""OME deletes an MPEG-TS/UDP stream after 1500 ms without data (media-spec §1.2): there is no
connection whose close would say the sender stopped."""
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024  # asked of the kernel (capped by net.core.rmem_max) to ride out bursts
OPEN_TIMEOUT_S = 30.0
JOIN_TIMEOUT_S = 5.0


class PortMap(Protocol):
    """Which stream a UDP port feeds: the first app whose MPEG-TS StreamMap lists it."""

    def stream_for_port(self, port: int) -> tuple[str, str, str] | None:
        """(vhost, app, stream name) with ``${Port}`` filled in; None when no app maps the port."""


class MpegtsIngest:
    """All MPEG-TS/UDP ports of the process."""

    def __init__(self, opener: StreamOpener, port_map: PortMap, loop: asyncio.AbstractEventLoop, *, host: str,
                 ports: list[int]) -> None:
        self.opener = opener
        self.port_map = port_map
        self.loop = loop
        self.host = "0.0.0.0" if host in ("", "*") else host
        self.ports = list(ports)
        self.channels: dict[int, MpegtsChannel] = {}

    async def start(self) -> None:
        for port in self.ports:
            channel = MpegtsChannel(self, port)
            transport, _ = await self.loop.create_datagram_endpoint(lambda c=channel: c,  # type: ignore[misc]
                                                                    local_addr=(self.host, port))
            sock = transport.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
                except OSError as exc:
                    log.info("mpegts receive buffer not enlarged port=%d error=%s", port, exc)
                channel.port = sock.getsockname()[1]
            self.channels[channel.port] = channel
            log.info("mpegts listening address=%s:%d/udp", self.host, channel.port)

    async def close(self) -> None:
        channels = list(self.channels.values())
        self.channels.clear()
        for channel in channels:
            channel.close("server shutdown")
        await asyncio.to_thread(_join_all, channels)


def _join_all(channels: list[MpegtsChannel]) -> None:
    for channel in channels:
        channel.join(JOIN_TIMEOUT_S)


class MpegtsChannel(asyncio.DatagramProtocol):
    """One UDP port: at most one live worker at a time (older ones may still be finishing)."""

    def __init__(self, ingest: MpegtsIngest, port: int) -> None:
        self.ingest = ingest
        self.port = port
        self.transport: asyncio.DatagramTransport | None = None
        self.worker: TsDemuxWorker | None = None
        self._workers: list[TsDemuxWorker] = []
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self._closed:
            return
        worker = self.worker
        if worker is not None and worker.push(data):
            return
        self._workers = [w for w in self._workers if w.alive]
        worker = self.worker = _new_worker(self, f"{addr[0]}:{addr[1]}")
        self._workers.append(worker)
        worker.start()
        worker.push(data)

    def error_received(self, exc: Exception) -> None:
        log.warning("mpegts socket error port=%d error=%s", self.port, exc)

    def close(self, reason: str) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.close()
        for worker in self._workers:
            worker.abort(reason)

    def join(self, timeout: float) -> None:
        for worker in self._workers:
            worker.join(timeout)


def _new_worker(channel: MpegtsChannel, peer: str) -> TsDemuxWorker:
    ingest, port = channel.ingest, channel.port
    worker: TsDemuxWorker

    def close_ingest(reason: str) -> None:
        worker.stop(reason)  # the sender cannot be told; its data is ignored until it pauses

    def open_ts_stream(kinds: set[MediaKind]) -> LiveStream:
        target = ingest.port_map.stream_for_port(port)
        if target is None:
            log.info("mpegts input rejected port=%d peer=%s reason=no application maps this port", port, peer)
            raise PublishRejected(f"no application has an MPEG-TS StreamMap entry for port {port}", Refusal.NOT_FOUND)
        vhost, app, name = target
        request = PublishRequest(vhost, app, name, provider="mpegts", source_type="MPEGTS", source_url=f"udp://{peer}",
                                 close_source=close_ingest)
        try:
            stream = open_from_thread(ingest.opener, ingest.loop, request, OPEN_TIMEOUT_S)
        except PublishRejected as exc:
            log.info("mpegts publish rejected vhost=%s app=%s stream=%s port=%d peer=%s reason=%s", vhost, app, name,
                     port, peer, exc.reason)
            raise
        log.info("mpegts publish accepted vhost=%s app=%s stream=%s port=%d peer=%s tracks=%s", vhost, app, name,
                 port, peer, ",".join(sorted(k.value for k in kinds)))
        return stream

    def ended(reason: str) -> None:
        log.info("mpegts input ended port=%d peer=%s reason=%s", port, peer, reason)

    worker = TsDemuxWorker(f"mpegts:{port}@{peer}", TsHooks(open_ts_stream, ended), idle_timeout_s=SILENCE_TIMEOUT_S)
    return worker

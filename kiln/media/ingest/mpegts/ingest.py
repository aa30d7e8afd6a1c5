"""MPEG-TS over UDP ingest: one socket per Bind/Providers/MPEGTS port, the name from an app's StreamMap.

UDP has no connection and no stream id. The app whose ``Providers/MPEGTS/StreamMap`` lists the port
owns what arrives there, under the mapped name (``stream_${Port}`` → ``stream_4000``). A stream
starts with the first datagrams and ends after ``SILENCE_TIMEOUT_S`` without any; data arriving
later starts a new stream instance. Datagrams are queued from the event loop without waiting; the
demuxing runs in a ``TsDemuxWorker`` thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
from typing import Any

from kiln.actors.context import Context
from kiln.config.ports import PortError, parse_port_list
from kiln.media.ingest.contract import PublishRejected
from kiln.media.ingest.demux.tsreader import TsDemuxWorker, TsHooks
from kiln.media.ingest.rtmp.ingest import open_stream
from kiln.media.model import MediaKind
from kiln.media.stream.live import LiveStream

log = logging.getLogger(__name__)

SILENCE_TIMEOUT_S = 1.5
"""OME deletes an MPEG-TS/UDP stream after 1500 ms without data (media-spec §1.2): there is no
connection whose close would say the sender stopped."""
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024  # asked of the kernel (capped by net.core.rmem_max) to ride out bursts
OPEN_TIMEOUT_S = 30.0
JOIN_TIMEOUT_S = 5.0
NAME_PORT_VARIABLE = "${Port}"


def _stream_entries(app_config: dict[str, Any]) -> list[dict[str, Any]]:
    providers = app_config.get("providers")
    mpegts = providers.get("mpegts") if isinstance(providers, dict) else None
    stream_map = mpegts.get("streamMap") if isinstance(mpegts, dict) else None
    entries = stream_map.get("stream") if isinstance(stream_map, dict) else None
    if isinstance(entries, dict):
        entries = [entries]
    return [e for e in entries or [] if isinstance(e, dict)]


def mapped_stream(catalog: Any, port: int) -> tuple[str, str, str] | None:
    """(vhost, app, stream name) for the first app whose MPEG-TS StreamMap lists ``port``."""
    for vhost in catalog.vhost_names():
        view = catalog.vhost(vhost)
        if view is None:
            continue
        for app in view.apps.values():
            for entry in _stream_entries(app.config):
                try:
                    ports = parse_port_list(str(entry.get("port", "")))
                except PortError:
                    continue
                name = str(entry.get("name") or "")
                if port in ports and name:
                    return vhost, app.name, name.replace(NAME_PORT_VARIABLE, str(port))
    return None


class MpegtsIngest:
    """All MPEG-TS/UDP ports of the process."""

    def __init__(self, ctx: Context, loop: asyncio.AbstractEventLoop, *, host: str, ports: list[int]) -> None:
        self.ctx = ctx
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
        await asyncio.to_thread(lambda: [c.join(JOIN_TIMEOUT_S) for c in channels])


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
        target = mapped_stream(ingest.ctx.catalog, port)
        if target is None:
            log.info("mpegts input rejected port=%d peer=%s reason=no application maps this port", port, peer)
            raise PublishRejected(f"no application has an MPEG-TS StreamMap entry for port {port}")
        vhost, app, name = target
        coro = open_stream(ingest.ctx, host=vhost, app=app, stream=name, provider="mpegts", source_type="MPEGTS",
                           source_url=f"udp://{peer}", close_ingest=close_ingest, allow_vhost_name=True)
        try:
            future = asyncio.run_coroutine_threadsafe(coro, ingest.loop)
        except RuntimeError as exc:
            coro.close()
            raise PublishRejected(f"server shutting down: {exc}") from exc
        try:
            stream = future.result(OPEN_TIMEOUT_S)
        except PublishRejected as exc:
            log.info("mpegts publish rejected vhost=%s app=%s stream=%s port=%d peer=%s reason=%s", vhost, app, name,
                     port, peer, exc.reason)
            raise
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError) as exc:
            future.cancel()
            raise PublishRejected("the application did not answer") from exc
        log.info("mpegts publish accepted vhost=%s app=%s stream=%s port=%d peer=%s tracks=%s", vhost, app, name,
                 port, peer, ",".join(sorted(k.value for k in kinds)))
        return stream

    def ended(reason: str) -> None:
        log.info("mpegts input ended port=%d peer=%s reason=%s", port, peer, reason)

    worker = TsDemuxWorker(f"mpegts:{port}@{peer}", TsHooks(open_ts_stream, ended), idle_timeout_s=SILENCE_TIMEOUT_S)
    return worker

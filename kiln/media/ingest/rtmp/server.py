"""The RTMP listener: accepts publishers and hands each publish to a :class:`PublishHandler`."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kiln.media.formats.rtmp.chunk import DEFAULT_MAX_MESSAGE_SIZE
from kiln.media.ingest.rtmp.handler import PublishHandler
from kiln.media.ingest.rtmp.pacer import PACE_AT, READ_TICK_S, UNPACE_BELOW, ReadPacer
from kiln.media.ingest.rtmp.session import RtmpConnection, SessionConfig

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 5.0  # how long close() waits for publish handlers still deciding


class RtmpServer:
    def __init__(self, handler: PublishHandler, *, host: str = "0.0.0.0", port: int = 1935,
                 enhanced_rtmp: bool = False, handshake_timeout: float = 10.0, idle_timeout: float = 10.0,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE, chunk_size: int = 4096,
                 ack_window: int = 2_500_000, read_tick: float = READ_TICK_S, pace_at: int = PACE_AT,
                 unpace_below: int = UNPACE_BELOW) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.config = SessionConfig(enhanced_rtmp=enhanced_rtmp, handshake_timeout=handshake_timeout,
                                    idle_timeout=idle_timeout, max_message_size=max_message_size,
                                    chunk_size=chunk_size, ack_window=ack_window)
        self.read_tick = read_tick  # 0: publishers are read on readiness (kiln.media.ingest.rtmp.pacer)
        self.pace_at = pace_at  # publishers from which they are read on the tick, until fewer than unpace_below
        self.unpace_below = unpace_below
        self._pacer: ReadPacer | None = None
        self._server: asyncio.Server | None = None
        self._sessions: set[RtmpConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def paced(self) -> int:
        """How many publishing connections are read on the pacer's tick now."""
        return len(self._pacer) if self._pacer is not None else 0

    @property
    def sessions(self) -> frozenset[RtmpConnection]:
        return frozenset(self._sessions)

    async def start(self) -> None:
        """Listen; with ``port=0`` the chosen port is in ``self.port`` afterwards."""
        loop = asyncio.get_running_loop()
        self._pacer = (ReadPacer(loop, self.read_tick, pace_at=self.pace_at, unpace_below=self.unpace_below)
                       if self.read_tick > 0 else None)
        self._server = await loop.create_server(lambda: self._new_connection(loop), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def _new_connection(self, loop: asyncio.AbstractEventLoop) -> RtmpConnection:
        conn = RtmpConnection(self.handler, self.config, loop, self._sessions.discard, self._track_task,
                              self._pacer)
        self._sessions.add(conn)
        return conn

    def _track_task(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop listening and drop every connection (their publishes end with "closed: server shutdown")."""
        if self._server is not None:
            self._server.close()
        for conn in list(self._sessions):
            conn.shutdown("closed: server shutdown")
        if self._pacer is not None:
            self._pacer.close()
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), CLOSE_WAIT_S)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        log.info("rtmp server closed address=%s:%d", self.host, self.port)

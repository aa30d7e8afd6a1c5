"""OME's ``OriginMapStore`` on Redis (media spec §4.3): origins register their streams, edges look them up.

Key ``<app>/<stream>``, value ``ovt://<OriginHostName>:<OVT port>/<app>/<stream>``, TTL 10 s
refreshed every 2.5 s, deleted when the stream stops. Every Redis call is bounded (1 s), runs on
the event loop and never raises to its caller: Redis down means lookups answer None with a log
line, and registrations come back by themselves on the next refresh once Redis answers again.

The first origin to register a key keeps it: a second origin claiming the same stream logs it
once, keeps it as a candidate, and takes the key only after the first one's TTL ran out (its
stream ended or it died), so two origins never flip-flop. Streams this process pulls over OVT
are never registered (an edge is not an origin for them; that also prevents pull loops).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig

from kiln.media.origins.puller import VhostConfigs
from kiln.media.publish.ovt.server import ovt_enabled
from kiln.media.stream.live import LiveStream

log = logging.getLogger(__name__)

TTL_S = 10
REFRESH_S = 2.5
CALL_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class StoreConfig:
    host: str
    port: int
    auth: str
    origin_host_name: str  # "" on an edge: it only reads


def store_config(vhost_config: Mapping[str, Any] | None) -> StoreConfig | None:
    """A vhost's ``originMapStore``; None when it has none or its ``RedisServer/Host`` is not host:port."""
    section = (vhost_config or {}).get("originMapStore")
    if not isinstance(section, dict):
        return None
    server = section.get("redisServer") if isinstance(section.get("redisServer"), dict) else {}
    host, _, port = str((server or {}).get("host") or "").strip().rpartition(":")
    if not host or not (port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536):
        return None  # (isdigit alone takes "²", which int() refuses: a ValueError at each stream start and lookup)
    return StoreConfig(host.strip("[]"), int(port), str((server or {}).get("auth") or ""),
                       str(section.get("originHostName") or "").strip())


def parse_origin_url(value: Any) -> str | None:
    """A registered value must be an ``ovt://host[:port]/app/stream`` URL; anything else is refused."""
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str):
        return None
    parts = urlsplit(value.strip())
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return None
    if parts.scheme.lower() != "ovt" or not parts.hostname or len([p for p in parts.path.split("/") if p]) != 2:
        return None
    return value.strip()


@dataclass
class _Redis:
    """One Redis server and what this process holds in it."""

    config: StoreConfig
    client: aioredis.Redis
    owned: dict[str, str] = field(default_factory=dict)      # key -> our value, registered
    wanted: dict[str, str] = field(default_factory=dict)     # key -> our value, waiting (held by another)
    held_logged: set[str] = field(default_factory=set)       # keys whose other holder was logged
    down: bool = False


class OriginMaps:
    """Every vhost's OriginMapStore: lookups for the puller, registrations for this origin's streams."""

    def __init__(self, configs: VhostConfigs, ovt_port: int | None) -> None:
        self.configs = configs
        self.ovt_port = ovt_port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._servers: dict[StoreConfig, _Redis] = {}
        self._task: asyncio.Task[None] | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._task = loop.create_task(self._refresh_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for server in list(self._servers.values()):
            for key, value in list(server.owned.items()):
                await self._delete_if_ours(server, key, value)
            await server.client.aclose()
        self._servers.clear()

    def _server(self, config: StoreConfig) -> _Redis:
        server = self._servers.get(config)
        if server is None:
            client = aioredis.Redis(host=config.host, port=config.port, password=config.auth or None,
                                    socket_connect_timeout=CALL_TIMEOUT_S, socket_timeout=CALL_TIMEOUT_S,
                                    retry_on_timeout=False, decode_responses=False,
                                    # Redis < 8 has no CLIENT MAINT_NOTIFICATIONS: not asked
                                    maint_notifications_config=MaintNotificationsConfig(enabled=False))
            server = self._servers[config] = _Redis(config, client)
        return server

    async def _call(self, server: _Redis, what: str, op: Any) -> Any:
        """Run one Redis call, bounded; on failure log once per outage and raise RedisError."""
        try:
            result = await asyncio.wait_for(op, CALL_TIMEOUT_S * 2)
        except (RedisError, OSError, TimeoutError) as exc:
            if not server.down:
                server.down = True
                log.warning("originmapstore unreachable redis=%s:%d op=%s error=%s", server.config.host,
                            server.config.port, what, type(exc).__name__ if not str(exc) else exc)
            raise RedisError(str(exc)) from None
        if server.down:
            server.down = False
            log.info("originmapstore reachable again redis=%s:%d", server.config.host, server.config.port)
        return result

    # -- edge --------------------------------------------------------------------------------------
    async def lookup(self, vhost: str, app: str, stream: str) -> str | None:
        config = store_config(self.configs.vhost_config(vhost))
        if config is None:
            return None
        server = self._server(config)
        key = f"{app}/{stream}"
        try:
            value = await self._call(server, "GET", server.client.get(key))
        except RedisError:
            log.warning("originmapstore lookup failed key=%s reason=redis unreachable", key)
            return None
        if value is None:
            log.info("originmapstore lookup key=%s found=no", key)
            return None
        url = parse_origin_url(value)
        if url is None:
            log.warning("originmapstore lookup key=%s refused value=%r reason=not an ovt://host/app/stream URL",
                        key, value[:200])
            return None
        log.info("originmapstore lookup key=%s url=%s", key, url)
        return url

    # -- origin (any thread: the stream actors call these) -----------------------------------------
    def stream_started(self, stream: LiveStream, app_config: Mapping[str, Any]) -> None:
        if self.loop is None or self.ovt_port is None or stream.source_type == "Ovt" or not ovt_enabled(app_config):
            return
        config = store_config(self.configs.vhost_config(stream.vhost))
        if config is None or not config.origin_host_name:
            return
        entries = {f"{stream.app}/{name}": f"ovt://{config.origin_host_name}:{self.ovt_port}/{stream.app}/{name}"
                   for name in stream.outputs}
        self._submit(self._register(config, entries))

    def stream_ended(self, stream: LiveStream) -> None:
        if self.loop is None:
            return
        keys = [f"{stream.app}/{name}" for name in stream.outputs]
        self._submit(self._unregister(keys))

    def _submit(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` on the loop; at shutdown (loop closed) the TTL removes what is left."""
        assert self.loop is not None
        try:
            asyncio.run_coroutine_threadsafe(work, self.loop)
        except RuntimeError:
            work.close()

    async def _register(self, config: StoreConfig, entries: dict[str, str]) -> None:
        server = self._server(config)
        for key, value in entries.items():
            server.wanted[key] = value
            await self._claim(server, key, value)

    async def _claim(self, server: _Redis, key: str, value: str) -> None:
        """SET NX with the TTL; if the key exists and is ours, refresh its TTL; if another origin's, wait."""
        try:
            if await self._call(server, "SET", server.client.set(key, value, ex=TTL_S, nx=True)):
                fresh = key not in server.owned
            else:
                current = await self._call(server, "GET", server.client.get(key))
                if current is not None and current.decode(errors="replace") != value:
                    self._held(server, key, value, current.decode(errors="replace"))
                    return
                await self._call(server, "EXPIRE", server.client.expire(key, TTL_S))
                fresh = key not in server.owned
        except RedisError:
            return
        server.owned[key] = value
        server.wanted.pop(key, None)
        server.held_logged.discard(key)
        if fresh:
            log.info("originmapstore registered key=%s value=%s ttl=%d", key, value, TTL_S)

    @staticmethod
    def _held(server: _Redis, key: str, value: str, holder: str) -> None:
        """Another origin holds the key: it stays ours to want (candidate), logged once per claim."""
        server.owned.pop(key, None)
        server.wanted[key] = value
        if key not in server.held_logged:
            server.held_logged.add(key)
            log.warning("originmapstore key held by another origin key=%s holder=%s ours=%s (waiting for it to "
                        "expire)", key, holder, value)

    async def _unregister(self, keys: list[str]) -> None:
        for server in list(self._servers.values()):
            for key in keys:
                server.wanted.pop(key, None)
                server.held_logged.discard(key)
                value = server.owned.pop(key, None)
                if value is not None:
                    await self._delete_if_ours(server, key, value)

    async def _delete_if_ours(self, server: _Redis, key: str, value: str) -> None:
        try:
            current = await self._call(server, "GET", server.client.get(key))
            if current is not None and current.decode(errors="replace") == value:
                await self._call(server, "DEL", server.client.delete(key))
                log.info("originmapstore unregistered key=%s", key)
        except RedisError:
            pass  # the TTL removes it within 10 s

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            for server in list(self._servers.values()):
                for key, value in [*server.owned.items(), *server.wanted.items()]:
                    await self._claim(server, key, value)
